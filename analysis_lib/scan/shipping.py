"""Getting the training data to every worker once, including workers that join later.

The data travel inside a Dask :class:`~distributed.diagnostics.plugin.WorkerPlugin`: the
scheduler keeps the plugin and hands it to every worker when it registers, so a worker
that a nanny restarts after a crash (or a new batch job) gets the data again without any
action from the scan, and no trial ever carries the data itself. The plugin puts the data
into a per-process cache keyed by a token; trials look it up with :func:`get_data`.

Broadcast-scattered data do not have this property: a restarted worker does not get them
back, and a second crash can lose the last copy.

Examples
--------
>>> plugin = DataPlugin("tok", {"x": [1, 2]})
>>> plugin.setup(worker=None)
>>> get_data("tok"), load_count("tok")
({'x': [1, 2]}, 1)
>>> plugin.teardown(worker=None)
>>> has_data("tok")
False
"""

from __future__ import annotations

import hashlib
import pickle
from collections import Counter
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["DataMissingError", "DataPlugin", "data_token", "get_data", "load_count"]

_CACHE: dict[str, Any] = {}
_LOADS: Counter[str] = Counter()


class DataMissingError(RuntimeError):
    """A trial ran on a worker that has not (yet) received the scan's data."""


def data_token(data: Any) -> str:
    """A content hash of ``data`` (its pickle), naming it on the workers."""
    return hashlib.sha256(pickle.dumps(data, protocol=5)).hexdigest()[:16]


class DataPlugin(WorkerPlugin):
    """Carries ``data`` to each worker once and caches it under ``token`` there.

    Parameters
    ----------
    token : str
        The name of the data in the worker's cache (:func:`data_token`).
    data : object
        Anything picklable: arrays, data frames, a dict of them.
    """

    def __init__(self, token: str, data: Any) -> None:
        self.token = token
        self.data = data
        self.name = f"hepml-scan-data-{token}"

    def setup(self, worker: Any) -> None:
        _CACHE[self.token] = self.data
        _LOADS[self.token] += 1

    def teardown(self, worker: Any) -> None:
        _CACHE.pop(self.token, None)


def has_data(token: str) -> bool:
    """Whether this process holds the data named ``token``."""
    return token in _CACHE


def get_data(token: str) -> Any:
    """The data named ``token`` in this process (raises :class:`DataMissingError`)."""
    try:
        return _CACHE[token]
    except KeyError:
        raise DataMissingError(f"scan data {token!r} not on this worker (yet)") from None


def load_count(token: str) -> int:
    """How many times this process received the data named ``token``."""
    return _LOADS[token]
