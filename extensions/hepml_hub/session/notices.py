"""Messages for the person in front of the session, posted by the hub's services.

The GPU culler posts a warning ("idle GPUs, this server stops in 10 minutes") to
``POST <server>/hepml/notices``; JupyterLab (the ``hepml-session`` lab extension) polls
``GET <server>/hepml/notices`` and shows each new notice as a notification that stays
until dismissed. A notice has an ``id`` so the same warning is shown once.

Examples
--------
>>> board = NoticeBoard()
>>> board.post({"id": "gpu-idle-1", "message": "GPUs idle", "type": "warning"})["id"]
'gpu-idle-1'
>>> [n["message"] for n in board.current()]
['GPUs idle']
>>> board.post({"message": ""})
Traceback (most recent call last):
...
ValueError: notice field 'message' must be a non-empty string, got ''
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["NOTICE_TYPES", "NoticeBoard"]

#: JupyterLab notification types a notice may have.
NOTICE_TYPES = ("info", "warning", "error", "success")


class NoticeBoard:
    """The notices of one server, newest last; a notice with a known id replaces the old."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self._notices: dict[str, dict[str, Any]] = {}

    def post(self, notice: dict[str, Any]) -> dict[str, Any]:
        """Validate and keep ``notice`` (``message``; optional ``id``, ``type``, ``expires``)."""
        message = notice.get("message")
        if not isinstance(message, str) or not message.strip():
            raise ValueError(f"notice field 'message' must be a non-empty string, got {message!r}")
        kind = notice.get("type", "warning")
        if kind not in NOTICE_TYPES:
            raise ValueError(f"notice field 'type' must be one of {NOTICE_TYPES}, got {kind!r}")
        expires = notice.get("expires")
        if expires is not None and not isinstance(expires, (int, float)):
            raise ValueError(f"notice field 'expires' must be a Unix time, got {expires!r}")
        now = time.time()
        notice_id = str(notice.get("id") or f"notice-{now:.6f}")
        kept = {"id": notice_id, "message": message, "type": kind, "posted": now}
        if expires is not None:
            kept["expires"] = float(expires)
        self._notices.pop(notice_id, None)
        self._notices[notice_id] = kept
        while len(self._notices) > self.limit:
            self._notices.pop(next(iter(self._notices)))
        return kept

    def withdraw(self, notice_id: str) -> bool:
        """Remove a notice (``True`` if it existed)."""
        return self._notices.pop(notice_id, None) is not None

    def current(self, now: float | None = None) -> list[dict[str, Any]]:
        """Notices not yet expired, oldest first."""
        now = time.time() if now is None else now
        return [n for n in self._notices.values() if n.get("expires", now + 1) > now]
