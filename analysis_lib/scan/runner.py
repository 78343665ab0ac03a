"""``scan``: propose in the client, run trials as Dask tasks, record each as it finishes.

How the pieces fit:

* **Proposals.** One in-memory Optuna study in the client process asks the sampler for
  every trial (ask/tell). A proposal that repeats a pending or finished point is told
  ``FAIL`` to the study and asked again, so parallel trials never evaluate a point twice;
  a grid proposes each point once and stops at the grid's size. Results are told to the
  study in trial-number order, and with TPE trial *k* is proposed only once trials
  ``< k - history_lag`` are finished (and exactly those are told), so a seed fixes the
  proposals whatever the timing of the workers.
* **Execution.** Each trial is one ``client.submit`` of
  :func:`~analysis_lib.scan.execution.execute_trial` (with ``resources=`` if given). The
  data travel once per worker in a worker plugin (:mod:`~analysis_lib.scan.shipping`),
  which the scheduler also hands to restarted and new workers.
* **Faults.** A worker that dies makes Dask reschedule its task on another worker; a task
  that exhausts Dask's allowed failures (``KilledWorker``) or meets another infrastructure
  error is resubmitted up to ``max_retries`` times. The objective's own exception is a
  ``failed`` record with its traceback, never retried. Only the client writes records,
  once per trial id, so re-executions never produce a second record.
* **Resume.** Proposals replay deterministically; a proposal whose trial id is already in
  the store is told its stored result instead of running again.

With a pruner, which trials are pruned depends on when their reports arrive relative to
other trials, so TPE proposals after a pruned trial can differ between two runs; random
and grid proposals never depend on results. A record's ``attempts`` counts how many times
the trial was handed to a worker: the scan's own submissions plus Dask's reschedules after
worker deaths (a trial waiting on a worker that dies counts too).

Examples
--------
>>> import tempfile
>>> from distributed import Client, LocalCluster
>>> from analysis_lib.scan import Int, scan
>>> with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
...                   dashboard_address=":0") as cluster, Client(cluster) as client:
...     with tempfile.TemporaryDirectory() as store:
...         result = scan(lambda p: (p["x"] - 3) ** 2, {"x": Int(0, 5)}, n_trials=6,
...                       sampler="grid", seed=0, store=store, client=client, progress=False)
...         print(result.best_params, result.best_value, len(result.to_dataframe()))
{'x': 3} 0.0 6
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import os
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import optuna
from optuna.trial import TrialState

from .execution import TrialSpec, execute_trial
from .losses import WorkerLosses
from .objective import as_objective, describe_value, is_estimator
from .placement import resource_slots, warn_if_unplaceable
from .progress import Progress, make_progress
from .pruning import PruningService
from .result import ScanResult
from .reuse import clear as clear_reused
from .samplers import SAMPLERS, make_pruner, make_sampler
from .shipping import DataMissingError, DataPlugin, ShippedData, data_token
from .space import SearchSpace
from .store import TrialStore
from .trial import trial_id

__all__ = ["scan"]

log = logging.getLogger(__name__)

#: How often a proposal may repeat a known point before the scan stops proposing.
MAX_REASKS = 100
#: Resubmissions of a trial whose worker had not received the data yet.
MAX_DATA_WAITS = 50


@dataclass
class _Entry:
    number: int
    tid: str
    params: dict[str, Any]
    otrial: optuna.Trial
    attempts: int = 0
    data_waits: int = 0
    key: str = ""
    errors: list[str] = field(default_factory=list)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


def _validate(n_trials: Any, sampler: Any, direction: Any, max_retries: Any) -> None:
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials <= 0:
        raise ValueError(f"n_trials must be a positive int, got {n_trials!r}")
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(
            f"unknown sampler {sampler!r}; choose one of {', '.join(map(repr, SAMPLERS))}"
        )
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative int, got {max_retries!r}")


class SchedulerLostError(RuntimeError):
    """The scan's Dask client closed (its scheduler was lost); the store keeps what finished."""


