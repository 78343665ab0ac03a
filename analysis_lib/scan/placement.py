"""Where tasks that need worker resources (``{"GPU": 1}``) can run, and a warning when nowhere.

Dask holds a task that asks for a resource no worker offers until such a worker joins,
without a word: a scan with ``resources={"GPU": 1}`` on a cluster without GPU workers
would look stuck. :func:`resource_slots` counts how many such tasks the current workers
can run at once; :func:`warn_if_unplaceable` warns (:class:`NoMatchingWorkerWarning`) when
that is zero, saying what the workers offer. The tasks still wait: on a batch or adaptive
cluster a GPU job may be about to start.

Examples
--------
>>> workers = {"tcp://a": {"resources": {"GPU": 2}}, "tcp://b": {"resources": {}}}
>>> slots_of(workers, {"GPU": 1}), slots_of(workers, {"GPU": 4})
(2, 0)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["NoMatchingWorkerWarning", "resource_slots", "slots_of", "warn_if_unplaceable"]


class NoMatchingWorkerWarning(UserWarning):
    """No worker of the cluster offers the resources a task asks for (yet)."""


def slots_of(workers: Mapping[str, Mapping[str, Any]], resources: Mapping[str, float]) -> int:
    """How many tasks needing ``resources`` the ``workers`` (``scheduler_info()["workers"]``)
    can run at once."""
    total = 0
    for info in workers.values():
        offered = info.get("resources") or {}
        total += int(min(offered.get(k, 0) / max(v, 1e-9) for k, v in resources.items()))
    return total


def resource_slots(client: Any, resources: Mapping[str, float]) -> int:
    """:func:`slots_of` the client's current workers."""
    return slots_of(client.scheduler_info(n_workers=-1)["workers"], resources)


def warn_if_unplaceable(client: Any, resources: Mapping[str, float] | None, what: str) -> bool:
    """Warn if no current worker offers ``resources``; return whether it warned.

    Parameters
    ----------
    client : distributed.Client
    resources : dict or None
        What each task asks for; None or empty never warns.
    what : str
        The tasks, for the message (``"the trials"``, ``"the fit"``).
    """
    if not resources:
        return False
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if slots_of(workers, resources):
        return False
    offered = sorted(
        {f"{k}={v:g}" for w in workers.values() for k, v in (w.get("resources") or {}).items()}
    )
    warnings.warn(
        f"no worker of the cluster offers {dict(resources)} ({len(workers)} worker(s), "
        f"offering {', '.join(offered) or 'no resources'}): {what} wait until such a worker "
        "joins (for GPUs: make the cluster with gpus=, or leave out resources=)",
        NoMatchingWorkerWarning,
        stacklevel=3,
    )
    return True
