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
