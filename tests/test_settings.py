"""Settings map onto JupyterHub's traits without overriding what the site configured."""

from __future__ import annotations

import stat

import pytest
from traitlets.config import Config

from hepml_hub.settings import HepmlHub


def test_embedded_keeps_site_choices(tmp_path):
    c = Config()
    c.HepmlSpawner.backends = ["local"]
    c.Spawner.default_url = "/tree"
    c.JupyterHub.services = [{"name": "site-monitor", "api_token": "x" * 32}]
    HepmlHub(config=c, data_dir=str(tmp_path / "data")).apply(c)
    assert c.HepmlSpawner.backends == ["local"]
    assert c.Spawner.default_url == "/tree"
    names = [s["name"] for s in c.JupyterHub.services]
    assert names == ["site-monitor", "hepml-forkserver", "idle-culler", "gpu-culler"]
    assert c.HepmlSpawner.data_dir == str(tmp_path / "data")


def test_embedded_adds_to_the_sites_admins_groups_and_fork_server_choice(tmp_path):
    # they were overwritten without a word
    c = Config()
    c.Authenticator.admin_users = {"alice"}
    c.JupyterHub.load_groups = {"cms": {"users": ["alice"]}}
    c.HepmlSpawner.forkserver_socket = ""  # its help says: "" disables it
    HepmlHub(config=c, data_dir=str(tmp_path / "data")).apply(c)
    assert c.Authenticator.admin_users == {"admin", "alice"}
    assert c.JupyterHub.load_groups == {"gpu": {"users": []}, "cms": {"users": ["alice"]}}
    assert c.HepmlSpawner.forkserver_socket == ""
    assert "hepml-forkserver" not in [s["name"] for s in c.JupyterHub.services]


def test_embedded_refuses_a_spawner_data_dir_of_its_own(tmp_path):
    c = Config()
    c.HepmlSpawner.data_dir = str(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match=r"differs from the hub's data directory .* HepmlHub"):
        HepmlHub(config=c, data_dir=str(tmp_path / "data")).apply(c)


def test_embedded_defaults_and_private_state(tmp_path):
    c = Config()
    HepmlHub(config=c, data_dir=str(tmp_path / "data"), cull_timeout=600).apply(c)
    assert c.HepmlSpawner.backends == ["local", "slurm", "htcondor", "pbs"]
    assert c.JupyterHub.cleanup_servers is False
    culler = next(s for s in c.JupyterHub.services if s["name"] == "idle-culler")
    assert "--timeout=600" in culler["command"] and "--cull-every=60" in culler["command"]
    for name in ("jupyterhub.sqlite", "run/proxy-token"):
        assert stat.S_IMODE((tmp_path / "data" / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "homes").stat().st_mode) == 0o711


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [("deployment", "docker-compose", "docker-compose"), ("cull_timeout", 0, "positive")],
)
def test_bad_settings_are_refused(trait, value, message):
    with pytest.raises(Exception, match=message):
        HepmlHub(**{trait: value})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        # traitlets does not validate defaults: these were taken as they came, and a
        # timeout of 0 culled every server every 10 s; a misspelt deployment configured
        # nothing, leaving JupyterHub's own defaults (PAM, every interface)
        ("HEPML_DEPLOYMENT", "k8s", r"'k8s' is not one of .* \(environment: HEPML_DEPLOYMENT\)"),
        ("HEPML_CULL_TIMEOUT", "0", r"cull_timeout must be positive, got 0 \(environment"),
        ("HEPML_CULL_EVERY", "0", r"cull_every must be positive, got 0"),
        ("HEPML_GPU_CULL_TIMEOUT", "-1", r"gpu_cull_timeout must be >= 0, got -1"),
        ("HEPML_CULL_TIMEOUT", "1h", r"HEPML_CULL_TIMEOUT='1h' must be a whole number of seconds"),
    ],
)
def test_settings_from_the_environment_are_checked_too(
    monkeypatch, tmp_path, variable, value, message
):
    monkeypatch.setenv(variable, value)
    c = Config()
    with pytest.raises(ValueError, match=message):
        HepmlHub(config=c, data_dir=str(tmp_path / "data")).apply(c)
    assert not (tmp_path / "data").exists()  # refused before anything is written


def test_embedded_checks_the_spawner_settings_at_start(tmp_path):
    # a typo here used to surface as an IndexError in every user's spawn form
    c = Config()
    c.HepmlSpawner.limits = {"*": {"cores": 2, "memory": 4, "stacks": "cpu"}}
    with pytest.raises(ValueError, match=r"limits\['\*'\]\['stacks'\] must be a list of names"):
        HepmlHub(config=c, data_dir=str(tmp_path / "data")).apply(c)
