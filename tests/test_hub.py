"""The embedded hub end to end over REST: spawn with options, run code, restart, state files."""

from __future__ import annotations

import json
import os
import re
import stat
import time

import pytest
import requests

from hubprocess import HubProcess, delete_account
from kernel import execute

pytestmark = pytest.mark.slow

ENV_PROBE = """
import getpass, json, os, pathlib
home = pathlib.Path(os.environ["HOME"])
print(json.dumps({
    "user": getpass.getuser(),
    "uid": os.getuid(),
    "groups": os.getgroups(),
    "cwd": os.getcwd(),
    "home": str(home),
    "home_mode": oct(home.stat().st_mode & 0o777),
    "tutorials": sorted(p.name for p in (home / "tutorials").iterdir()),
    "env": {k: v for k, v in os.environ.items()
            if k.startswith(("HEPML_", "OMP_", "CUDA_", "MEM_", "CPU_", "TF_NUM"))},
}))
"""


def server_url(hub: HubProcess, name: str) -> str:
    return f"{hub.url}/user/{name}/"


def test_spawn_with_options_runs_code_and_sees_them(hub, users):
    name, _ = users.create("rest-alice")
    r = hub.spawn(name, {"stack": "cpu", "cores": 1, "memory": 3, "backend": "slurm"})
    assert r.status_code in (201, 202), r.text
    token = hub.user_token(name)
    assert execute(server_url(hub, name), token, "1+1").strip() == "2"

    probe = json.loads(execute(server_url(hub, name), token, ENV_PROBE))
    env = probe["env"]
    assert env["HEPML_STACK"] == "cpu"
    assert env["HEPML_CORES"] == env["OMP_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert env["HEPML_MEMORY"] == "3G"
    assert env["HEPML_DASK_BACKEND"] == "slurm"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert int(env["MEM_LIMIT"]) == 3 * 1024**3
    assert float(env["CPU_LIMIT"]) == 1.0
    assert probe["home"].endswith(f"/homes/{name}")
    assert probe["cwd"] == probe["home"]
    assert probe["home_mode"] == "0o700"
    assert "README.md" in probe["tutorials"]
    if os.geteuid() == 0:
        assert probe["user"] == f"jupyter-{name}"
        assert probe["uid"] != 0 and 0 not in probe["groups"]

    model = hub.server_model(name)
    assert model["user_options"] == {
        "stack": "cpu",
        "cores": 1,
        "memory": 3,
        "gpus": 0,
        "backend": "slurm",
    }


def test_defaults_fill_missing_options(hub, users):
    name, _ = users.create("rest-defaults")
    assert hub.spawn(name, {}).status_code in (201, 202)
    options = hub.server_model(name)["user_options"]
    assert options["stack"] == "cpu" and options["gpus"] == 0 and options["backend"] == "local"
    hub.stop_server(name)


def test_tutorial_edits_survive_respawn(hub, users):
    name, _ = users.create("rest-edits")
    hub.spawn(name, {"cores": 1})
    token = hub.user_token(name)
    code = "import pathlib; p = pathlib.Path.home() / 'tutorials' / 'README.md'; "
    execute(server_url(hub, name), token, code + "p.write_text('my notes')")
    hub.stop_server(name)
    hub.spawn(name, {"cores": 1})
    assert (
        execute(server_url(hub, name), token, code + "print(p.read_text())").strip() == "my notes"
    )
    hub.stop_server(name)


def test_managed_services(hub):
    services = hub.request("GET", "/services").json()
    assert {"idle-culler", "hepml-forkserver"} <= set(services)
    culler = " ".join(services["idle-culler"]["command"])
    assert "jupyterhub_idle_culler" in culler and "--timeout=3600" in culler


def test_launch_url_prefills_the_form(hub, users):
    name, password = users.create("launch-url")
    s = hub.login(name, password)
    seen = len(hub.log_text())  # the hub (and its log) may have served other tests
    page = s.get(f"{hub.url}/hub/spawn?stack=cpu&cores=1&memory=2&backend=slurm", timeout=30)
    assert page.status_code == 200
    assert re.search(r'<option value="1"\s+selected>1</option>', page.text)
    assert re.search(r'<option value="slurm"\s+selected>slurm</option>', page.text)
    assert hub.server_model(name) is None  # pre-filled, not started
    # on purpose, so the hub logs one line, not an error with a traceback
    log = hub.log_text()[seen:]
    assert "Launch URL without autostart: serving the form" in log
    assert "PrefillForm" not in log and "Failed to spawn single-user server" not in log

    seen = len(hub.log_text())
    bad = s.get(f"{hub.url}/hub/spawn?cores=999", timeout=30)
    assert bad.status_code == 400 and "cores: must be a whole number" in bad.text
    assert hub.server_model(name) is None
    # the user's mistake is a warning naming it, not a hub error with a traceback
    log = hub.log_text()[seen:]
    assert "Launch URL refused: cores: must be a whole number" in log
    assert "Traceback" not in log and "Failed to spawn single-user server" not in log

    started = s.get(f"{hub.url}/hub/spawn?cores=1&memory=2&autostart=1", timeout=30)
    assert started.status_code == 200
    hub.wait_ready(name)
    assert hub.server_model(name)["user_options"]["memory"] == 2
    hub.stop_server(name)


def test_state_files_are_private(hub):
    data = hub.data_dir
    for name in (
        "jupyterhub.sqlite",
        "jupyterhub_cookie_secret",
        "admin-password",
        "run/proxy-token",
    ):
        mode = stat.S_IMODE((data / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert stat.S_IMODE((data / "run").stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "run" / "forkserver.sock").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "homes").stat().st_mode) == 0o711


def test_signup_needs_admin_approval(hub, users):
    password = "another-long-passphrase-7"
    assert hub.signup("pending-user", password).status_code == 200
    _, r = hub.try_login("pending-user", password)
    assert r.status_code == 200 and "has not been authorized" in r.text
    users.admin.get(f"{hub.url}/hub/authorize/pending-user", timeout=30)
    hub.login("pending-user", password)  # asserts the redirect of a successful login


def test_weak_password_and_bad_name_refused(hub):
    r = hub.signup("weakling", "password")
    assert "Your password should be at least 10 characters" in r.text or "too common" in r.text
    r = hub.signup("Bad.Name", "a-perfectly-fine-passphrase")
    assert "Something went wrong" in r.text  # names that cannot become system accounts
    _, r = hub.try_login("bad.name", "a-perfectly-fine-passphrase")
    assert r.status_code != 302


@pytest.fixture
def own_hub():
    proc = HubProcess().start()
    yield proc
    proc.cleanup()


def test_server_survives_hub_restart(own_hub):
    hub = own_hub
    hub.create_user("survivor")
    hub.spawn("survivor", {"cores": 1})
    pid = hub.server_model("survivor")["state"]["pid"]
    token = hub.user_token("survivor")
    password = hub.admin_password()

    hub.restart()

    model = hub.server_model("survivor")
    assert model and model["ready"] and model["state"]["pid"] == pid
    r = requests.get(
        f"{hub.url}/user/survivor/api/status",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert execute(f"{hub.url}/user/survivor/", token, "6*7").strip() == "42"
    # the first admin is created once; its password is not replaced on restart
    assert hub.admin_password() == password
    assert hub.log_text().count("created admin user") == 1


def test_session_extensions_are_served(hub, users):
    """JupyterLab comes with dask-labextension and jupyter-resource-usage."""
    name, _ = users.create("rest-extensions")
    hub.spawn(name, {"cores": 1})
    token = hub.user_token(name)
    headers = {"Authorization": f"token {token}"}
    metrics = requests.get(f"{hub.url}/user/{name}/api/metrics/v1", headers=headers, timeout=30)
    assert metrics.status_code == 200 and "rss" in metrics.json()
    clusters = requests.get(f"{hub.url}/user/{name}/dask/clusters", headers=headers, timeout=30)
    assert clusters.status_code == 200 and clusters.json() == []
    lab = requests.get(f"{hub.url}/user/{name}/lab/api/settings", headers=headers, timeout=30)
    ids = {s["id"] for s in lab.json()["settings"]}
    assert any(i.startswith("dask-labextension") for i in ids), sorted(ids)[:20]
    notification = next(
        s
        for s in lab.json()["settings"]
        if s["id"] == "@jupyterlab/apputils-extension:notification"
    )
    # nobody is asked about Jupyter news on first login (see hepml_hub/jupyter_config)
    assert notification["schema"]["properties"]["fetchNews"]["default"] == "false"
    page = requests.get(f"{hub.url}/user/{name}/lab", headers=headers, timeout=30)
    assert '"news": {"disabled": true}' in page.text
    hub.stop_server(name)


def test_idle_servers_are_culled():
    """jupyterhub-idle-culler, as configured by the hub, stops an idle server."""
    hub = HubProcess(env={"HEPML_CULL_TIMEOUT": "3", "HEPML_CULL_EVERY": "2"}).start()
    try:
        hub.create_user("idler")
        hub.spawn("idler", {"cores": 1})
        deadline = time.monotonic() + 60
        while hub.server_model("idler") is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert hub.server_model("idler") is None, hub.log_tail()
        # the culler is a separate process: its log line can reach the hub's log just after
        # the hub has recorded the stop
        deadline = time.monotonic() + 15
        while "Culling server idler" not in hub.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Culling server idler" in hub.log_text(), hub.log_tail()
    finally:
        hub.cleanup()


@pytest.fixture
def personal_account():
    """An ordinary system account to run a personal hub (as on a laptop)."""
    import pwd
    import subprocess

    name = "hepml-personal"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/bin/bash", name], check=True
        )
    yield pwd.getpwnam(name)
    delete_account(name)


@pytest.mark.root
def test_personal_hub_runs_servers_as_its_own_user(personal_account):
    """A hub started by an ordinary user runs every server as that user, homes apart."""
    hub = HubProcess(run_as=personal_account.pw_name).start()
    try:
        hub.create_user("laptop")
        assert hub.spawn("laptop", {"cores": 1}).status_code in (201, 202), hub.log_tail()
        token = hub.user_token("laptop")
        probe = json.loads(execute(server_url(hub, "laptop"), token, ENV_PROBE))
        assert probe["uid"] == personal_account.pw_uid
        assert probe["home"] == str(hub.data_dir / "homes" / "laptop")
        assert probe["home_mode"] == "0o700"
        assert "Fork server unavailable" not in hub.log_text()
    finally:
        hub.cleanup()
