"""Counting the trials that a dying worker took down with it, without polling.

When the scheduler removes a worker it logs a ``remove-worker`` event on its ``"all"``
topic, naming the tasks that were processing there (Dask reschedules them) and the
finished results that were lost with it (Dask recomputes them). :class:`WorkerLosses`
counts, per task key, how many times it had to run again; the scan adds this to a trial's
attempts. One subscription per client serves all the scans running on it, and a handler
that the client already had on the topic keeps receiving every event.

Examples
--------
>>> losses = WorkerLosses(client=None)
>>> losses.handle((0.0, {"action": "remove-worker", "worker": "tcp://a:1",
...                      "processing-tasks": ["k1", "k2"], "lost-computed-tasks": ["k1"]}))
>>> losses.reruns(["k1"]), losses.reruns(["k2", "k3"]), losses.removed
(2, 1, ['tcp://a:1'])
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["TOPIC", "WorkerLosses"]

log = logging.getLogger(__name__)

TOPIC = "all"


def _placeholder(event: Any) -> None:
    """Takes the events that arrive after the last scan unsubscribed."""


class _Dispatcher:
    """The one handler of the topic on one client, fanning events out to its scans."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.listeners: list[WorkerLosses] = []
        previous = getattr(client, "_event_handlers", {}).get(TOPIC)
        self.previous = None if previous is _placeholder else previous
        client.subscribe_topic(TOPIC, self)

    def __call__(self, event: tuple[float, Any]) -> None:
        for listener in list(self.listeners):
            listener.handle(event)
        if self.previous is not None:
            self.previous(event)

    def close(self) -> None:
        if self.previous is not None:
            self.client.subscribe_topic(TOPIC, self.previous)
            return
        self.client.unsubscribe_topic(TOPIC)
        # events already on their way still need a handler on the client
        handlers = getattr(self.client, "_event_handlers", None)
        if handlers is not None:
            handlers[TOPIC] = _placeholder


_DISPATCHERS: dict[int, _Dispatcher] = {}
_LOCK = threading.Lock()


class WorkerLosses:
    """Counts the reruns caused by worker removals, for one scan on ``client``.

    Parameters
    ----------
    client : distributed.Client or None
        ``None`` makes an unsubscribed counter (fed through :meth:`handle`).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.counts: Counter[str] = Counter()
        self.removed: list[str] = []
        if client is None:
            return
        try:
            with _LOCK:
                dispatcher = _DISPATCHERS.get(id(client))
                if dispatcher is None or dispatcher.client is not client:
                    dispatcher = _DISPATCHERS[id(client)] = _Dispatcher(client)
                dispatcher.listeners.append(self)
        except Exception:
            log.warning("cannot follow worker removals; attempts undercount", exc_info=True)
            self.client = None

    def handle(self, event: tuple[float, Any]) -> None:
        """Count the tasks of one ``remove-worker`` event."""
        msg = event[1]
        if isinstance(msg, dict) and msg.get("action") == "remove-worker":
            self.removed.append(msg.get("worker", "?"))
            for key in msg.get("processing-tasks") or ():
                self.counts[str(key)] += 1
            for key in msg.get("lost-computed-tasks") or ():
                self.counts[str(key)] += 1

    def reruns(self, keys: Iterable[str]) -> int:
        """How many extra runs the tasks ``keys`` needed because of worker losses."""
        return sum(self.counts[k] for k in keys)

    def close(self) -> None:
        """Stop counting; the last scan on the client gives the topic back."""
        if self.client is None:
            return
        with _LOCK, contextlib.suppress(Exception):
            dispatcher = _DISPATCHERS.get(id(self.client))
            if dispatcher is not None and self in dispatcher.listeners:
                dispatcher.listeners.remove(self)
                if not dispatcher.listeners:
                    del _DISPATCHERS[id(self.client)]
                    dispatcher.close()
        self.client = None
