"""The fork server's protocol: who may use it and what it refuses (servers themselves are
started through it in the hub tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hepml_hub.forkserver import enabled_server_extensions, request_spawn
from kernel import execute


def start_forkserver(sock, command, env=None) -> subprocess.Popen:
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sock.exists(), "fork server did not start"
    return proc


@pytest.fixture
def forkserver_proc(tmp_path):
    sock = tmp_path / "run" / "fs.sock"
    code = f"from hepml_hub.forkserver import serve; serve({str(sock)!r}, ['json'])"
    proc = start_forkserver(sock, [sys.executable, "-c", code])
    yield sock, proc
    proc.kill()
    proc.wait()


@pytest.fixture
def forkserver(forkserver_proc):
    return forkserver_proc[0]


def process_memory_contains(pid: int, needle: bytes) -> bool:
    """Whether any readable, writable mapping of process ``pid`` contains ``needle``."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("rw"):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False


def test_socket_is_private(forkserver):
    assert oct(forkserver.stat().st_mode & 0o777) == "0o600"
    assert oct(forkserver.parent.stat().st_mode & 0o777) == "0o700"


def test_import_time_settings_are_refused(forkserver):
    with pytest.raises(RuntimeError, match="fresh interpreter"):
        request_spawn(
            str(forkserver),
            argv=[],
            cwd="/",
            uid=65534,
            gid=65534,
            env={"JUPYTERHUB_SINGLEUSER_APP": "notebook"},
        )


@pytest.mark.root
def test_root_servers_are_refused(forkserver):
    with pytest.raises(RuntimeError, match="refusing to start a server as root"):
        request_spawn(str(forkserver), argv=[], env={}, cwd="/")


def test_missing_forkserver_is_an_oserror(tmp_path):
    with pytest.raises(OSError):
        request_spawn(str(tmp_path / "none.sock"), argv=[], env={}, cwd="/")


def test_server_extensions_are_discovered():
    names = enabled_server_extensions()
    assert "jupyterlab" in names and "dask_labextension" in names


@pytest.mark.slow
def test_spawn_falls_back_without_forkserver(hub):
    """With the fork server gone, spawns start a fresh interpreter and still work."""
    sock = hub.data_dir / "run" / "forkserver.sock"
    moved = sock.with_name("moved.sock")
    os.rename(sock, moved)
    try:
        hub.create_user("no-forkserver")
        hub.spawn("no-forkserver", {"cores": 1})
    finally:
        os.rename(moved, sock)
    assert "Fork server unavailable" in hub.log_text()
    token = hub.user_token("no-forkserver")
    out = execute(f"{hub.url}/user/no-forkserver/", token, "import os; print(os.getuid())")
    assert (int(out) != 0) == (os.geteuid() == 0)
    r = requests.get(
        f"{hub.url}/user/no-forkserver/api/status",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200
    hub.stop_server("no-forkserver")


@pytest.mark.root
def test_forkserver_never_holds_a_request(forkserver_proc):
    """Requests carry users' tokens; every server forked later inherits the fork server's
    memory, so the fork server must never read one itself."""
    sock, proc = forkserver_proc
    secret = "hepml-secret-" + os.urandom(8).hex()
    pid = request_spawn(
        str(sock),
        argv=["--version"],
        cwd="/",
        uid=65534,
        gid=65534,
        env={"JUPYTERHUB_API_TOKEN": secret, "HOME": "/"},
    )
    assert pid != proc.pid
    assert process_memory_contains(os.getpid(), secret.encode())  # the scan finds it here
    assert not process_memory_contains(proc.pid, secret.encode())


@pytest.mark.slow
def test_forkserver_drops_the_hub_token_from_its_environment(tmp_path):
    sock = tmp_path / "fs.sock"
    secret = "hepml-secret-" + os.urandom(8).hex()
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": secret}
    proc = start_forkserver(
        sock, [sys.executable, "-m", "hepml_hub.forkserver", "--socket", str(sock)], env=env
    )
    try:
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        assert secret.encode() not in environ and b"PATH=" in environ
    finally:
        proc.kill()
        proc.wait()
