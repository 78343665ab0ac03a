"""Deployment settings of hepml-hub, as traits that ``jupyterhub_config.py`` maps to JupyterHub.

Set them in ``jupyterhub_config.py`` (``c.HepmlHub.cull_timeout = 1800``) or, for the
common ones, through environment variables (``HEPML_DATA_DIR``, ``HEPML_BIND_URL``, ...),
which is how ``make hub`` and the tests pick free ports and private data directories.

Examples
--------
>>> from traitlets.config import Config
>>> c = Config()
>>> c.HepmlHub.cull_timeout = 1800
>>> HepmlHub(config=c).cull_timeout
1800
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Float, Integer, List, Set, Unicode, default, validate
from traitlets.config import Configurable

#: The repository (or installed tree) root: ``tutorials/`` and ``node_modules/`` live here.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

DEPLOYMENTS = ("embedded",)


def _env(name: str, fallback: str) -> str:
    return os.environ.get(name) or fallback


def _env_int(name: str, fallback: int) -> int:
    """A whole number of seconds from environment variable ``name``, else ``fallback``."""
    value = os.environ.get(name)
    if not value:
        return fallback
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={value!r} must be a whole number of seconds"
        ) from None


#: Settings whose defaults come from the environment: validated like configured values
#: (traitlets does not validate dynamic defaults).
_FROM_ENVIRONMENT = (
    "deployment",
    "cull_timeout",
    "cull_every",
    "gpu_cull_timeout",
    "gpu_cull_warning",
    "gpu_cull_every",
)


class HepmlHub(Configurable):
    """Settings of one hepml-hub deployment."""

    deployment = Unicode(
        help="""Which deployment to configure: ``embedded`` (one machine, local processes).

        Environment: ``HEPML_DEPLOYMENT``. Example: ``c.HepmlHub.deployment = "embedded"``
        """,
    ).tag(config=True)
    data_dir = Unicode(
        help="""Directory for the hub's state: database, cookie secret, homes (0711).

        Environment: ``HEPML_DATA_DIR``. Example: ``c.HepmlHub.data_dir = "/srv/hepml"``
        """,
    ).tag(config=True)
    bind_url = Unicode(
        help="""Public URL the proxy listens on.

        Environment: ``HEPML_BIND_URL``. Example: ``c.HepmlHub.bind_url = "http://127.0.0.1:8000"``
        """,
    ).tag(config=True)
    hub_bind_url = Unicode(
        help="""URL the hub process itself listens on (reached through the proxy).

        Environment: ``HEPML_HUB_BIND_URL``. Example: ``"http://127.0.0.1:8081"``
        """,
    ).tag(config=True)
    proxy_api_url = Unicode(
        help="""URL of configurable-http-proxy's REST API.

        Environment: ``HEPML_PROXY_API_URL``. Example: ``"http://127.0.0.1:8001"``
        """,
    ).tag(config=True)
    admin_users = Set(
        Unicode(),
        {"admin"},
        help="""Hub admins, added to ``Authenticator.admin_users``. The alphabetically first
        one is created on first start with a random password.

        Example: ``c.HepmlHub.admin_users = {"admin", "alice"}``
        """,
    ).tag(config=True)
    groups = List(
        Unicode(),
        ["gpu"],
        help="""Groups created on start, beside the site's ``JupyterHub.load_groups``
        (membership is managed in the admin page).

        Members of ``gpu`` may ask for GPUs. Example: ``c.HepmlHub.groups = ["gpu", "cms"]``
        """,
    ).tag(config=True)
    cull_timeout = Integer(
        help="""Seconds of inactivity after which jupyterhub-idle-culler stops a server.

        Environment: ``HEPML_CULL_TIMEOUT``. Example: ``c.HepmlHub.cull_timeout = 3600``
        """,
    ).tag(config=True)
    cull_every = Integer(
        help="""Seconds between two runs of the idle culler (default: a tenth of the timeout,
        between 10 and 300). Environment: ``HEPML_CULL_EVERY``.
        Example: ``c.HepmlHub.cull_every = 60``
        """,
    ).tag(config=True)

    gpu_cull_timeout = Integer(
        help="""Seconds a server holding GPUs may leave all of them idle (NVML utilisation below
        ``gpu_busy_percent``) before the GPU culler stops it; 0 turns GPU culling off.
        Busy GPUs count as activity, so busy training is never culled.

        Environment: ``HEPML_GPU_CULL_TIMEOUT``. Example: ``c.HepmlHub.gpu_cull_timeout = 1800``
        """,
    ).tag(config=True)
    gpu_cull_warning = Integer(
        help="""Seconds between the warning shown in the session and the stop (at most
        ``gpu_cull_timeout``). Environment: ``HEPML_GPU_CULL_WARNING``.
        Example: ``c.HepmlHub.gpu_cull_warning = 600``
        """,
    ).tag(config=True)
    gpu_cull_every = Integer(
        help="""Seconds between two GPU readings (default: a tenth of the warning, between 5
        and 60). Environment: ``HEPML_GPU_CULL_EVERY``. Example: ``c.HepmlHub.gpu_cull_every = 30``
        """,
    ).tag(config=True)
    gpu_busy_percent = Float(
        5.0,
        help="""A GPU at or above this utilisation (percent) is busy.
        Example: ``c.HepmlHub.gpu_busy_percent = 10``
        """,
    ).tag(config=True)

    @default("deployment")
    def _deployment_default(self) -> str:
        return _env("HEPML_DEPLOYMENT", "embedded")

    @validate("deployment")
    def _check_deployment(self, proposal):
        if proposal.value not in DEPLOYMENTS:
            raise ValueError(
                f"HepmlHub.deployment {proposal.value!r} is not one of {DEPLOYMENTS} "
                "(environment: HEPML_DEPLOYMENT)"
            )
        return proposal.value

    @default("data_dir")
    def _data_dir_default(self) -> str:
        return _env("HEPML_DATA_DIR", str(PROJECT_ROOT / "data"))

    @default("bind_url")
    def _bind_url_default(self) -> str:
        return _env("HEPML_BIND_URL", "http://127.0.0.1:8000")

    @default("hub_bind_url")
    def _hub_bind_url_default(self) -> str:
        return _env("HEPML_HUB_BIND_URL", "http://127.0.0.1:8081")

    @default("proxy_api_url")
    def _proxy_api_url_default(self) -> str:
        return _env("HEPML_PROXY_API_URL", "http://127.0.0.1:8001")

    @default("cull_timeout")
    def _cull_timeout_default(self) -> int:
        return _env_int("HEPML_CULL_TIMEOUT", 3600)

    @validate("cull_timeout", "cull_every")
    def _check_cull_timeout(self, proposal):
        name = proposal.trait.name
        if proposal.value < 1:
            raise ValueError(
                f"HepmlHub.{name} must be positive, got {proposal.value} (environment: "
                f"HEPML_{name.upper()})"
            )
        return proposal.value

    @default("cull_every")
    def _cull_every_default(self) -> int:
        fallback = max(10, min(300, self.cull_timeout // 10))
        return _env_int("HEPML_CULL_EVERY", fallback)

    @default("gpu_cull_timeout")
    def _gpu_cull_timeout_default(self) -> int:
        return _env_int("HEPML_GPU_CULL_TIMEOUT", 1800)

    @default("gpu_cull_warning")
    def _gpu_cull_warning_default(self) -> int:
        fallback = min(600, self.gpu_cull_timeout // 3)
        return _env_int("HEPML_GPU_CULL_WARNING", fallback)

    @default("gpu_cull_every")
    def _gpu_cull_every_default(self) -> int:
        fallback = max(5, min(60, self.gpu_cull_warning // 10))
        return _env_int("HEPML_GPU_CULL_EVERY", fallback)

    @validate("gpu_cull_timeout", "gpu_cull_warning", "gpu_cull_every")
    def _check_gpu_cull(self, proposal):
        name = proposal.trait.name
        if proposal.value < (1 if name == "gpu_cull_every" else 0):
            raise ValueError(
                f"HepmlHub.{name} must be {'positive' if name == 'gpu_cull_every' else '>= 0'}"
                f", got {proposal.value} (environment: HEPML_{name.upper()})"
            )
        return proposal.value

    @validate("gpu_busy_percent")
    def _check_busy(self, proposal):
        if not 0 < proposal.value <= 100:
            raise ValueError(f"HepmlHub.gpu_busy_percent must be in (0, 100], got {proposal.value}")
        return proposal.value

    def check(self) -> None:
        """Validate the settings that come from environment variables, as configured ones
        are: traitlets does not validate dynamic defaults, so ``HEPML_CULL_TIMEOUT=0`` or a
        misspelt ``HEPML_DEPLOYMENT`` would otherwise be taken as they are."""
        for name in _FROM_ENVIRONMENT:
            setattr(self, name, getattr(self, name))

    def apply(self, c) -> None:
        """Map these settings onto JupyterHub's traits in config ``c`` (checked first)."""
        from hepml_hub import embedded

        self.check()
        if self.deployment == "embedded":
            embedded.configure(c, self)
