"""What the trials of an XGBoost scan derive from the same data, made once per worker.

Every trial of an estimator scan splits the same table into a training and a validation
part and, for an XGBoost model, bins the training part into a ``QuantileDMatrix`` before
the first tree. Neither depends on the trial's parameters; on a 50 000 x 20 table with 100
trees they are about a sixth of each trial. For XGBoost's scikit-learn models
(``XGBClassifier``, ``XGBRegressor``, ...) a worker therefore keeps the last few:

* :func:`split_once` — ``train_test_split`` with a fixed seed, looked up by the *content*
  of the arrays (SHA-1 of their bytes, dtype and shape: an array changed in place is new
  data) and handed out read-only, so no trial can change what the next one gets; one copy
  per process, shared by its threads;
* :func:`reuse_matrices` — while an XGBoost model fits, the matrices its ``fit`` builds
  (a ``QuantileDMatrix`` for the ``hist`` method, else a ``DMatrix``) come from the cache
  when the data, labels and weights are the same and so are the settings that shape the
  matrix (``max_bin``, ``missing``, ``tree_method``, ``device``, ``booster``, ``n_jobs``,
  categorical settings). Training does not change a matrix, and the fitted model is the
  one a plain ``fit`` gives, tree for tree. Each thread keeps its own matrices.

Inside a scan trial (:func:`trial_scope`, entered by the scan's objectives) the library's
own :class:`~analysis_lib.training.XGBoostClassifier` reuses its matrices the same way,
also when a function objective builds it; outside a trial it fits as usual.

Anything else (other estimators, a split without a seed, data that are not plain numpy
arrays, rankers, base margins) takes the usual path. The cache holds at most
:data:`MAX_ENTRIES` splits per process and matrices per thread; a split goes with the data
it was made from, and :func:`~analysis_lib.scan.scan` clears its workers' caches when it
ends. :func:`clear` empties the process's splits and the calling thread's (or every
thread's) matrices, :func:`counts` tells the hits and misses of this process.

Examples
--------
>>> import numpy as np
>>> from xgboost import XGBClassifier
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 3)).astype(np.float32); y = (X[:, 0] > 0).astype(np.int32)
>>> clear(); before = counts()
>>> fits = []
>>> for rate in (0.1, 0.3):
...     X_tr, X_va, y_tr, y_va = split_once([X, y], test_size=0.25, seed=0, stratify=True)
...     model = XGBClassifier(n_estimators=5, learning_rate=rate, n_jobs=1)
...     with reuse_matrices(model):
...         fits.append(model.fit(X_tr, y_tr))
>>> after = counts()
>>> after["split_hits"] - before["split_hits"], after["matrix_hits"] - before["matrix_hits"]
(1, 1)
>>> X_tr.flags.writeable, "_create_dmatrix" in vars(fits[1])
(False, False)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import math
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "MAX_ENTRIES",
    "clear",
    "counts",
    "in_trial_scope",
    "is_xgboost_model",
    "reuse_matrices",
    "reuses_data",
    "split_once",
    "trial_scope",
]

#: Splits kept per process and matrices per thread (the least recently used go first).
MAX_ENTRIES = 4

_local = threading.local()
_scope = threading.local()
_counts: Counter[str] = Counter()
_counts_lock = threading.Lock()


class _Cache:
    """Splits (of a process) or matrices (of a thread), with the keys of what it handed out.

    An entry goes when it is the least recently used beyond :data:`MAX_ENTRIES`, when the
    cache is cleared, or (a split) when an array it was made from is garbage-collected.
    """

    def __init__(self) -> None:
        # reentrant: freeing an entry can collect arrays whose finalizers drop others
        self.lock = threading.RLock()
        self.entries: OrderedDict[tuple, Any] = OrderedDict()
        # id of an array or matrix this cache made -> (weak reference, its key)
        self.made: dict[int, tuple[weakref.ref, tuple]] = {}

    def get(self, key: tuple) -> Any:
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
            return value

    def put(
        self, key: tuple, value: Any, made: Sequence[tuple[Any, tuple]], sources: Sequence[Any]
    ) -> None:
        evicted = []
        with self.lock:
            self.entries[key] = value
            for obj, obj_key in made:
                self.made[id(obj)] = (weakref.ref(obj), obj_key)
            while len(self.entries) > MAX_ENTRIES:
                evicted.append(self.entries.popitem(last=False))
            self.made = {i: (r, k) for i, (r, k) in self.made.items() if r() is not None}
        del evicted  # freed outside the lock
        for source in sources:
            weakref.finalize(source, self.drop, key)

    def drop(self, key: tuple) -> None:
        with self.lock:
            value = self.entries.pop(key, None)
        del value  # freed outside the lock

    def key_of(self, obj: Any) -> tuple | None:
        """The key of an array or matrix this cache made (None for anything else)."""
        with self.lock:
            entry = self.made.get(id(obj))
        if entry is None or entry[0]() is not obj:
            return None
        if isinstance(obj, np.ndarray) and obj.flags.writeable:
            return None  # made writable again: its content may have changed
        return entry[1]


#: Every cache of this process (for :func:`clear` of all threads and :func:`counts`).
_caches: weakref.WeakSet[_Cache] = weakref.WeakSet()


def _cache() -> _Cache:
    """The calling thread's matrices (XGBoost's matrices are not shared between threads)."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = _Cache()
        with _counts_lock:
            _caches.add(cache)
    return cache


