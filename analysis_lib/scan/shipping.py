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

A scan ships its data when it starts and removes them when it ends. For several scans of
the same table, :func:`ship` them once: the returned :class:`ShippedData` is given to each
scan as ``data`` and the workers keep their copy until it is released.

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

import contextlib
import hashlib
import os
import pickle
import secrets
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cloudpickle
from distributed.diagnostics.plugin import WorkerPlugin

__all__ = [
    "DataMissingError",
    "DataPlugin",
    "SharedPath",
    "ShippedData",
    "data_token",
    "get_data",
    "load_count",
    "ship",
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
        try:
            st = os.stat(data.path)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"SharedPath {data.path!r}: no such file here (the client names the data by "
                "the file's size and time, so it must see the shared file system too)"
            ) from exc
        key = pickle.dumps((os.path.abspath(data.path), st.st_size, st.st_mtime_ns))
        return hashlib.sha256(key).hexdigest()[:16]
    try:
        payload = pickle.dumps(data, protocol=5)
    except Exception:  # what only cloudpickle sends (a lambda in a dict, say)
        try:
            payload = cloudpickle.dumps(data, protocol=5)
        except Exception as exc:
            raise TypeError(
                f"data of type {type(data).__name__} cannot be sent to the Dask workers (it "
                f"does not pickle: {exc}); pass arrays, data frames or a dict of them, or a "
                "SharedPath to a file the workers read"
            ) from None
    return hashlib.sha256(payload).hexdigest()[:16]


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


def _unregister(client: Any, name: str) -> None:
    with contextlib.suppress(Exception):  # the client or the cluster may be gone already
        client.unregister_worker_plugin(name)


class ShippedData:
    """Data that every worker of one cluster keeps for several scans (made by :func:`ship`).

    Give it to :func:`~analysis_lib.scan.scan` as ``data``: the scan's trials use the
    copy the workers hold instead of the data being shipped again, and the copy stays when
    the scan ends. Workers that join or restart in the meantime get it too. It goes when
    :meth:`release` is called, when a ``with`` block around it ends, or when the handle is
    garbage-collected.

    Attributes
    ----------
    token : str
        The data's name on the workers (:func:`data_token`).
    scheduler_address : str
        The cluster the data went to.
    """

    def __init__(self, client: Any, token: str, name: str) -> None:
        self.token = token
        self.client = client
        self.scheduler_address: str = client.scheduler.address
        self._name = name
        self._finalizer = weakref.finalize(self, _unregister, client, name)
        self._finalizer.atexit = False  # at exit the cluster goes anyway

    @property
    def released(self) -> bool:
        """Whether the workers have dropped (or are dropping) the data."""
        return not self._finalizer.alive

    def release(self) -> None:
        """Remove the data from the workers (nothing if already released)."""
        self._finalizer()

    def check(self, client: Any) -> None:
        """Raise :class:`ValueError` unless ``client``'s cluster holds these data."""
        if self.released:
            raise ValueError(f"the shipped data {self.token} were released; ship() them again")
        address = client.scheduler.address
        if address != self.scheduler_address:
            raise ValueError(
                f"the data {self.token} were shipped to the cluster at "
                f"{self.scheduler_address}, not to this client's {address}"
            )

    def __enter__(self) -> ShippedData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __reduce__(self) -> Any:
        raise TypeError("ShippedData is the client's handle on data held by the workers")

    def __repr__(self) -> str:
        state = "released" if self.released else "held"
        return f"ShippedData(token={self.token!r}, cluster={self.scheduler_address!r}, {state})"


def ship(data: Any, *, client: Any = None) -> ShippedData:
    """Send ``data`` to every worker once, for several scans, until released.

    Parameters
    ----------
    data : object
        What :func:`~analysis_lib.scan.scan` takes as ``data``: anything picklable, or a
        :class:`SharedPath`.
    client : distributed.Client, optional
        Default: the current client (:func:`distributed.get_client`).

    Returns
    -------
    ShippedData
        Pass it as ``scan(..., data=...)``; release it (or use ``with``) when done.

    Raises
    ------
    ValueError
        ``data`` is None or already shipped, or there is no client.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
    ...     with Client(cluster) as client:
    ...         with ship({"x": [1, 2]}, client=client) as table:
    ...             held = client.run(has_data, table.token)  # a scan takes data=table
    ...         gone = client.run(has_data, table.token)
    >>> list(held.values()), list(gone.values()), table.released
    ([True], [False], True)
    """
    if data is None:
        raise ValueError("nothing to ship: data is None")
    if isinstance(data, ShippedData):
        raise ValueError(f"already shipped: {data!r}")
    if client is None:
        from distributed import get_client

        try:
            client = get_client()
        except ValueError as exc:
            raise ValueError("ship() needs a Dask client: pass client= or start one") from exc
    token = data_token(data)
    name = f"hepml-shipped-data-{token}-{secrets.token_hex(4)}"
    client.register_plugin(DataPlugin(token, data, name=name), name=name)
    return ShippedData(client, token, name)