def _whole(name: str, value: Any) -> int | None:
    """``value`` as a non-negative int (numpy integers too), or None; else a ValueError
    naming it (checked before the store is claimed, which a bad value would poison)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0 or None, got {value!r}")
    return int(value)


def _describe(value: Any) -> Any:
    """A setting as the store records it: stable across sessions (no memory addresses)."""
    return describe_value(value)


def _get_client(client: Any) -> tuple[Any, Callable[[], None]]:
    """The given client, the current one, or a new local cluster (closed at the end).

    The new cluster is :func:`analysis_lib.compute.local_cluster`: the session's cores and
    the site's Dask settings.
    """
    if client is not None:
        return client, lambda: None
    from distributed import Client, get_client

    from analysis_lib.compute import local_cluster

    with contextlib.suppress(ValueError):
        return get_client(), lambda: None
    cluster = local_cluster()
    try:
        new = Client(cluster)
    except BaseException:
        cluster.close()
        raise

    def close() -> None:
        new.close()
        cluster.close()

    return new, close


class _Scan:
    """The state of one run of :func:`scan` in the client."""

    def __init__(
        self,
        *,
        client: Any,
        objective: Any,
        space: SearchSpace,
        n_trials: int,
        sampler_name: str,
        seed: int | None,
        store: TrialStore,
        direction: str,
        pruner: Any,
        resources: Mapping[str, float] | None,
        max_retries: int,
        keep_models: bool,
        retry_failed: bool,
        history_lag: int | None,
        data_token: str | None,
        progress: Progress,
        callbacks: Iterable[Callable[[dict[str, Any]], None]],
    ) -> None:
        self.client = client
        self.objective = objective
        self.space = space
        self.distributions = space.to_optuna()
        self.n_trials = n_trials
        self.store = store
        self.direction = direction
        self.resources = dict(resources) if resources else None
        self.max_retries = max_retries
        self.keep_models = keep_models
        self.retry_failed = retry_failed
        self.history_lag = history_lag
        self.data_token = data_token
        self.progress = progress
        self.callbacks = list(callbacks)
        self.lock = threading.Lock()
        self.study = optuna.create_study(
            direction=direction,
            sampler=make_sampler(sampler_name, space, seed=seed),
            pruner=make_pruner(pruner),
        )
        self.channel = f"hepml-scan-{secrets.token_hex(6)}"
        self.pruning = PruningService(client, self.channel, self.lock) if pruner else None
        self.recorded = store.ids()
        self.entries: dict[int, _Entry] = {}
        self.finished: dict[int, dict[str, Any]] = {}
        self.seen: set[str] = set()
        self.pending: dict[Any, _Entry] = {}
        self.next_number = 0
        self.told = 0
        self.exhausted = False
        self.executed = 0
        self._capacity = (0.0, 1)

    # --- capacity -------------------------------------------------------------------------
    def capacity(self) -> int:
        """How many trials to keep submitted: two per worker slot (one running, one queued)."""
        stamp, value = self._capacity
        if time.monotonic() - stamp > 1.0:
            try:
                if self.resources:
                    value = max(1, resource_slots(self.client, self.resources))
                else:
                    value = max(1, sum(self.client.nthreads().values()))
            except Exception:
                log.debug("could not read the cluster size", exc_info=True)
            self._capacity = (time.monotonic(), value)
        return 2 * value

    # --- the study -------------------------------------------------------------------------
    def _propose(self) -> _Entry | None:
        for _ in range(MAX_REASKS):
            with self.lock:
                otrial = self.study.ask(self.distributions)
            params = {k: _plain(otrial.params[k]) for k in self.space.names}
            tid = trial_id(params)
            if tid not in self.seen:
                self.seen.add(tid)
                return _Entry(self.next_number, tid, params, otrial)
            with self.lock:
                self.study.tell(otrial, state=TrialState.FAIL)
        warnings.warn(
            f"the sampler proposed only known points in {MAX_REASKS} tries; the scan stops "
            f"after {self.next_number} trials",
            RuntimeWarning,
            stacklevel=3,
        )
        return None

    def _tell(self, entry: _Entry, record: dict[str, Any]) -> None:
        with self.lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = record["state"]
            if state == "done":
                self.study.tell(entry.otrial, record["value"])
            elif state == "pruned":
                for step, value in (record.get("intermediate") or {}).items():
                    entry.otrial.report(value, int(step))
                self.study.tell(entry.otrial, state=TrialState.PRUNED)
            else:
                self.study.tell(entry.otrial, state=TrialState.FAIL)

    def _tell_ready(self, limit: int | None) -> None:
        """Tell finished trials in number order, up to (not including) ``limit``."""
        while self.told in self.finished and (limit is None or self.told < limit):
            self._tell(self.entries[self.told], self.finished[self.told])
            self.told += 1

    # --- submission ---------------------------------------------------------------------------
    def _submit(self, entry: _Entry) -> None:
        entry.attempts += 1
        spec = TrialSpec(
            number=entry.number,
            trial_id=entry.tid,
            params=entry.params,
            attempt=entry.attempts,
            data_token=self.data_token,
            channel=self.channel if self.pruning else None,
        )
        entry.key = f"scan-trial-{entry.tid}-{entry.attempts}-{secrets.token_hex(4)}"
        future = self.client.submit(
            execute_trial,
            self.objective,
            spec,
            key=entry.key,
            pure=False,
            resources=self.resources,
        )
        self.pending[future] = entry
        self.ac.add(future)

    def _fill(self) -> None:
        lagged = self.history_lag is not None
        while (
            not self.exhausted
            and self.next_number < self.n_trials
            and len(self.pending) < self.capacity()
        ):
            k = self.next_number
            if lagged:
                self._tell_ready(limit=k - self.history_lag)
                if self.told < k - self.history_lag:
                    return  # wait for an old trial to finish
            else:
                self._tell_ready(limit=None)
            entry = self._propose()
            if entry is None:
                self.exhausted = True
                return
            self.entries[k] = entry
            self.next_number += 1
            if entry.tid in self.recorded:  # resumed: told, never run again
                record = self.store.read_record(entry.tid)
                if record is not None and not self._rerun(record):
                    self.finished[k] = record
                    continue
                self.recorded.discard(entry.tid)  # damaged or to be retried: run it again
            if self.pruning:
                self.pruning.register(entry.tid, entry.otrial)
            self._submit(entry)

    def _rerun(self, record: dict[str, Any]) -> bool:
        """Whether a stored record is run again on resume: a trial the scan gave up on
        after infrastructure errors (a lost batch slot, say), with ``retry_failed`` any
        failed trial, and with ``keep_models`` a done trial of an estimator scan whose
        model was not kept (it ran with ``keep_models=False``)."""
        if record.get("state") == "done":
            return (
                self.keep_models
                and getattr(self.objective, "keep_model", False)
                and not self.store.model_path(record["trial_id"]).exists()
            )
        if record.get("state") != "failed":
            return False
        given_up = record.get("infrastructure") or str(record.get("error", "")).startswith(
            "gave up after"
        )
        return bool(given_up or self.retry_failed)

    # --- completion -----------------------------------------------------------------------------
    def _record(self, entry: _Entry, record: dict[str, Any], model: Any, reruns: int) -> None:
        if entry.tid in self.recorded:  # never twice (e.g. two attempts both returned)
            return
        record["attempts"] = entry.attempts + reruns
        if entry.errors:
            record["infrastructure_errors"] = entry.errors
        if model is not None and self.keep_models and record["state"] == "done":
            self.store.write_model_bytes(entry.tid, model)  # pickled on the worker
        self.store.write_record(record)
        self.recorded.add(entry.tid)
        self.finished[entry.number] = record
        self.executed += 1
        if self.pruning:
            self.pruning.unregister(entry.tid)
        for callback in self.callbacks:
            try:
                callback(record)
            except Exception as exc:
                name = getattr(callback, "__qualname__", repr(callback))
                raise RuntimeError(
                    f"callback {name} failed on trial {record.get('number')}: {exc!r}; the "
                    "scan stopped (its finished trials are kept: run it again to resume)"
                ) from exc

    def _give_up(self, entry: _Entry) -> None:
        record = {
            "trial_id": entry.tid,
            "number": entry.number,
            "params": entry.params,
            "state": "failed",
            "value": None,
            "error": f"gave up after {entry.attempts} attempts: {entry.errors[-1]}",
            "traceback": "\n".join(entry.errors),
            "worker": None,
            "duration_s": None,
            "infrastructure": True,  # not the trial's fault: a resume runs it again
        }
        self._record(entry, record, None, 0)

    def _handle(self, batch: list[tuple[Any, Any]]) -> None:
        for future, result in batch:
            entry = self.pending.pop(future)
            if future.status == "finished":
                # Dask re-ran the task after losing workers: count those runs too
                reruns = self.losses.reruns([entry.key])
                self._record(entry, result["record"], result["model"], reruns)
            elif isinstance(result, tuple) and len(result) == 3:  # (type, exception, tb)
                self._retry(entry, result[1])
            else:  # cancelled, e.g. the scheduler restarted
                self._retry(entry, result)

    def _retry(self, entry: _Entry, exc: BaseException) -> None:
        if isinstance(exc, DataMissingError) and entry.data_waits < MAX_DATA_WAITS:
            entry.data_waits += 1
            entry.attempts -= 1  # not the trial's fault, nor a worker's
            time.sleep(0.1)
            self._submit(entry)
            return
        entry.errors.append(f"{type(exc).__name__}: {exc}")
        log.warning("trial %d (%s) attempt %d: %r", entry.number, entry.tid, entry.attempts, exc)
        if entry.attempts > self.max_retries:
            self._give_up(entry)
        else:
            self._submit(entry)

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "failed": 0, "pruned": 0, "running": len(self.pending)}
        for record in self.finished.values():
            out[record["state"]] += 1
        return out

    # --- main loop ------------------------------------------------------------------------------
    def _next_batch(self) -> list[tuple[Any, Any]]:
        """The next finished trials; a ``SchedulerLostError`` once the client has closed
        (it gives up reconnecting to a lost scheduler), instead of waiting forever."""
        ac = self.ac
        condition = getattr(ac, "thread_condition", None)
        while not ac.has_ready():
            lost = self._lost()
            if lost is not None:
                raise lost
            if condition is None:
                time.sleep(0.05)
            else:
                with condition:
                    condition.wait(timeout=0.1)
        return ac.next_batch(block=False)

    def _lost(self) -> SchedulerLostError | None:
        """The error to raise when the client has closed (its scheduler is gone), else None."""
        status = getattr(self.client, "status", "running")
        if status not in ("closing", "closed", "failed"):
            return None
        return SchedulerLostError(
            f"lost the Dask scheduler {self.address} (client {status}); the "
            f"{len(self.finished)} finished trial(s) are kept in the store: run the scan "
            "again with a working cluster to resume"
        )

    def run(self) -> None:
        from distributed import as_completed

        self.address = getattr(getattr(self.client, "scheduler", None), "address", None) or "?"
        self.ac = as_completed(with_results=True, raise_errors=False)
        self.progress.start(self.n_trials, self.direction)
        self.losses = WorkerLosses(self.client)
        try:
            while True:
                self._fill()
                self.progress.update(self.counts(), list(self.finished.values()))
                if not self.pending:
                    if self.next_number >= self.n_trials or self.exhausted:
                        break
                    continue  # pragma: no cover - _fill always submits or finishes
                self._handle(self._next_batch())
            self._tell_ready(limit=None)
        except BaseException as exc:
            for future in list(self.pending):
                with contextlib.suppress(Exception):  # a closed client cannot cancel
                    future.cancel()
            lost = None if isinstance(exc, SchedulerLostError | KeyboardInterrupt) else self._lost()
            if lost is not None:
                raise lost from exc
            raise
        finally:
            self.progress.update(self.counts(), list(self.finished.values()))
            self.progress.close()
            if self.pruning:
                self.pruning.close()
            self.losses.close()


def scan(
    objective: Any,
    space: Mapping[str, Any],
    *,
    n_trials: int,
    store: str | os.PathLike[str],
    sampler: str = "tpe",
    seed: int | None = None,
    client: Any = None,
    data: Any = None,
    direction: str | None = None,
    pruner: Any = None,
    resources: Mapping[str, float] | None = None,
    max_retries: int = 3,
    scoring: Any = None,
    cv: Any = None,
    validation_fraction: float = 0.25,
    keep_models: bool = True,
    retry_failed: bool = False,
    reuse: bool = True,
    history_lag: int | None = None,
    progress: bool | Progress = True,
    callbacks: Iterable[Callable[[dict[str, Any]], None]] = (),
) -> ScanResult:
    """Run a resumable, fault-tolerant hyperparameter scan on a Dask cluster.

    Parameters
    ----------
    objective : callable or estimator
        ``f(params, *, data=None, trial=None) -> float`` (``data``/``trial`` only if
        accepted), or a scikit-learn style estimator, fitted with the trial's parameters
        on ``data`` and scored (greater is better).
    space : mapping
        Parameter name to :class:`Int`, :class:`Float`, :class:`Categorical` or a list.
    n_trials : int
        Number of trials (a grid stops at its size).
    store : str or path
        Trial store directory; re-running with the same store resumes the scan. A store
        holds one scan: another objective, space, sampler, seed, direction, pruner,
        scoring, training data (their content hash) or, for an estimator, another fixed
        parameter or validation share raises :class:`StoreMismatchError` naming what
        differs (use another directory).
    sampler : {"tpe", "random", "grid"}
        Optuna sampler proposing the trials (in this process).
    seed : int, optional
        Seeds the sampler (and the validation split of estimator scans). Without one, the
        sampler's seed is drawn on the first run and kept in the store, so the same call
        again still resumes.
    client : distributed.Client, optional
        Default: the current client, else a new local cluster
        (:func:`analysis_lib.compute.local_cluster`: the session's cores, the site's Dask
        settings), closed when the scan ends.
    data : object, optional
        Shipped once to every worker (also to restarted ones) and passed to the objective
        as ``data``; for estimators ``(X, y)``, ``(X, y, sample_weight)`` or a dict with
        ``X``, ``y`` and optionally ``sample_weight``, ``X_val``, ``y_val``. A
        :class:`SharedPath` is read by each worker process from a shared file system
        instead (for tables too large to pass through the scheduler). The scan ships the
        data to the workers and removes them at its end; for several scans of the same
        data, :func:`~analysis_lib.scan.ship` them once and pass the
        :class:`~analysis_lib.scan.ShippedData` (then ``client`` defaults to its client).
    direction : {"minimize", "maximize"}, optional
        Default: ``"maximize"`` for estimators (scores), ``"minimize"`` for functions.
    pruner : {None, "median", "successive_halving"} or optuna pruner
        Prunes trials from ``trial.report(value, step)`` / ``trial.should_prune()``.
    resources : dict, optional
        Dask worker resources per trial, e.g. ``{"GPU": 1}``. When no worker offers them
        the scan warns (:class:`~analysis_lib.scan.placement.NoMatchingWorkerWarning`)
        and its trials wait for such a worker to join.
    max_retries : int
        Resubmissions of a trial after infrastructure errors (worker deaths beyond Dask's
        own rescheduling); the objective's own errors are never retried.
    scoring, cv, validation_fraction
        Estimator scans: scorer (default ``estimator.score``), cross-validation, or the
        held-out share used without ``X_val``.
    keep_models : bool
        Store the fitted estimator of every done trial (for :meth:`ScanResult.best_model`).
        Resuming with ``True`` a scan that ran with ``False`` fits its done trials again,
        so that every done trial has its model.
    retry_failed : bool
        On resume, run the trials that failed again (the objective's own errors: after a
        fix, or a transient cause). Trials the scan gave up on after ``max_retries``
        infrastructure errors (workers lost, batch slots taken back) are always run again
        on resume.
    reuse : bool
        XGBoost models (XGBoost's scikit-learn classes, and
        :class:`~analysis_lib.training.XGBoostClassifier` also inside an objective
        function): each worker makes the validation split (with a ``seed``) and the binned
        training matrix once and reuses them in its later trials
        (:mod:`~analysis_lib.scan.reuse`); the fitted models are the same.
    history_lag : int, optional
        TPE only: trial *k* sees the results of trials ``< k - history_lag``. Default:
        ``max(8, 2 * worker threads)``, stored with the scan and reused on resume.
    progress : bool or Progress
        Widgets in a notebook, tqdm elsewhere; ``False`` for none.
    callbacks : iterable of callables
        Called with each trial record this run writes.

    Returns
    -------
    ScanResult

    Raises
    ------
    ValueError
        Bad arguments (empty space, unknown sampler, ``n_trials <= 0``, continuous grid).
    StoreMismatchError
        The store belongs to a different scan.

    Examples
    --------
    >>> import tempfile
    >>> from distributed import Client, LocalCluster
    >>> from analysis_lib.scan import Float, load_scan
    >>> with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
    ...                   dashboard_address=":0") as cluster, Client(cluster) as client:
    ...     with tempfile.TemporaryDirectory() as store:
    ...         first = scan(lambda p: abs(p["x"]), {"x": Float(-1, 1)}, n_trials=5,
    ...                      sampler="tpe", seed=0, store=store, client=client, progress=False)
    ...         again = scan(lambda p: abs(p["x"]), {"x": Float(-1, 1)}, n_trials=5,
    ...                      sampler="tpe", seed=0, store=store, client=client, progress=False)
    ...         counts = load_scan(store).counts()
    >>> first.executed, again.executed, counts["done"]
    (5, 0, 5)
    """
    if direction is None:
        direction = "maximize" if is_estimator(objective) else "minimize"
    _validate(n_trials, sampler, direction, max_retries)
    seed = _whole("seed", seed)
    history_lag = _whole("history_lag", history_lag)
    space = SearchSpace(space)
    if sampler == "grid":
        n_trials = min(n_trials, space.grid_size())
    make_pruner(pruner)  # validate before touching the cluster
    if is_estimator(objective) and data is None:
        raise ValueError("an estimator scan needs data=(X, y) or a dict with 'X' and 'y'")
    if resources is not None and not (
        isinstance(resources, Mapping)
        and all(isinstance(v, int | float) and v > 0 for v in resources.values())
    ):
        raise ValueError(f"resources must map names to positive numbers, got {resources!r}")
    wrapped = as_objective(
        objective,
        scoring=scoring,
        cv=cv,
        validation_fraction=validation_fraction,
        seed=seed,
        keep_model=keep_models,
        reuse=reuse,
    )
    try:  # before anything is written: it goes to every worker with every trial
        cloudpickle.dumps(wrapped)
    except Exception as exc:
        raise TypeError(
            f"the objective {wrapped.describe()} cannot be sent to the Dask workers (it does "
            f"not pickle: {exc}); keep open files, locks and clients out of it and its closure"
        ) from None
    trial_store = TrialStore(store)
    if client is None and isinstance(data, ShippedData):
        client = data.client
    client, close_client = _get_client(client)
    plugin = None
    optuna_level = optuna.logging.get_verbosity()
    try:
        meta = {
            "version": 1,
            "objective": wrapped.describe(),
            "objective_code": wrapped.code(),
            "objective_settings": wrapped.settings(space.names),
            "space": space.describe(),
            "sampler": sampler,
            "seed": seed,
            "direction": direction,
            "pruner": _describe(pruner),
            "scoring": _describe(scoring),
            "cv": _describe(cv),
        }
        stored = trial_store.meta() or {}
        # an unseeded scan draws its sampler's seed once and keeps it in the store, so that
        # the same call again replays the same proposals and resumes
        sampler_seed = seed
        if seed is None:
            sampler_seed = stored.get("sampler_seed") if stored.get("seed", 0) is None else None
            if sampler_seed is None:
                sampler_seed = secrets.randbelow(2**31)
        meta["sampler_seed"] = sampler_seed
        if sampler == "tpe":
            if history_lag is None:
                history_lag = stored.get("history_lag")
            if history_lag is None:
                history_lag = max(8, 2 * sum(client.nthreads().values()))
            meta["history_lag"] = history_lag
        else:
            history_lag = None
        token = None
        if isinstance(data, ShippedData):  # already on the workers; stays there
            data.check(client)
            token = data.token
        elif data is not None:
            token = data_token(data)
        # a resumed scan must train on the same data: other data is another scan
        meta["data"] = None if token is None else {"token": token}
        trial_store.check_meta(meta)
        if data is not None and not isinstance(data, ShippedData):
            plugin = DataPlugin(token, data, name=f"hepml-scan-data-{secrets.token_hex(6)}")
            client.register_plugin(plugin, name=plugin.name)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warn_if_unplaceable(client, resources, "the trials")
        run = _Scan(
            client=client,
            objective=wrapped,
            space=space,
            n_trials=n_trials,
            sampler_name=sampler,
            seed=sampler_seed,
            store=trial_store,
            direction=direction,
            pruner=pruner,
            resources=resources,
            max_retries=max_retries,
            keep_models=keep_models,
            retry_failed=retry_failed,
            history_lag=history_lag,
            data_token=token,
            progress=make_progress(progress),
            callbacks=callbacks,
        )
        run.run()
        return ScanResult(trial_store, direction=direction, executed=run.executed)
    finally:
        optuna.logging.set_verbosity(optuna_level)
        if plugin is not None:
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(plugin.name)
        with contextlib.suppress(Exception):  # the splits and matrices the trials reused
            client.run(clear_reused, True)
        close_client()
