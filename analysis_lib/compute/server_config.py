"""Dask settings for the servers of the clusters :func:`~analysis_lib.compute.make_cluster` makes.

Dask's defaults suit big machines: every scheduler, nanny and worker checks its event loop's
health every 20 ms, and every worker samples its running tasks' stacks every 10 ms for the
dashboard's profile page. On a hub session of two cores an idle local cluster of two
workers then uses 3-6 % of the machine; with the packaged settings about 1 %
(``benchmarks/scan.py`` measures it; its scans, CPU-bound, ran as fast with either within
the machine's noise). The packaged configuration
(``hepml.compute.dask-config``, every key commented) slows these background loops down;
``make_cluster(..., dask_config={})`` keeps Dask's own defaults.

How the settings reach each server:

* local clusters: the scheduler and every nanny and worker process are made with the
  settings applied (:func:`applied`), also workers added later by ``scale``;
* batch jobs (Slurm, HTCondor, PBS): exported as ``DASK_*`` variables in the job script
  (:func:`environment_variables`); the scheduler in the session is made with them applied;
* Kubernetes workers: the same variables in the worker containers' environment.

Keys under :data:`WORKER_ENVIRON` (``distributed.nanny.pre-spawn-environ.<NAME>``) are
environment variables that each nanny sets before it starts its worker process; the name
keeps its case, and the entry is added to Dask's own (``OMP_NUM_THREADS=1``, ...) rather
than replacing them. A nanny prefers a variable already set in the environment of the
process that makes it to its configuration, so local clusters also set them there
(:class:`~analysis_lib.compute.local.LocalCluster`). The packaged ones tune glibc's
allocator in the workers (see ``hepml-compute.yaml``).

Examples
--------
>>> environment_variables({"distributed.admin.tick.interval": "1s"})
{'DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL': '1s'}
>>> import dask
>>> with applied({"distributed.admin.tick.interval": "1s"}):
...     dask.config.get("distributed.admin.tick.interval")
'1s'
>>> environment_variables({WORKER_ENVIRON + ".MALLOC_TRIM_THRESHOLD_": 16777216})
{'DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON': '{"MALLOC_TRIM_THRESHOLD_":"16777216"}'}
>>> check_dask_config({"distributed.admin.tick.interval": ["1s"]})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
analysis_lib.compute.errors.ComputeConfigError: dask_config.distributed...: expected a string, ...
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import dask.config

from analysis_lib.compute.errors import ComputeConfigError

__all__ = [
    "WORKER_ENVIRON",
    "applied",
    "check_dask_config",
    "environment_variables",
    "split_worker_environ",
]

#: Dask's mapping of the environment variables a nanny sets before starting its worker.
WORKER_ENVIRON = "distributed.nanny.pre-spawn-environ"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split_worker_environ(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``config`` without its :data:`WORKER_ENVIRON` entries, and those entries by name."""
    prefix = WORKER_ENVIRON + "."
    rest = {k: v for k, v in config.items() if not k.startswith(prefix)}
    environ = {k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix)}
    return rest, environ


def check_dask_config(config: Any) -> dict[str, Any]:
    """``config`` as a flat mapping of dotted Dask keys to scalar values, or an error.

    Raises
    ------
    ComputeConfigError
        Not a mapping, a key that is not a dotted name, or a value that is not a scalar.
    """
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ComputeConfigError("dask_config", config, "expected a mapping of dask keys")
    out: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str) or not key or " " in key:
            raise ComputeConfigError("dask_config", key, "expected dotted dask keys")
        if isinstance(value, Mapping | list | tuple | set):
            raise ComputeConfigError(
                f"dask_config.{key}", value, "expected a string, number or boolean"
            )
        if key.startswith(WORKER_ENVIRON + ".") and not _ENV_NAME.fullmatch(
            key[len(WORKER_ENVIRON) + 1 :]
        ):
            raise ComputeConfigError(
                "dask_config", key, f"expected {WORKER_ENVIRON}.<environment variable name>"
            )
        out[key] = value
    return out


@contextlib.contextmanager
def applied(config: Mapping[str, Any]) -> Iterator[None]:
    """Apply ``config`` to :mod:`dask.config` inside the block (nothing when empty)."""
    if not config:
        yield
        return
    settings, environ = split_worker_environ(config)
    if environ:  # added to Dask's own entries, names as given
        settings[WORKER_ENVIRON] = {**dask.config.get(WORKER_ENVIRON, default={}), **environ}
    with dask.config.set(settings):
        yield


def environment_variables(config: Mapping[str, Any]) -> dict[str, str]:
    """The ``DASK_*`` environment variables that set ``config`` in a new process."""
    settings, environ = split_worker_environ(config)
    out = {}
    for key, value in settings.items():
        name = "DASK_" + "__".join(part.replace("-", "_").upper() for part in key.split("."))
        out[name] = _text(value)
    if environ:
        # one variable holding a mapping: Dask merges it into its own entries, and the names
        # keep their case (Dask lowercases the keys it reads from variable names). JSON of
        # strings without spaces: a Python literal, and nothing for job-script quoting to trip on
        out["DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"] = json.dumps(
            {k: _text(v) for k, v in environ.items()}, separators=(",", ":")
        )
    return out


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
