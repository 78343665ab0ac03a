"""Counting the trials that a dying worker took down with it, without polling.

When the scheduler removes a worker it logs a ``remove-worker`` event on its ``"all"``
topic, naming the tasks that were processing there (Dask reschedules them) and the
finished results that were lost with it (Dask recomputes them). :class:`WorkerLosses`
subscribes to that topic once per scan and counts, per task key, how many times it had to
run again; the scan adds this to a trial's attempts. A handler that the client already
had on the topic keeps receiving every event.

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
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["TOPIC", "WorkerLosses"]

log = logging.getLogger(__name__)

TOPIC = "all"


def _placeholder(event: Any) -> None:
    """Takes the events that arrive after a scan unsubscribed."""


class WorkerLosses:
    """Subscribes ``client`` to the scheduler's worker-removal events.

    Parameters
    ----------
    client : distributed.Client or None
        ``None`` makes an unsubscribed counter (fed through :meth:`handle`).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.counts: Counter[str] = Counter()
        self.removed: list[str] = []
        handlers = getattr(client, "_event_handlers", {}) if client is not None else {}
        previous = handlers.get(TOPIC)
        self._previous = None if previous is _placeholder else previous
        if client is not None:
            try:
                client.subscribe_topic(TOPIC, self.handle)
            except Exception:
                log.warning("cannot follow worker removals; attempts undercount", exc_info=True)
                self.client = None

    def handle(self, event: tuple[float, Any]) -> None:
        """Count the tasks of one ``remove-worker`` event (others are passed on)."""
        try:
            msg = event[1]
            if isinstance(msg, dict) and msg.get("action") == "remove-worker":
                self.removed.append(msg.get("worker", "?"))
                for key in msg.get("processing-tasks") or ():
                    self.counts[str(key)] += 1
                for key in msg.get("lost-computed-tasks") or ():
                    self.counts[str(key)] += 1
        finally:
            if self._previous is not None:
                self._previous(event)

    def reruns(self, keys: Iterable[str]) -> int:
        """How many extra runs the tasks ``keys`` needed because of worker losses."""
        return sum(self.counts[k] for k in keys)

    def close(self) -> None:
        """Unsubscribe (or give the topic back to the client's previous handler)."""
        if self.client is None:
            return
        with contextlib.suppress(Exception):
            if self._previous is not None:
                self.client.subscribe_topic(TOPIC, self._previous)
            else:
                self.client.unsubscribe_topic(TOPIC)
                # events already on their way still need a handler on the client
                handlers = getattr(self.client, "_event_handlers", None)
                if handlers is not None:
                    handlers[TOPIC] = _placeholder
        self.client = None
