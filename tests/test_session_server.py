"""The session's server extension in a real JupyterLab server (no hub): REST, config, page.

The server runs with the site configuration (``JUPYTER_CONFIG_PATH``), the spawn form's
choices (``HEPML_*``) and a user's Dask configuration file that changes the panel's
cluster, as documented in ``hepml_hub.session.labcluster``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hepml_hub.session import LABEXTENSION_DIR
from hubprocess import free_port

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).resolve().parents[1] / "extensions" / "hepml_hub" / "jupyter_config"


class Server:
    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def call(self, method: str, path: str, *, auth: bool = True, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"} if auth else {}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("home")
    dask_config = home / ".config" / "dask"
    dask_config.mkdir(parents=True)
    # The user's own choice: one worker, although the session has two cores.
    (dask_config / "labextension.yaml").write_text(
        "labextension:\n  factory:\n    kwargs:\n      n_workers: 1\n"
    )
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "HOME": str(home),
        "DASK_CONFIG": str(dask_config),
        "JUPYTER_CONFIG_PATH": str(CONFIG),
        "HEPML_DASK_BACKEND": "local",
        "HEPML_CORES": "2",
        "HEPML_MEMORY": "2G",
        "OMP_NUM_THREADS": "1",
    }
    log = open(home / "server.log", "wb")  # noqa: SIM115 -- handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={home}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home,
    )  # fmt: skip
    srv = Server(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if srv.call("GET", "/hepml/notices").status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            pytest.fail((home / "server.log").read_text()[-3000:])
        yield srv
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_panel_cluster_uses_session_backend_and_user_config(server):
    assert server.call("GET", "/hepml/clusters", auth=False).status_code == 403
    assert server.call("GET", "/hepml/clusters").json() == []

    created = server.call("PUT", "/dask/clusters", json={})  # the panel's "+ NEW"
    assert created.status_code == 200, created.text
    model = created.json()
    [entry] = server.call("GET", "/hepml/clusters").json()
    assert entry["id"] == f"dask:{model['id']}"
    assert entry["detail"]["cluster"] == "LocalCluster"  # analysis_lib.compute's
    assert entry["detail"]["workers"] == 1  # the user's file, not HEPML_CORES=2
    assert entry["detail"]["memory"] == "2.00 GiB"  # the session's HEPML_MEMORY

    gone = server.call("DELETE", f"/hepml/clusters/dask%3A{model['id']}")
    assert gone.status_code == 204, gone.text
    assert server.call("GET", "/hepml/clusters").json() == []
    again = server.call("DELETE", f"/hepml/clusters/dask:{model['id']}")
    assert again.status_code == 404 and "no such Dask cluster" in again.json()["message"]


def test_notices_are_validated_kept_and_listed(server):
    bad = server.call("POST", "/hepml/notices", json={"message": "  "})
    assert bad.status_code == 400 and "'message'" in bad.json()["message"]
    assert server.call("POST", "/hepml/notices", json={"message": "x"}, auth=False).status_code in (
        401,
        403,
    )
    posted = server.call("POST", "/hepml/notices", json={"id": "n1", "message": "GPU idle"})
    assert posted.status_code == 201, posted.text
    assert [(n["id"], n["type"]) for n in server.call("GET", "/hepml/notices").json()] == [
        ("n1", "warning")
    ]


def test_lab_loads_the_notice_extension_and_frames_the_inventory(server):
    page = server.call("GET", "/hepml/inventory")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert 'id="hepml-inventory"' in page.text and "{{api}}" not in page.text
    lab = server.call("GET", "/lab").text
    assert '"name": "hepml-session"' in lab or '"name":"hepml-session"' in lab
    assert (LABEXTENSION_DIR / "hepml-session" / "static" / "remoteEntry.js").is_file()
    servers = server.call("GET", "/server-proxy/servers-info").json()["server_processes"]
    [card] = [s["launcher_entry"] for s in servers if s["name"] == "hepml-inventory"]
    assert card["path_info"] == "hepml/inventory" and card["enabled"]
