"""Batch backends: thin subclasses of dask-jobqueue's Slurm, HTCondor and PBS clusters.

Each adds to its dask-jobqueue parent, through :class:`BatchClusterMixin`:

- ``gpus=n``: the scheduler's GPU request (Slurm ``--gres=gpu:n``, HTCondor
  ``request_gpus = n``, PBS ``ngpus=n`` in the ``select`` statement) and the Dask worker
  resource ``GPU=n`` (always given, ``GPU=0`` on CPU jobs), so GPU tasks land only on GPU
  workers;
- ``tls=TemporaryTLS(...)``: TLS for scheduler, client and workers with this cluster's own
  certificates, whose directory is removed when the cluster closes;
- ``parity=EnvironmentParity(...)``: the scheduler refuses workers whose packages differ;
- ``dask_config={...}``: Dask settings for the worker (exported as ``DASK_*`` variables in
  the job script) and the scheduler (:mod:`~analysis_lib.compute.server_config`);
- the worker runs the session's interpreter (``python`` defaults to ``sys.executable``) and
  the scheduler's dashboard takes a free port.

Examples
--------
>>> cluster = SLURMCluster(cores=1, memory="1GiB", gpus=1, queue="gpu",
...                        python="/opt/env/bin/python")
>>> script = cluster.job_script()
>>> "#SBATCH --gres=gpu:1" in script and "--resources GPU=1" in script
True
>>> "/opt/env/bin/python -m distributed.cli.dask_worker" in script
True
>>> cluster.close()
"""

from __future__ import annotations

import importlib
import shlex
import signal
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import dask.config
from dask.utils import parse_bytes
from distributed.diagnostics.plugin import SchedulerPlugin

from analysis_lib.compute.errors import ComputeConfigError
from analysis_lib.compute.owned_tls import OwnsTLS
from analysis_lib.compute.server_config import applied, environment_variables
from analysis_lib.compute.tls import TemporaryTLS


def import_keeping_ctrl_c(name: str) -> ModuleType:
    """Import ``name`` and put back the process's Ctrl-C (SIGINT) handler if it changed it.

    dask-jobqueue 0.9.0 sets, when imported, a SIGINT handler that calls ``sys.exit()``
    (its runner module; dask/dask-jobqueue#696, fixed after that release): Ctrl-C, or a
    batch system's SIGINT, then ends a script with exit status 0 instead of raising
    ``KeyboardInterrupt`` — a run interrupted half way looked like one that succeeded.

    Examples
    --------
    >>> import signal
    >>> before = signal.getsignal(signal.SIGINT)
    >>> module = import_keeping_ctrl_c("dask_jobqueue")
    >>> signal.getsignal(signal.SIGINT) is before
    True
    """
    before = signal.getsignal(signal.SIGINT)
    module = importlib.import_module(name)
    if before is not None and signal.getsignal(signal.SIGINT) is not before:
        signal.signal(signal.SIGINT, before)
    return module


dask_jobqueue = import_keeping_ctrl_c("dask_jobqueue")
pbs_format_bytes_ceil = import_keeping_ctrl_c("dask_jobqueue.pbs").pbs_format_bytes_ceil

__all__ = ["BatchClusterMixin", "HTCondorCluster", "PBSCluster", "SLURMCluster"]


#: Job options that are lists of lines or arguments (HTCondor's directives: a mapping),
#: with an example of each.
LINE_OPTIONS = {
    "job_script_prologue": '["module load cuda"]',
    "job_extra_directives": '["--constraint=avx2"]',
    "job_directives_skip": '["--mem"]',
    "worker_extra_args": '["--lifetime", "55m"]',
}


def _check_option(key: str, value: Any, *, mapping: bool) -> None:
    """A list option given as one string became one script line per character."""
    if value is None:
        return
    if mapping:
        if not isinstance(value, Mapping):
            raise ComputeConfigError(
                key, value, 'expected a mapping of submit-file keys, e.g. {"+MaxRuntime": "3600"}'
            )
        return
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ComputeConfigError(key, value, f"expected a list, e.g. {LINE_OPTIONS[key]}")


