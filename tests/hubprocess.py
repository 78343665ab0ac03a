"""A real hepml-hub (JupyterHub + configurable-http-proxy) on free ports, for the tests.

The hub loads the project's own ``jupyterhub_config.py`` through a small test config that
adds one service token with admin scopes, so tests can drive the REST API.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

TEST_CONFIG = """
c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{
    "name": "test-admin",
    "scopes": ["admin:users", "admin:servers", "admin:groups", "tokens", "access:servers",
               "read:users", "list:users", "read:services", "list:services"],
    "services": ["test-admin"],
}})
{extra}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HubProcess:
    """One hub with its own data directory and ports. ``start()``, ``stop()``, ``restart()``."""

    def __init__(
        self,
        *,
        config: Path = ROOT / "jupyterhub_config.py",
        extra_config: str = "",
        env: dict | None = None,
        data_dir: Path | None = None,
        run_as: str | None = None,
    ):
        # Under /tmp (not pytest's 0700 tmp) so per-user accounts can reach their homes.
        self.base = Path(tempfile.mkdtemp(prefix="hepml-test-"))
        self.base.chmod(0o711)
        self.data_dir = data_dir or self.base / "data"
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/hub/api"
        self.log_path = self.base / "hub.log"
        self.config_path = self.base / "test_config.py"
        self.config_path.write_text(
            TEST_CONFIG.format(config=str(config), token=self.token, extra=extra_config)
        )
        self.env = {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HEPML_DATA_DIR": str(self.data_dir),
            "HEPML_BIND_URL": f"{self.url}/",
            "HEPML_HUB_BIND_URL": f"http://127.0.0.1:{free_port()}",
            "HEPML_PROXY_API_URL": f"http://127.0.0.1:{free_port()}",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        # a personal hub: run by an ordinary user, who then owns the data directory
        self.run_as = run_as
        if run_as:
            shutil.chown(self.base, run_as, run_as)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 60) -> HubProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 -- handed to the child
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "jupyterhub"), "-f", str(self.config_path)],
            cwd=self.base,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=self.run_as,
            group=self.run_as,
            extra_groups=[] if self.run_as else None,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.api}/", timeout=2).status_code == 200:
                    self.wait_forkserver(deadline - time.monotonic())
                    return self
            time.sleep(0.2)
        raise TimeoutError(f"hub did not answer in {timeout} s:\n{self.log_tail()}")

    def wait_forkserver(self, timeout: float) -> None:
        """Wait until the fork server listens (spawns before that use the fallback)."""
        sock = self.data_dir / "run" / "forkserver.sock"
        deadline = time.monotonic() + max(timeout, 1)
        while time.monotonic() < deadline:
            if "hepml-forkserver: ready" in self.log_text() and sock.exists():
                return
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> HubProcess:
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop the hub, every user server it started, and remove the data."""
        with contextlib.suppress(Exception):
            for user in self.request("GET", "/users").json():
                for name in user.get("servers", {}):
                    path = (
                        f"/users/{user['name']}/servers/{name}"
                        if name
                        else f"/users/{user['name']}/server"
                    )
                    self.request("DELETE", path, json={"remove": True})
        with contextlib.suppress(Exception):
            self.wait_all_stopped(20)
        self.stop()
        self.remove_accounts()
        subprocess.run(["pkill", "-f", str(self.data_dir / "run" / "forkserver.sock")], check=False)
        if os.environ.get("HEPML_KEEP_TEST_DATA"):
            print(f"hepml tests: kept {self.base} (HEPML_KEEP_TEST_DATA is set)")
        else:
            shutil.rmtree(self.base, ignore_errors=True)

    def remove_accounts(self) -> None:
        """Delete the system accounts whose home is in this hub's data directory."""
        if os.geteuid() != 0:
            return
        import pwd

        homes = str(self.data_dir / "homes") + "/"
        for entry in pwd.getpwall():
            if entry.pw_name.startswith("jupyter-") and entry.pw_dir.startswith(homes):
                delete_account(entry.pw_name)

    def wait_all_stopped(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            users = self.request("GET", "/users").json()
            if not any(u.get("servers") for u in users):
                return
            time.sleep(0.2)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    # -- REST ---------------------------------------------------------------------------

    def request(self, method: str, path: str, *, token: str | None = None, **kwargs):
        """Call the hub API as the test admin service (or with ``token``)."""
        headers = kwargs.pop("headers", {})
        if token != "":
            headers.setdefault("Authorization", f"token {token or self.token}")
        return requests.request(method, f"{self.api}{path}", headers=headers, timeout=30, **kwargs)

    def create_user(self, name: str, *, groups=(), admin: bool = False) -> dict:
        r = self.request("POST", f"/users/{name}", json={"admin": admin})
        assert r.status_code in (201, 409), r.text
        for group in groups:
            r = self.request("POST", f"/groups/{group}/users", json={"users": [name]})
            assert r.status_code == 200, r.text
        return self.request("GET", f"/users/{name}").json()

    def user_token(self, name: str) -> str:
        r = self.request("POST", f"/users/{name}/tokens", json={"note": "tests"})
        assert r.status_code in (200, 201), r.text
        return r.json()["token"]

    def spawn(self, name: str, options: dict | None = None, *, timeout: float = 90):
        """POST the server with ``options``; wait until ready; return the response."""
        r = self.request("POST", f"/users/{name}/server", json={"user_options": options or {}})
        if r.status_code >= 400:
            return r
        self.wait_ready(name, timeout)
        return r

    def server_model(self, name: str) -> dict | None:
        return self.request("GET", f"/users/{name}").json().get("servers", {}).get("")

    def wait_ready(self, name: str, timeout: float = 90, interval: float = 0.05) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server_model(name)
            if server and server.get("ready"):
                return server
            if server is None and time.monotonic() > deadline - timeout + 2:
                raise RuntimeError(f"{name}'s server went away:\n{self.log_tail()}")
            time.sleep(interval)
        raise TimeoutError(f"{name}'s server not ready in {timeout} s:\n{self.log_tail()}")

    def stop_server(self, name: str, timeout: float = 30) -> None:
        self.request("DELETE", f"/users/{name}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.server_model(name) is not None:
            time.sleep(0.1)

    # -- browser-like login -------------------------------------------------------------

    def signup(self, name: str, password: str) -> requests.Response:
        s = requests.Session()
        page = s.get(f"{self.url}/hub/signup", timeout=30)
        xsrf = xsrf_token(page.text)
        return s.post(
            f"{self.url}/hub/signup",
            timeout=30,
            data={
                "username": name,
                "signup_password": password,
                "signup_password_confirmation": password,
                "_xsrf": xsrf,
            },
        )

    def try_login(self, name: str, password: str) -> tuple[requests.Session, requests.Response]:
        """Submit the login form; the response is a 302 when it worked."""
        s = requests.Session()
        page = s.get(f"{self.url}/hub/login", timeout=30)
        r = s.post(
            f"{self.url}/hub/login?next=",
            timeout=30,
            allow_redirects=False,
            data={"username": name, "password": password, "_xsrf": xsrf_token(page.text)},
        )
        return s, r

    def login(self, name: str, password: str) -> requests.Session:
        s, r = self.try_login(name, password)
        assert r.status_code == 302, f"login of {name} failed: {r.status_code}"
        return s

    def admin_password(self) -> str:
        return (self.data_dir / "admin-password").read_text().strip()


def delete_account(name: str) -> None:
    """Kill every process of system account ``name``, then delete the account."""
    subprocess.run(["pkill", "-KILL", "-u", name], check=False)
    deadline = time.monotonic() + 10  # userdel refuses while a process remains
    while (
        time.monotonic() < deadline
        and subprocess.run(["pgrep", "-u", name], capture_output=True, check=False).returncode == 0
    ):
        time.sleep(0.1)
    subprocess.run(["userdel", name], check=False, capture_output=True)


def xsrf_token(html: str) -> str:
    match = re.search(r'name="_xsrf"\s+value="([^"]+)"', html) or re.search(
        r"_xsrf=([^&\"']+)", html
    )
    assert match, "no _xsrf token in page"
    return match.group(1)
