"""Pruning remote trials with an Optuna pruner that stays in the client process.

Trials on the workers put ``[trial_id, attempt, step, value]`` on the scan's Dask
:class:`~distributed.Queue` (held by the scheduler, so it survives worker deaths). A
thread of the scan's client takes them off, reports them to the trial's Optuna trial,
asks the pruner, and answers through one Dask :class:`~distributed.Variable` per trial,
which :meth:`~analysis_lib.scan.trial.TrialContext.should_prune` waits on.

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
        The name of the scan's report queue.
    lock : threading.Lock
        Guards the Optuna study shared with the scan's main loop.
    """

    def __init__(self, client: Any, channel: str, lock: threading.Lock) -> None:
        from distributed import Queue

        self.client = client
        self.channel = channel
        self.lock = lock
        self.queue = Queue(channel, client=client)
        self.trials: dict[str, optuna.Trial] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"{channel}-pruner", daemon=True)
        self._thread.start()

    def register(self, tid: str, trial: optuna.Trial) -> None:
        """Start answering for trial ``tid``."""
        self.trials[tid] = trial

    def unregister(self, tid: str) -> None:
        """Stop answering for ``tid`` and delete its decision variable."""
        from distributed import Variable

        if self.trials.pop(tid, None) is not None:
            try:
                Variable(decision_name(self.channel, tid), client=self.client).delete()
            except Exception:
                log.debug("could not delete the decision variable of %s", tid, exc_info=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                items = [self.queue.get(timeout=0.2)]
                if self.queue.qsize():
                    items += self.queue.get(batch=True)
            except TimeoutError:
                continue
            except Exception:
                if self._stop.is_set():
                    return
                log.warning("pruning service: queue read failed", exc_info=True)
                self._stop.wait(0.5)
                continue
            for tid, _attempt, step, value in items:
                self._answer(tid, step, value)

    def _answer(self, tid: str, step: int, value: float) -> None:
        from distributed import Variable

        trial = self.trials.get(tid)
        prune = False
        if trial is not None:
            prune = decide(trial, step=step, value=value, lock=self.lock)
        Variable(decision_name(self.channel, tid), client=self.client).set(
            {"step": step, "prune": prune}
        )

    def close(self) -> None:
        """Stop the thread and release the queue."""
        self._stop.set()
        self._thread.join(timeout=5)
        for tid in list(self.trials):
            self.unregister(tid)
        try:
            self.queue.close()
        except Exception:
            log.debug("could not close the pruning queue", exc_info=True)
