"""Dask settings for the servers of the clusters :func:`~analysis_lib.compute.make_cluster` makes.

Dask's defaults suit big machines: every scheduler, nanny and worker checks its event loop's
health every 20 ms, and every worker samples its running tasks' stacks every 10 ms for the
dashboard's profile page. On a hub session of two cores an idle local cluster of two
workers then uses 7-8 % of the machine; with the packaged settings 1.6-1.7 %
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

Examples
--------
>>> environment_variables({"distributed.admin.tick.interval": "1s"})
{'DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL': '1s'}
>>> import dask
>>> with applied({"distributed.admin.tick.interval": "1s"}):
...     dask.config.get("distributed.admin.tick.interval")
'1s'
>>> check_dask_config({"distributed.admin.tick.interval": ["1s"]})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
analysis_lib.compute.errors.ComputeConfigError: dask_config.distributed...: expected a string, ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import dask.config

from analysis_lib.compute.errors import ComputeConfigError

__all__ = ["applied", "check_dask_config", "environment_variables"]


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
        out[key] = value
    return out


@contextlib.contextmanager
def applied(config: Mapping[str, Any]) -> Iterator[None]:
    """Apply ``config`` to :mod:`dask.config` inside the block (nothing when empty)."""
    if not config:
        yield
        return
    with dask.config.set(dict(config)):
        yield


def environment_variables(config: Mapping[str, Any]) -> dict[str, str]:
    """The ``DASK_*`` environment variables that set ``config`` in a new process."""
    out = {}
    for key, value in config.items():
        name = "DASK_" + "__".join(part.replace("-", "_").upper() for part in key.split("."))
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out
