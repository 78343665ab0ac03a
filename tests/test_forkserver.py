"""The fork server's protocol: who may use it and what it refuses (servers themselves are
started through it in the hub tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from hepml_hub.forkserver import enabled_server_extensions, request_spawn
from kernel import execute


@pytest.fixture
def forkserver(tmp_path):
    sock = tmp_path / "run" / "fs.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from hepml_hub.forkserver import serve; serve({str(sock)!r}, ['json'])",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield sock
    proc.kill()
    proc.wait()


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
