"""Pruning remote trials with an Optuna pruner that stays in the client process.

Trials on the workers send Dask events on the scan's topic
(:meth:`distributed.Worker.log_event`): ``["report", trial_id, attempt, step, value]`` for
each intermediate value and ``["ask", trial_id, attempt, step]`` when the objective asks
whether to stop. The scheduler forwards them to the scan's client, which is subscribed to
the topic (:meth:`distributed.Client.subscribe_topic`). A thread of the client reports the
values to the trial's Optuna trial and answers each question through its own Dask
:class:`~distributed.Variable`, which
:meth:`~analysis_lib.scan.trial.TrialContext.should_prune` waits on and deletes. Nothing
polls: no request times out on the scheduler while trials run without reporting, and only
questions cost a variable.

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

__all__ = ["PruningService", "decide", "record"]

log = logging.getLogger(__name__)


def record(trial: optuna.Trial, *, step: int, value: float, lock: threading.Lock) -> None:
    """Report ``value`` at ``step`` to ``trial`` (a step reported again is ignored)."""
    with lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a retried trial reports a step again: ignored
        trial.report(value, step)


def decide(trial: optuna.Trial, *, step: int, value: float, lock: threading.Lock) -> bool:
    """Report ``value`` at ``step`` to ``trial`` and return the pruner's decision."""
    record(trial, step=step, value=value, lock=lock)
    with lock:
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
        # the last answer per (trial, attempt): a trial asks again only after reading the
        # previous answer, so older ones are gone; the last may be left by a dead worker
        self.last_answer: dict[tuple[str, int], str] = {}
        self._answers_lock = threading.Lock()  # the scan's loop and this thread both use it
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        # the handler runs in the client's event loop: it only hands the message over
        client.subscribe_topic(channel, self._inbox.put)
        self._thread = threading.Thread(target=self._loop, name=f"{channel}-pruner", daemon=True)
        self._thread.start()

    def register(self, tid: str, trial: optuna.Trial) -> None:
        """Start answering for trial ``tid``."""
        self.trials[tid] = trial

    def unregister(self, tid: str) -> None:
        """Stop answering for ``tid`` and delete an answer no worker took."""
        from distributed import Variable

        self.trials.pop(tid, None)
        with self._answers_lock:
            names = [self.last_answer.pop(k) for k in list(self.last_answer) if k[0] == tid]
        for name in names:
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
                self._handle(message)
            except Exception:
                if self._stop.is_set():
                    return
                log.warning("pruning service: cannot handle %r", message, exc_info=True)

    def _handle(self, message: list[Any]) -> None:
        from distributed import Variable

        kind, tid, attempt, step = message[0], str(message[1]), int(message[2]), int(message[3])
        trial = self.trials.get(tid)
        if kind == "report":
            if trial is not None:
                record(trial, step=step, value=float(message[4]), lock=self.lock)
            return
        prune = False
        if trial is not None:
            with self.lock:
                prune = bool(trial.should_prune())
        name = decision_name(self.channel, tid, attempt, step)
        Variable(name, client=self.client).set({"step": step, "prune": prune})
        with self._answers_lock:
            self.last_answer[(tid, attempt)] = name

    def close(self) -> None:
        """Stop the thread, unsubscribe, and delete the answers no worker took."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.client.unsubscribe_topic(self.channel)
        except Exception:
            log.debug("could not unsubscribe from %s", self.channel, exc_info=True)
        with self._answers_lock:
            tids = {tid for tid, _ in self.last_answer}
        for tid in tids:
            self.unregister(tid)
