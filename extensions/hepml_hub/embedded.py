"""The embedded deployment: JupyterHub, configurable-http-proxy and local servers on one machine.

:func:`configure` maps :class:`hepml_hub.settings.HepmlHub` onto JupyterHub's traits:
sqlite state, a persisted cookie secret and the proxy token in the data directory (files
0600), :class:`~hepml_hub.auth.HepmlAuthenticator`, :class:`~hepml_hub.spawner.HepmlSpawner`,
and managed services: the fork server, jupyterhub-idle-culler and (unless
``gpu_cull_timeout`` is 0) the GPU culler (:mod:`hepml_hub.gpu_culler`).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from hepml_hub.auth import write_private
from hepml_hub.settings import PROJECT_ROOT, HepmlHub

#: Dask backends a single machine can reach (Kubernetes and dask-gateway need a cluster).
EMBEDDED_BACKENDS = ("local", "slurm", "htcondor", "pbs")
TEMPLATES = Path(__file__).parent / "templates"


def _setdefault(section, name: str, value) -> None:
    """Set ``section.name`` unless the site configuration already did."""
    if name not in section:
        section[name] = value


def private_file(path: Path, make: bool = False) -> Path:
    """Ensure ``path`` exists with mode 0600 (``make``: fill it with a random secret)."""
    if not path.exists():
        write_private(path, secrets.token_hex(32) + "\n" if make else "")
    path.chmod(0o600)
    return path


def configure(c, hub: HepmlHub) -> None:
    """Configure JupyterHub for one machine.

    Values derived from ``hub`` are always set; other defaults (``HepmlSpawner.backends``,
    ``tutorials_dir``, ``forkserver_socket``, ``Spawner.default_url``, ...) only where the
    site configuration set nothing; services, roles, groups and admins are added to the
    site's own. A ``HepmlSpawner.data_dir`` other than the hub's is an error (the homes live
    in the hub's data directory).
    """
    data = Path(hub.data_dir).resolve()
    for folder in (data, data / "homes"):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o711)  # users may traverse to their own home, not list others
    run = data / "run"
    run.mkdir(mode=0o700, exist_ok=True)
    run.chmod(0o700)

    c.JupyterHub.bind_url = hub.bind_url
    c.JupyterHub.hub_bind_url = hub.hub_bind_url
    c.JupyterHub.db_url = f"sqlite:///{private_file(data / 'jupyterhub.sqlite')}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(run / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = False  # a hub restart leaves users' servers running
    _setdefault(c.JupyterHub, "template_paths", [str(TEMPLATES / "pages")])
    c.JupyterHub.load_groups = {
        **{name: {"users": []} for name in hub.groups},
        **(c.JupyterHub.load_groups if "load_groups" in c.JupyterHub else {}),
    }

    c.ConfigurableHTTPProxy.command = [
        str(PROJECT_ROOT / "node_modules" / ".bin" / "configurable-http-proxy")
    ]
    c.ConfigurableHTTPProxy.api_url = hub.proxy_api_url
    c.ConfigurableHTTPProxy.pid_file = str(run / "proxy.pid")
    c.ConfigurableHTTPProxy.auth_token = (
        private_file(run / "proxy-token", make=True).read_text().strip()
    )

    c.JupyterHub.authenticator_class = "hepml_hub.auth.HepmlAuthenticator"
    c.Authenticator.admin_users = set(hub.admin_users) | set(
        c.Authenticator.admin_users if "admin_users" in c.Authenticator else ()
    )
    c.Authenticator.allow_all = True  # access is granted by admin approval of sign-ups
    c.HepmlAuthenticator.first_admin = sorted(hub.admin_users)[0] if hub.admin_users else ""
    c.HepmlAuthenticator.admin_password_file = str(data / "admin-password")

    c.JupyterHub.spawner_class = "hepml_hub.spawner.HepmlSpawner"
    if "data_dir" in c.HepmlSpawner and Path(c.HepmlSpawner.data_dir).resolve() != data:
        raise ValueError(
            f"HepmlSpawner.data_dir {c.HepmlSpawner.data_dir!r} differs from the hub's data "
            f"directory {str(data)!r}: on the embedded hub set HepmlHub.data_dir (or "
            "HEPML_DATA_DIR), which holds the homes too"
        )
    c.HepmlSpawner.data_dir = str(data)
    _setdefault(c.HepmlSpawner, "forkserver_socket", str(run / "forkserver.sock"))
    socket = c.HepmlSpawner.forkserver_socket  # "" turns the fork server off
    _setdefault(c.HepmlSpawner, "tutorials_dir", str(PROJECT_ROOT / "tutorials"))
    _setdefault(c.HepmlSpawner, "backends", list(EMBEDDED_BACKENDS))
    _setdefault(c.Spawner, "default_url", "/lab")
    _setdefault(c.Spawner, "http_timeout", 60)
    _setdefault(c.Spawner, "start_timeout", 120)

    forkserver = [
        {
            "name": "hepml-forkserver",
            "command": [sys.executable, "-m", "hepml_hub.forkserver", "--socket", str(socket)],
        }
    ]
    c.JupyterHub.services = [
        *(c.JupyterHub.services if "services" in c.JupyterHub else []),
        *(forkserver if socket else []),
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={hub.cull_timeout}",
                f"--cull-every={hub.cull_every}",
            ],
        },
    ]
    c.JupyterHub.load_roles = [
        *(c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else []),
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        },
    ]
    if hub.gpu_cull_timeout > 0:
        _gpu_culler(c, hub)
    # the site's stacks, limits and form defaults, checked now rather than in every form
    from hepml_hub.spawner import HepmlSpawner

    HepmlSpawner(config=c).spec  # noqa: B018 - building it checks it


def _gpu_culler(c, hub: HepmlHub) -> None:
    """The GPU culler service and its role."""
    from hepml_hub.gpu_culler import SCOPES

    if hub.gpu_cull_warning > hub.gpu_cull_timeout:
        raise ValueError(
            f"HepmlHub.gpu_cull_warning ({hub.gpu_cull_warning}) is longer than "
            f"gpu_cull_timeout ({hub.gpu_cull_timeout})"
        )
    c.JupyterHub.services.append(
        {
            "name": "gpu-culler",
            "command": [
                sys.executable,
                "-m",
                "hepml_hub.gpu_culler",
                f"--timeout={hub.gpu_cull_timeout}",
                f"--warn={hub.gpu_cull_warning}",
                f"--every={hub.gpu_cull_every}",
                f"--busy-percent={hub.gpu_busy_percent}",
                f"--public-url={hub.bind_url}",
            ],
        }
    )
    c.JupyterHub.load_roles.append(
        {"name": "gpu-culler", "scopes": list(SCOPES), "services": ["gpu-culler"]}
    )