class BatchClusterMixin(OwnsTLS):
    """GPU requests, worker resources, TLS and parity for a dask-jobqueue cluster.

    Subclasses implement :meth:`gpu_request`, which adds the scheduler-specific GPU request
    to the job keyword arguments.
    """

    def __init__(
        self,
        *args: Any,
        gpus: int = 0,
        tls: TemporaryTLS | None = None,
        parity: SchedulerPlugin | None = None,
        dask_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        config_name = kwargs.get("config_name") or self.job_cls.config_name
        self.gpus = int(gpus)
        self.tls = tls

        def config(key: str, default: Any = None) -> Any:
            return dask.config.get(f"jobqueue.{config_name}.{key}", default)

        for key in LINE_OPTIONS:
            mapping = key == "job_extra_directives" and self.job_cls.config_name == "htcondor"
            value = kwargs.get(key)
            if value is None:
                value = config(key.replace("_", "-"), None)
            _check_option(key, value, mapping=mapping)
        if kwargs.get("python") is None:
            kwargs["python"] = sys.executable
        worker_args = kwargs.get("worker_extra_args")
        if worker_args is None:
            worker_args = config("worker-extra-args", [])
        kwargs["worker_extra_args"] = [*worker_args, "--resources", f"GPU={self.gpus}"]
        if self.gpus:
            kwargs = self.gpu_request(self.gpus, kwargs, config)

        scheduler_options = dict(
            kwargs.get("scheduler_options") or config("scheduler-options", {}) or {}
        )
        scheduler_options.setdefault("dashboard_address", ":0")
        if parity is not None:
            scheduler_options["plugins"] = [*scheduler_options.get("plugins", ()), parity]
        kwargs["scheduler_options"] = scheduler_options
        if tls is not None:
            kwargs["security"] = tls.security
            kwargs.setdefault("protocol", "tls://")
        self.dask_config = dict(dask_config or {})
        if self.dask_config:
            prologue = kwargs.get("job_script_prologue")
            if prologue is None:
                prologue = config("job-script-prologue", []) or []
            exports = environment_variables(self.dask_config)
            kwargs["job_script_prologue"] = [
                *prologue,
                *(f"export {name}={shlex.quote(value)}" for name, value in exports.items()),
            ]
        with applied(self.dask_config):  # the scheduler here reads them when it is made
            super().__init__(*args, **kwargs)

    def gpu_request(self, gpus: int, kwargs: dict[str, Any], config) -> dict[str, Any]:
        """Return ``kwargs`` with this scheduler's request for ``gpus`` GPUs per job."""
        raise NotImplementedError


class SLURMCluster(BatchClusterMixin, dask_jobqueue.SLURMCluster):
    """Slurm jobs as Dask workers; GPUs through ``#SBATCH --gres=gpu:<n>``."""

    def gpu_request(self, gpus: int, kwargs: dict[str, Any], config) -> dict[str, Any]:
        directives = kwargs.get("job_extra_directives")
        if directives is None:
            directives = config("job-extra-directives", [])
        return {**kwargs, "job_extra_directives": [*directives, f"--gres=gpu:{gpus}"]}


class HTCondorCluster(BatchClusterMixin, dask_jobqueue.HTCondorCluster):
    """HTCondor jobs as Dask workers; GPUs through ``request_gpus = <n>``.

    >>> cluster = HTCondorCluster(cores=2, memory="4GiB", disk="1GiB", gpus=1)
    >>> "request_gpus = 1" in cluster.job_script()
    True
    >>> cluster.close()
    """

    def gpu_request(self, gpus: int, kwargs: dict[str, Any], config) -> dict[str, Any]:
        directives = kwargs.get("job_extra_directives")
        if directives is None:
            directives = config("job-extra-directives", {})
        return {**kwargs, "job_extra_directives": {**directives, "request_gpus": str(gpus)}}


class PBSCluster(BatchClusterMixin, dask_jobqueue.PBSCluster):
    """PBS jobs as Dask workers; GPUs through ``ngpus`` in ``-l select=1:ncpus=..:mem=..``.

    >>> cluster = PBSCluster(cores=2, memory="4GiB", gpus=2)
    >>> "#PBS -l select=1:ncpus=2:mem=4096MB:ngpus=2" in cluster.job_script()
    True
    >>> cluster.close()
    """

    def gpu_request(self, gpus: int, kwargs: dict[str, Any], config) -> dict[str, Any]:
        spec = kwargs.get("resource_spec") or config("resource-spec")
        if spec is None:
            cores = kwargs.get("cores") or config("cores")
            memory = kwargs.get("memory") or config("memory")
            spec = f"select=1:ncpus={cores}"
            if memory is not None:
                spec += ":mem=" + pbs_format_bytes_ceil(parse_bytes(memory))
        return {**kwargs, "resource_spec": f"{spec}:ngpus={gpus}"}
