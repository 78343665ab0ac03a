"""Pruning remote trials with an Optuna pruner that stays in the client process.

Trials on the workers send ``[trial_id, attempt, step, value]`` as Dask events on the
scan's topic (:meth:`distributed.Worker.log_event`); the scheduler forwards them to the
scan's client, which is subscribed to the topic (:meth:`distributed.Client.subscribe_topic`).
A thread of the client reports each value to the trial's Optuna trial, asks the pruner,
and answers through one Dask :class:`~distributed.Variable` per report, which
:meth:`~analysis_lib.scan.trial.TrialContext.should_prune` waits on. Nothing polls: no
request times out on the scheduler while trials run without reporting.

Examples
--------
>>> import optuna, threading
>>> study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=0))
>>> done = study.ask(); done.report(1.0, 0); _ = study.tell(done, 1.0)
>>> running = study.ask()
>>> decide(running, step=0, value=5.0, lock=threading.Lock())
True
"""

from __future__ import annotations

import logging
import queue
import threading
import warnings
from typing import Any

import optuna

from .trial import decision_name

__all__ = ["PruningService", "decide"]

log = logging.getLogger(__name__)


def decide(trial: optuna.Trial, *, step: int, value: float, lock: threading.Lock) -> bool:
    """Report ``value`` at ``step`` to ``trial`` and return the pruner's decision."""
    with lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a retried trial reports a step again: ignored
        trial.report(value, step)
        return bool(trial.should_prune())


class PruningService:
    """Answers the pruning questions of a scan's running trials.

    Parameters
    ----------
    client : distributed.Client
        The scan's client.
    channel : str
        The scan's event topic.
    lock : threading.Lock
        Guards the Optuna study shared with the scan's main loop.
    """

    def __init__(self, client: Any, channel: str, lock: threading.Lock) -> None:
        self.client = client
        self.channel = channel
        self.lock = lock
        self.trials: dict[str, optuna.Trial] = {}
        self.answered: dict[str, list[str]] = {}
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        # the handler runs in the client's event loop: it only hands the report over
        client.subscribe_topic(channel, self._inbox.put)
        self._thread = threading.Thread(target=self._loop, name=f"{channel}-pruner", daemon=True)
        self._thread.start()

    def register(self, tid: str, trial: optuna.Trial) -> None:
        """Start answering for trial ``tid``."""
        self.trials[tid] = trial

    def unregister(self, tid: str) -> None:
        """Stop answering for ``tid`` and delete its decisions that no worker took."""
        from distributed import Variable

        self.trials.pop(tid, None)
        for name in self.answered.pop(tid, []):
            try:
                Variable(name, client=self.client).delete()
            except Exception:
                log.debug("could not delete the decision variable %s", name, exc_info=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                _, message = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                tid, attempt, step, value = message
                self._answer(str(tid), int(attempt), int(step), float(value))
            except Exception:
                if self._stop.is_set():
                    return
                log.warning("pruning service: cannot answer %r", message, exc_info=True)

    def _answer(self, tid: str, attempt: int, step: int, value: float) -> None:
        from distributed import Variable

        trial = self.trials.get(tid)
        prune = False
        if trial is not None:
            prune = decide(trial, step=step, value=value, lock=self.lock)
        name = decision_name(self.channel, tid, attempt, step)
        Variable(name, client=self.client).set({"step": step, "prune": prune})
        # the worker deletes it once read; what a dead worker left is deleted at the end
        self.answered.setdefault(tid, []).append(name)

    def close(self) -> None:
        """Stop the thread, unsubscribe, and delete the decisions no worker took."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.client.unsubscribe_topic(self.channel)
        except Exception:
            log.debug("could not unsubscribe from %s", self.channel, exc_info=True)
        for tid in list(self.answered):
            self.unregister(tid)
