"""Shared fixtures: one real hub for the session, users with passwords, markers' skips."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))

from hubprocess import HubProcess

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct-horse-battery-staple-42"


def pytest_collection_modifyitems(config, items):
    not_root = pytest.mark.skip(reason="needs root to create per-user system accounts")
    no_browser = pytest.mark.skip(reason=f"{CHROMIUM} missing (make system-deps installs it)")
    no_gpu = pytest.mark.skip(reason="no NVIDIA GPU visible to NVML on this machine")
    have_gpu = None
    for item in items:
        if "root" in item.keywords and os.geteuid() != 0:
            item.add_marker(not_root)
        if "browser" in item.keywords and not CHROMIUM.exists():
            item.add_marker(no_browser)
        if "gpu" in item.keywords:
            if have_gpu is None:
                from hepml_hub.gpus import GpuInventory

                have_gpu = GpuInventory().count() > 0
            if not have_gpu:
                item.add_marker(no_gpu)


@pytest.fixture(scope="session")
def hub():
    """A running hepml-hub, shared by the tests of one session."""
    proc = HubProcess().start()
    yield proc
    proc.cleanup()


class Users:
    """Creates hub users with passwords (sign-up, then approval by the admin)."""

    def __init__(self, hub: HubProcess):
        self.hub = hub
        self._admin: requests.Session | None = None

    @property
    def admin(self) -> requests.Session:
        if self._admin is None:
            self._admin = self.hub.login("admin", self.hub.admin_password())
        return self._admin

    def create(self, name: str, *, groups=(), password: str = PASSWORD) -> tuple[str, str]:
        r = self.hub.signup(name, password)
        assert r.status_code == 200, r.text[:500]
        r = self.admin.get(f"{self.hub.url}/hub/authorize/{name}", timeout=30)
        assert r.status_code == 200, r.status_code
        self.hub.create_user(name, groups=groups)
        return name, password


@pytest.fixture(scope="session")
def users(hub) -> Users:
    return Users(hub)


@pytest.fixture(scope="session")
def slurm():
    """A single-node Slurm on localhost (tests/slurm.py); skips without root."""
    from slurm import slurm_session

    yield from slurm_session()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.skip("chromium not installed")
    return str(CHROMIUM)
