"""Environment parity: every worker must run the client's packages, or it is refused.

Dask pickles functions and estimators on the client and unpickles them on workers; a worker
with another scikit-learn, XGBoost or analysis_lib fails in confusing ways, or worse,
silently computes something else. :class:`EnvironmentParity` is a scheduler plugin holding
the client's versions of a list of distributions. When a worker joins, the scheduler holds it
(paused: no task is scheduled on it) and asks it for the same versions (the worker's
``versions`` handler); if they match, the worker is released; on a difference it logs an
event on :data:`PARITY_TOPIC` whose message names each package with both versions and, in
``"refuse"`` mode, keeps the worker out of scheduling and tells it to close (its nanny exits
with it, so a batch job ends).

On the client, :func:`refusals` lists those messages and :func:`wait_for_workers` raises
:class:`~analysis_lib.compute.errors.EnvironmentSkewError` with them instead of waiting
forever for workers that were refused.

Examples
--------
>>> reference = {"python": "3.11.9", "toolz": "1.0.0", "numpy": "2.4.6"}
>>> other = {"python": "3.11.9", "toolz": "0.12.0", "numpy": "2.4.6"}
>>> version_differences(reference, other)
[('toolz', '1.0.0', '0.12.0')]
>>> describe_skew("tcp://10.0.0.2:4000", [("toolz", "1.0.0", "0.12.0")])
'worker tcp://10.0.0.2:4000 refused: toolz 1.0.0 on the client but 0.12.0 on the worker'
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.versions import get_versions

from analysis_lib.compute.errors import EnvironmentSkewError

__all__ = [
    "PARITY_TOPIC",
    "EnvironmentParity",
    "describe_skew",
    "environment_versions",
    "refusals",
    "version_differences",
    "wait_for_workers",
]

log = logging.getLogger(__name__)

#: Scheduler event topic of parity findings (``client.get_events(PARITY_TOPIC)``).
PARITY_TOPIC = "hepml-parity"


def environment_versions(packages: Iterable[str]) -> dict[str, str | None]:
    """Versions of Python and ``packages`` here (``None``: not installed).

    Computed the way a worker answers the scheduler's ``versions`` request.

    >>> versions = environment_versions(["dask", "surely-not-installed-xyz"])
    >>> versions["surely-not-installed-xyz"] is None and versions["dask"] is not None
    True
    """
    packages = list(packages)
    info = get_versions(packages)["packages"]
    return {name: info.get(name) for name in ["python", *packages]}


def version_differences(
    reference: Mapping[str, str | None], other: Mapping[str, str | None]
) -> list[tuple[str, str | None, str | None]]:
    """``(name, reference version, other version)`` for each differing package of ``reference``."""
    return [
        (name, version, other.get(name))
        for name, version in reference.items()
        if other.get(name) != version
    ]


def describe_skew(
    worker: str, differences: Sequence[tuple[str, str | None, str | None]], *, action="refused"
) -> str:
    """One line naming the worker and every differing package with both versions."""

    def show(version: str | None) -> str:
        return "not installed" if version is None else version

    parts = [
        f"{name} {show(here)} on the client but {show(there)} on the worker"
        for name, here, there in differences
    ]
    return f"worker {worker} {action}: " + "; ".join(parts)


class EnvironmentParity(SchedulerPlugin):
    """Scheduler plugin comparing each joining worker's versions with ``reference``.

    Parameters
    ----------
    reference
        Package name to version (``None``: must not be installed), usually the client's
        :func:`environment_versions`; ``"python"`` compares the interpreter version.
    mode
        ``"refuse"``: close the worker; ``"warn"``: only log the event.

    Examples
    --------
    >>> plugin = EnvironmentParity.for_this_environment(["dask"])
    >>> sorted(plugin.reference)
    ['dask', 'python']
    """

    name = "hepml-environment-parity"

    def __init__(self, reference: Mapping[str, str | None], mode: str = "refuse") -> None:
        if mode not in ("refuse", "warn"):
            raise ValueError(f"mode={mode!r}: expected 'refuse' or 'warn'")
        self.reference = dict(reference)
        self.mode = mode

    @classmethod
    def for_this_environment(
        cls, packages: Iterable[str], mode: str = "refuse"
    ) -> EnvironmentParity:
        """A plugin whose reference is this interpreter's versions of ``packages``."""
        return cls(environment_versions(packages), mode)

    async def start(self, scheduler: Any) -> None:
        """Check the workers already connected when the plugin is registered.

        Also puts itself in front of the scheduler's ``worker-status-change`` stream
        handler: right after registering, a worker reports itself ``running``, which would
        release a held worker before its check is done.
        """
        self._tasks: set[asyncio.Task] = set()
        self._held: set[str] = set()
        original = scheduler.stream_handlers["worker-status-change"]

        def status_change(status: Any, worker: str, stimulus_id: str, **kwargs: Any) -> Any:
            if worker in self._held and str(getattr(status, "name", status)) == "running":
                return None  # stays held: the check releases or refuses it
            return original(status=status, worker=worker, stimulus_id=stimulus_id, **kwargs)

        scheduler.stream_handlers["worker-status-change"] = status_change
        for worker in list(scheduler.workers):
            self._spawn(scheduler, worker)

    def add_worker(self, scheduler: Any, worker: str) -> None:
        """Hold a joining worker (no task goes to it) until its versions are checked.

        The worker answers the scheduler's questions only once its registration is done, so
        the check runs in the background after this hook returns.
        """
        if self.mode == "refuse":
            self._hold(worker)
            scheduler.handle_worker_status_change("paused", worker, _stimulus("hold"))
        self._spawn(scheduler, worker)

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        """Forget a worker that leaves while held."""
        self._release(worker)

    def _hold(self, worker: str) -> None:
        if not hasattr(self, "_held"):
            self._held = set()
        self._held.add(worker)

    def _release(self, worker: str) -> None:
        getattr(self, "_held", set()).discard(worker)

    def _spawn(self, scheduler: Any, worker: str) -> None:
        if not hasattr(self, "_tasks"):
            self._tasks = set()
        task = asyncio.ensure_future(self._check(scheduler, worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, scheduler: Any, worker: str) -> None:
        packages = [name for name in self.reference if name != "python"]
        answers = await scheduler.broadcast(
            msg={"op": "versions", "packages": packages}, workers=[worker], on_error="return"
        )
        answer = answers.get(worker)
        action = "refused" if self.mode == "refuse" else "accepted despite skew"
        if isinstance(answer, dict):
            differences = version_differences(self.reference, answer.get("packages", {}))
            if not differences:
                if self.mode == "refuse":
                    self._release(worker)
                    scheduler.handle_worker_status_change("running", worker, _stimulus("pass"))
                return
            message = describe_skew(worker, differences, action=action)
        elif worker not in scheduler.workers:
            self._release(worker)
            return  # gone meanwhile
        else:
            differences = []
            message = f"worker {worker} {action}: it did not report its versions ({answer!r})"
        log.warning(message)
        scheduler.log_event(
            PARITY_TOPIC,
            {"action": self.mode, "worker": worker, "message": message, "differences": differences},
        )
        self._release(worker)
        if self.mode == "refuse" and worker in scheduler.workers:
            scheduler.handle_worker_status_change("closing_gracefully", worker, _stimulus("refuse"))
            scheduler.close_worker(worker)


def _stimulus(what: str) -> str:
    return f"hepml-parity-{what}-{time.time()}"


def refusals(client: Client) -> list[str]:
    """Messages of the workers the scheduler refused for environment skew, oldest first."""
    return [
        event["message"]
        for _, event in client.get_events(PARITY_TOPIC)
        if isinstance(event, dict) and event.get("action") == "refuse"
    ]


def wait_for_workers(client: Client, n_workers: int, timeout: float | None = None) -> None:
    """Wait until ``n_workers`` workers run; raise if workers were refused meanwhile.

    Raises
    ------
    EnvironmentSkewError
        A worker was refused for environment skew while fewer than ``n_workers`` run.
    TimeoutError
        ``timeout`` seconds passed without enough workers (and without refusals).
    """
    known = len(refusals(client))
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        info = client.scheduler_info(n_workers=-1)
        running = [w for w in info["workers"].values() if w.get("status", "running") == "running"]
        if len(running) >= n_workers:
            return
        refused = refusals(client)[known:]
        if refused:
            raise EnvironmentSkewError(refused)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(
                f"only {len(running)} of {n_workers} workers after {timeout} s (none refused)"
            )
        time.sleep(0.1)