#: The process's splits: read-only arrays, shared by its threads (one copy per process).
_splits = _Cache()
_caches.add(_splits)


def _count(name: str) -> None:
    with _counts_lock:
        _counts[name] += 1


def counts() -> Counter[str]:
    """Hits and misses of this process (``split_hits``, ``split_misses``, ``matrix_hits``,
    ``matrix_misses``) and the splits and matrices its threads keep now (``kept``)."""
    with _counts_lock:
        names = ("split_hits", "split_misses", "matrix_hits", "matrix_misses")
        out = Counter({k: _counts[k] for k in names})
        caches = list(_caches)
    out["kept"] = sum(len(c.entries) for c in caches)
    return out


def clear(all_threads: bool = False) -> None:
    """Forget this process's splits and the calling thread's matrices (``all_threads``:
    every thread's matrices too, e.g. ``client.run(clear, True)`` on a cluster's workers)."""
    if all_threads:
        with _counts_lock:
            caches = list(_caches)
    else:
        caches = [_cache(), _splits]
    for cache in caches:
        with cache.lock:
            old, cache.entries, cache.made = cache.entries, OrderedDict(), {}
        del old  # freed outside the lock


def is_xgboost_model(model: Any) -> bool:
    """Whether ``model`` is one of XGBoost's scikit-learn models whose matrices can be reused."""
    try:
        from xgboost.sklearn import XGBModel
    except ImportError:  # pragma: no cover - xgboost is a core dependency
        return False
    if not isinstance(model, XGBModel):
        return False
    create = getattr(type(model), "_create_dmatrix", None)
    if not callable(create):
        return False
    try:
        params = inspect.signature(create).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False
    return "ref" in params and any(p.kind is p.VAR_KEYWORD for p in params.values())


def reuses_data(model: Any) -> bool:
    """Whether a scan may hand ``model`` a cached, read-only split and reuse its matrices:
    XGBoost's scikit-learn models and estimators whose class sets ``reuses_trial_data``."""
    return is_xgboost_model(model) or bool(getattr(type(model), "reuses_trial_data", False))


@contextlib.contextmanager
def trial_scope(enabled: bool = True) -> Iterator[None]:
    """Mark the block as a scan trial of this thread (``enabled=False``: as not one)."""
    previous = getattr(_scope, "on", False)
    _scope.on = enabled
    try:
        yield
    finally:
        _scope.on = previous


def in_trial_scope() -> bool:
    """Whether this thread runs a scan trial that reuses data (see :func:`trial_scope`)."""
    return bool(getattr(_scope, "on", False))


def _fingerprint(obj: Any) -> tuple | None:
    """A content key for a plain numpy array (None: not cacheable)."""
    if obj is None:
        return ("none",)
    made = _splits.key_of(obj) or _cache().key_of(obj)
    if made is not None:
        return made
    if type(obj) is not np.ndarray or obj.dtype.hasobject:
        return None
    digest = hashlib.sha1(np.ascontiguousarray(obj).view(np.uint8).ravel()).hexdigest()
    return ("array", obj.dtype.str, obj.shape, digest)


