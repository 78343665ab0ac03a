"""Site configuration of the Dask backends, read through :mod:`dask.config`.

The packaged ``hepml-compute.yaml`` (next to this module; every key commented) is loaded
into dask's defaults under ``hepml.compute`` at import. On top of it, in order of priority:

1. dask's own config files and ``DASK_HEPML__COMPUTE__...`` environment variables;
2. one site file named by ``$HEPML_COMPUTE_CONFIG`` (same layout, read at every call);
3. keyword arguments of :func:`resolve_settings` (and so of ``make_cluster``).

``cores``, ``memory`` and ``gpus`` left ``null`` come from the session's spawn form
(:func:`~analysis_lib.compute.resources.session_resources`); the backend is the argument,
else ``$HEPML_DASK_BACKEND``, else ``hepml.compute.backend``.

Examples
--------
>>> settings = resolve_settings("slurm", environ={"HEPML_CORES": "2", "HEPML_MEMORY": "4G"},
...                             queue="debug")
>>> settings.backend, settings.cores, settings.memory, settings.gpus, settings.tls
('slurm', 2, 4294967296, 0, True)
>>> settings.options["queue"], settings.options["walltime"]
('debug', '01:00:00')
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.config
import yaml

from analysis_lib.compute.errors import ComputeConfigError
from analysis_lib.compute.resources import (
    BATCH_BACKENDS,
    check_backend,
    check_count,
    check_walltime,
    parse_memory,
    session_resources,
)
from analysis_lib.compute.server_config import check_dask_config

__all__ = [
    "CONFIG_KEY",
    "DEFAULTS_FILE",
    "PARITY_MODES",
    "SITE_CONFIG_ENV",
    "ClusterSettings",
    "load_site_file",
    "resolve_settings",
]

#: Where the settings live in :mod:`dask.config`.
CONFIG_KEY = "hepml.compute"
#: The packaged defaults.
DEFAULTS_FILE = Path(__file__).with_name("hepml-compute.yaml")
#: Environment variable naming a site YAML file.
SITE_CONFIG_ENV = "HEPML_COMPUTE_CONFIG"
#: What a worker whose packages differ from the client's gets.
PARITY_MODES = ("refuse", "warn", "off")

FALLBACK_CORES = 1
FALLBACK_MEMORY = 2 * 2**30
_COMMON = ("n_workers", "cores", "memory", "gpus", "tls", "parity", "dask_config")


def _load_defaults() -> None:
    with open(DEFAULTS_FILE) as f:
        dask.config.update_defaults(yaml.safe_load(f))


_load_defaults()


@dataclass(frozen=True)
class ClusterSettings:
    """Everything one cluster is built from, validated.

    ``memory`` is in bytes; per worker for batch, Kubernetes and gateway backends, for the
    whole cluster for ``local``. ``options`` holds the backend's other keys (underscored);
    ``dask_config`` the Dask settings of the cluster's servers
    (:mod:`analysis_lib.compute.server_config`).
    """

    backend: str
    n_workers: int
    cores: int
    memory: int
    gpus: int
    tls: bool
    tls_directory: str
    parity_mode: str
    parity_packages: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    dask_config: dict[str, Any] = field(default_factory=dict)


def load_site_file(path: str | os.PathLike) -> dict[str, Any]:
    """The ``hepml.compute`` part of a site YAML file (``{}`` when it has none).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
    ...     _ = f.write("hepml:\\n  compute:\\n    slurm:\\n      queue: gpu\\n")
    ...     f.flush()
    ...     load_site_file(f.name)
    {'slurm': {'queue': 'gpu'}}
    """
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as exc:
        raise ComputeConfigError(SITE_CONFIG_ENV, str(path), f"cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ComputeConfigError(SITE_CONFIG_ENV, str(path), f"not valid YAML: {exc}") from None
    compute = data.get("hepml", {}).get("compute", {}) if isinstance(data, dict) else None
    if not isinstance(compute, dict):
        raise ComputeConfigError(
            SITE_CONFIG_ENV, str(path), "expected a mapping under hepml: compute:"
        )
    return compute


def _underscored(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).replace("-", "_"): v for k, v in mapping.items()}


def resolve_settings(
    backend: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> ClusterSettings:
    """Merge packaged defaults, dask config, site file, session choices and ``overrides``.

    Parameters
    ----------
    backend
        One of :data:`~analysis_lib.compute.resources.BACKENDS`; ``None`` for the session's.
    environ
        Environment to read ``HEPML_*`` from (default: ``os.environ``).
    **overrides
        Per-call settings: ``n_workers``, ``cores``, ``memory``, ``gpus``, ``tls`` (bool),
        ``parity`` (``"refuse"``, ``"warn"`` or ``"off"``) and any backend key
        (``queue="gpu"``, ``walltime="00:30:00"``, ``python=...``), dashes or underscores.

    Raises
    ------
    ComputeConfigError
        Unknown backend, counts below their minimum, malformed memory, unknown parity mode;
        the message names the setting and its value.

    Examples
    --------
    >>> resolve_settings("local", environ={}, cores=2).n_workers
    2
    >>> resolve_settings("pbs", environ={}, cores=-1)
    Traceback (most recent call last):
    ...
    analysis_lib.compute.errors.ComputeConfigError: cores=-1: must be a whole number >= 1
    """
    env = os.environ if environ is None else environ
    session = session_resources(env)
    config = copy.deepcopy(dask.config.get(CONFIG_KEY))
    site_path = env.get(SITE_CONFIG_ENV, "").strip()
    if site_path:
        config = dask.config.merge(config, load_site_file(site_path))

    chosen = backend if backend is not None else session.backend or config.get("backend")
    chosen = check_backend(chosen)
    section = _underscored(config.get(chosen) or {})
    overrides = _underscored(overrides)
    merged = {**section, **overrides}

    def pick(key: str, from_session: Any, fallback: Any) -> Any:
        value = merged.get(key)
        if value is None:
            value = from_session
        return fallback if value is None else value

    cores = check_count("cores", pick("cores", session.cores, FALLBACK_CORES), minimum=1)
    memory = parse_memory(pick("memory", session.memory, FALLBACK_MEMORY))
    gpus = check_count("gpus", pick("gpus", session.gpus, 0), minimum=0)

    threads = check_count("threads_per_worker", merged.get("threads_per_worker") or 1, minimum=1)
    default_workers = max(1, cores // threads) if chosen == "local" else 0
    n_workers_value = merged.get("n_workers")
    n_workers = check_count(
        "n_workers", default_workers if n_workers_value is None else n_workers_value, minimum=0
    )

    tls_config = _underscored(config.get("tls") or {})
    tls = merged.get("tls", tls_config.get("enabled"))
    if tls is None:
        tls = chosen in BATCH_BACKENDS
    if not isinstance(tls, bool):
        raise ComputeConfigError("tls", tls, "expected true, false or null")

    parity_config = _underscored(config.get("parity") or {})
    parity_mode = merged.get("parity", parity_config.get("mode", "refuse"))
    if parity_mode not in PARITY_MODES:
        raise ComputeConfigError("parity", parity_mode, f"choose one of {PARITY_MODES}")
    packages = parity_config.get("packages") or []
    if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
        raise ComputeConfigError("parity.packages", packages, "expected a list of names")

    if "dask_config" in overrides:
        server_config = overrides["dask_config"]
    else:
        server_config = config.get("dask-config", config.get("dask_config"))
    server_config = check_dask_config(server_config)

    options = {k: v for k, v in merged.items() if k not in _COMMON}
    if "walltime" in options:
        check_walltime(chosen, options["walltime"])
    return ClusterSettings(
        backend=chosen,
        n_workers=n_workers,
        cores=cores,
        memory=memory,
        gpus=gpus,
        tls=tls,
        tls_directory=str(tls_config.get("directory") or "~/.cache/hepml-hub/dask-tls"),
        parity_mode=parity_mode,
        parity_packages=tuple(packages),
        options=options,
        dask_config=server_config,
    )
