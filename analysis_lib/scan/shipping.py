"""Getting the training data to every worker once, including workers that join later.

The data travel inside a Dask :class:`~distributed.diagnostics.plugin.WorkerPlugin`: the
scheduler keeps the plugin and hands it to every worker when it registers, so a worker
that a nanny restarts after a crash (or a new batch job) gets the data again without any
action from the scan, and no trial ever carries the data itself. The plugin puts the data
into a per-process cache keyed by a token; trials look it up with :func:`get_data`.

Broadcast-scattered data do not have this property: a restarted worker does not get them
back, and a second crash can lose the last copy.

For tables too large to pass through the scheduler, give a :class:`SharedPath` (a file on
a file system every worker sees): the plugin then carries only the path, and each worker
process reads the file once, on the first trial that needs it.

Examples
--------
>>> plugin = DataPlugin("tok", {"x": [1, 2]})
>>> plugin.setup(worker=None)
>>> get_data("tok"), load_count("tok")
({'x': [1, 2]}, 1)
>>> plugin.teardown(worker=None)
>>> has_data("tok")
False
>>> import os, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = os.path.join(tmp, "table.pkl")
...     with open(path, "wb") as f:
...         pickle.dump([1, 2, 3], f)
...     shared = DataPlugin(data_token(SharedPath(path)), SharedPath(path))
...     shared.setup(worker=None)
...     print(get_data(shared.token), get_data(shared.token), load_count(shared.token))
[1, 2, 3] [1, 2, 3] 1
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = [
    "DataMissingError",
    "DataPlugin",
    "SharedPath",
    "data_token",
    "get_data",
    "load_count",
]

_CACHE: dict[str, Any] = {}
_LOADS: Counter[str] = Counter()
_LAZY: dict[str, SharedPath] = {}
_REFS: Counter[str] = Counter()
_LOCK = threading.RLock()


class DataMissingError(RuntimeError):
    """A trial ran on a worker that has not (yet) received the scan's data."""


@dataclass(frozen=True)
class SharedPath:
    """Data in a file that every worker can read, loaded once per worker process.

    Parameters
    ----------
    path : str
        The file (e.g. on a shared file system such as EOS or CVMFS).
    loader : callable, optional
        ``loader(path) -> data``; default by suffix: ``.parquet`` (pandas), ``.npz``
        (a dict of numpy arrays), ``.npy``, anything else unpickled.
    """

    path: str
    loader: Callable[[str], Any] | None = None

    def load(self) -> Any:
        """Read the file."""
        if self.loader is not None:
            return self.loader(self.path)
        if self.path.endswith(".parquet"):
            import pandas as pd

            return pd.read_parquet(self.path)
        if self.path.endswith((".npz", ".npy")):
            import numpy as np

            loaded = np.load(self.path, allow_pickle=False)
            return dict(loaded) if self.path.endswith(".npz") else loaded
        with open(self.path, "rb") as f:
            return pickle.load(f)


def data_token(data: Any) -> str:
    """A content hash of ``data`` (its pickle), naming it on the workers.

    For a :class:`SharedPath`, the path, size and modification time of the file.
    """
    if isinstance(data, SharedPath):
        st = os.stat(data.path)
        key = pickle.dumps((os.path.abspath(data.path), st.st_size, st.st_mtime_ns))
        return hashlib.sha256(key).hexdigest()[:16]
    return hashlib.sha256(pickle.dumps(data, protocol=5)).hexdigest()[:16]


class DataPlugin(WorkerPlugin):
    """Carries ``data`` to each worker once and caches it under ``token`` there.

    Parameters
    ----------
    token : str
        The name of the data in the worker's cache (:func:`data_token`).
    data : object
        Anything picklable: arrays, data frames, a dict of them; or a :class:`SharedPath`.
    name : str, optional
        The plugin's name on the cluster (one per scan, so that two scans with the same
        data can run at once: the cache entry lives until the last of them ends).
    """

    def __init__(self, token: str, data: Any, *, name: str | None = None) -> None:
        self.token = token
        self.data = data
        self.name = name or f"hepml-scan-data-{token}"

    def setup(self, worker: Any) -> None:
        with _LOCK:
            _REFS[self.token] += 1  # scans running with these data on this worker
            if isinstance(self.data, SharedPath):
                _LAZY[self.token] = self.data  # read on first use
                return
            _CACHE[self.token] = self.data
            _LOADS[self.token] += 1

    def teardown(self, worker: Any) -> None:
        with _LOCK:
            _REFS[self.token] -= 1
            if _REFS[self.token] <= 0:
                del _REFS[self.token]
                _CACHE.pop(self.token, None)
                _LAZY.pop(self.token, None)


def has_data(token: str) -> bool:
    """Whether this process holds (or can read) the data named ``token``."""
    return token in _CACHE or token in _LAZY


def get_data(token: str) -> Any:
    """The data named ``token`` in this process (raises :class:`DataMissingError`)."""
    try:
        return _CACHE[token]
    except KeyError:
        pass
    with _LOCK:  # one read per process, even with several threads
        if token in _CACHE:
            return _CACHE[token]
        if token in _LAZY:
            _CACHE[token] = _LAZY[token].load()
            _LOADS[token] += 1
            return _CACHE[token]
    raise DataMissingError(f"scan data {token!r} not on this worker (yet)")


def load_count(token: str) -> int:
    """How many times this process received the data named ``token``."""
    return _LOADS[token]
