"""Dask clusters for the session: local, Slurm, HTCondor, PBS, Kubernetes and dask-gateway.

One factory, :func:`make_cluster` (or :func:`connect` for a client that owns its cluster),
builds the cluster of a backend from the site configuration: the packaged
``hepml-compute.yaml`` (every key commented) read through :mod:`dask.config` under
``hepml.compute``, a site file named by ``$HEPML_COMPUTE_CONFIG``, and keyword arguments.
The backend, cores, memory and GPUs chosen in the hub's spawn form (``HEPML_DASK_BACKEND``,
``HEPML_CORES``, ``HEPML_MEMORY``, ``HEPML_GPUS``) are the session's defaults.

- GPU workers: Slurm ``--gres=gpu:n``, HTCondor ``request_gpus``, PBS ``ngpus``,
  Kubernetes ``nvidia.com/gpu``, and the Dask resource ``GPU=n`` on every worker, so a
  task submitted with ``resources={"GPU": 1}`` runs only on a GPU worker
  (:mod:`.gpus` detects GPUs through NVML);
- environment parity: workers run the session's interpreter or image, and the scheduler
  refuses a worker whose package versions differ from the client's, with a message naming
  the packages (:mod:`.parity`);
- TLS with per-cluster temporary certificates (0600 files, removed at close) between
  client, scheduler and batch workers (:mod:`.tls`).

Modules: :mod:`.config`, :mod:`.resources`, :mod:`.factory`, :mod:`.local`,
:mod:`.jobqueue`, :mod:`.kubernetes`, :mod:`.gateway`, :mod:`.parity`, :mod:`.tls`,
:mod:`.gpus`, :mod:`.errors`.

Examples
--------
>>> from analysis_lib.compute import connect, resolve_settings
>>> resolve_settings("slurm", environ={"HEPML_CORES": "4"}).cores
4
>>> client = connect()  # the session's backend and resources  # doctest: +SKIP
>>> client = connect("slurm", queue="gpu", gpus=1)  # doctest: +SKIP
>>> client.cluster.scale(jobs=4)  # doctest: +SKIP
"""

import importlib
from typing import TYPE_CHECKING, Any

# Names are loaded on first use (PEP 562), so that ``import analysis_lib.compute.gpus`` (used
# by training for the GPU count) does not import dask-jobqueue, dask-kubernetes and the rest:
# dask-jobqueue installs signal handlers at import, which fails outside the main thread.
_EXPORTS = {
    "CONFIG_KEY": "config",
    "ClusterSettings": "config",
    "resolve_settings": "config",
    "ComputeConfigError": "errors",
    "EnvironmentSkewError": "errors",
    "SessionClient": "factory",
    "connect": "factory",
    "local_cluster": "factory",
    "make_cluster": "factory",
    "visible_gpus": "gpus",
    "HTCondorCluster": "jobqueue",
    "PBSCluster": "jobqueue",
    "SLURMCluster": "jobqueue",
    "LocalCluster": "local",
    "PARITY_TOPIC": "parity",
    "EnvironmentParity": "parity",
    "refusals": "parity",
    "wait_for_workers": "parity",
    "BACKENDS": "resources",
    "parse_memory": "resources",
    "session_resources": "resources",
    "TemporaryTLS": "tls",
}

if TYPE_CHECKING:  # pragma: no cover
    from .config import CONFIG_KEY, ClusterSettings, resolve_settings
    from .errors import ComputeConfigError, EnvironmentSkewError
    from .factory import SessionClient, connect, local_cluster, make_cluster
    from .gpus import visible_gpus
    from .jobqueue import HTCondorCluster, PBSCluster, SLURMCluster
    from .local import LocalCluster
    from .parity import PARITY_TOPIC, EnvironmentParity, refusals, wait_for_workers
    from .resources import BACKENDS, parse_memory, session_resources
    from .tls import TemporaryTLS


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "BACKENDS",
    "CONFIG_KEY",
    "PARITY_TOPIC",
    "ClusterSettings",
    "ComputeConfigError",
    "EnvironmentParity",
    "EnvironmentSkewError",
    "HTCondorCluster",
    "LocalCluster",
    "PBSCluster",
    "SLURMCluster",
    "SessionClient",
    "TemporaryTLS",
    "connect",
    "local_cluster",
    "make_cluster",
    "parse_memory",
    "refusals",
    "resolve_settings",
    "session_resources",
    "visible_gpus",
    "wait_for_workers",
]