def split_once(
    arrays: Sequence[np.ndarray],
    *,
    test_size: float,
    seed: int | None,
    stratify: bool,
    cache: bool = True,
) -> list[np.ndarray]:
    """``train_test_split(*arrays)``, computed once per process for the same data and seed.

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        ``[X, y]`` or ``[X, y, sample_weight]``.
    test_size : float
        The validation share.
    seed : int or None
        The split's seed; None (a new split every call) is never cached.
    stratify : bool
        Stratify by ``arrays[1]``.
    cache : bool
        False: always a fresh (writable) split, as ``train_test_split`` gives it.

    Returns
    -------
    list of numpy.ndarray
        As ``train_test_split``: training and validation part of each array in turn,
        read-only when cached.
    """
    from sklearn.model_selection import train_test_split

    def fresh() -> list[np.ndarray]:
        return train_test_split(
            *arrays,
            test_size=test_size,
            random_state=seed,
            stratify=arrays[1] if stratify else None,
        )

    if not cache or not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        return fresh()
    prints = [_fingerprint(a) for a in arrays]
    if any(p is None or p == ("none",) for p in prints):
        return fresh()
    key = ("split", tuple(prints), float(test_size), int(seed), bool(stratify))
    parts = _splits.get(key)
    if parts is not None:
        _count("split_hits")
        return list(parts)
    _count("split_misses")
    parts = fresh()
    for part in parts:
        part.setflags(write=False)
    made = [(p, ("part", key, i)) for i, p in enumerate(parts)]
    _splits.put(key, tuple(parts), made, sources=arrays)
    return list(parts)


def _missing_key(missing: Any) -> Any:
    if isinstance(missing, float) and math.isnan(missing):
        return "nan"
    return missing


def _matrix_key(model: Any, ref: Any, kwargs: dict[str, Any]) -> tuple | None:
    """The cache key of the matrix ``model._create_dmatrix(ref=ref, **kwargs)`` would build."""
    known = {"data", "label", "weight", "missing", "enable_categorical", "feature_types"}
    unsupported = {"group", "qid", "base_margin", "feature_weights"}
    if any(k not in known | unsupported for k in kwargs):
        return None  # an argument this version of XGBoost adds: do not guess
    if any(kwargs.get(k) is not None for k in unsupported):
        return None
    prints = tuple(_fingerprint(kwargs.get(k)) for k in ("data", "label", "weight"))
    if any(p is None for p in prints) or prints[0] == ("none",):
        return None
    ref_key = None
    if ref is not None:
        ref_key = _cache().key_of(ref)
        if ref_key is None:
            return None
    feature_types = kwargs.get("feature_types")
    if feature_types is not None:
        if not isinstance(feature_types, list | tuple) or not all(
            isinstance(t, str) for t in feature_types
        ):
            return None
        feature_types = tuple(feature_types)
    settings = tuple(
        getattr(model, name, None)
        for name in ("max_bin", "n_jobs", "tree_method", "device", "booster", "max_cat_to_onehot")
    )
    try:
        hash(settings)
    except TypeError:
        return None
    return (
        "matrix",
        type(model).__qualname__,
        prints,
        ref_key,
        _missing_key(kwargs.get("missing")),
        bool(kwargs.get("enable_categorical")),
        feature_types,
        settings,
    )


def _cached_matrix(model: Any, create: Any, ref: Any = None, **kwargs: Any) -> Any:
    key = _matrix_key(model, ref, kwargs)
    if key is None:
        return create(ref=ref, **kwargs)
    cache = _cache()
    matrix = cache.get(key)
    if matrix is not None:
        _count("matrix_hits")
        return matrix
    _count("matrix_misses")
    matrix = create(ref=ref, **kwargs)
    # kept until evicted or cleared (a scan clears its workers' caches when it ends): its
    # data are often temporaries (a fancy-indexed training part), made again each trial
    cache.put(key, matrix, [(matrix, key)], sources=())
    return matrix


@contextlib.contextmanager
def reuse_matrices(model: Any) -> Iterator[Any]:
    """Within the block, ``model.fit`` takes its matrices from this thread's cache.

    Does nothing for anything but XGBoost's scikit-learn models (:func:`is_xgboost_model`).
    The model is left as it was (nothing of the cache stays on it, so it pickles as usual).
    """
    if not is_xgboost_model(model):
        yield model
        return
    create = model._create_dmatrix  # the class's own, bound to the model
    model._create_dmatrix = functools.partial(_cached_matrix, model, create)
    try:
        yield model
    finally:
        vars(model).pop("_create_dmatrix", None)
