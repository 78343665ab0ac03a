"""Input checks shared by the evaluation modules: each error names the offending value.

Examples
--------
>>> finite_1d("scores", [0.1, 0.7])
array([0.1, 0.7])
>>> finite_1d("scores", [0.1, float("nan")])
Traceback (most recent call last):
...
ValueError: scores must be finite; scores[1] is nan
>>> binary_labels("y_true", [0, 1, 2])
Traceback (most recent call last):
...
ValueError: y_true must hold only 0/1 (or False/True) labels; found 2 at index 2
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "binary_labels",
    "event_weights",
    "finite_1d",
    "finite_number",
    "non_negative_number",
    "same_length",
]

FloatArray = NDArray[np.float64]


def finite_1d(name: str, values: ArrayLike, *, allow_empty: bool = False) -> FloatArray:
    """``values`` as a 1D float64 array, all finite; ValueError naming the first bad entry."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1D array of numbers, got {values!r:.80}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name} must be finite; {name}[{i}] is {float(arr[i])!r}")
    return arr


def same_length(**arrays: np.ndarray) -> int:
    """The common length of the arrays, or a ValueError listing every length."""
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"mismatched lengths: {listed}")
    return next(iter(lengths.values()))


def binary_labels(name: str, values: ArrayLike) -> NDArray[np.bool_]:
    """0/1 or boolean class labels as a boolean array (True = signal)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == np.bool_:
        return arr
    try:
        ok = (arr == 0) | (arr == 1)
    except TypeError:  # pragma: no cover - numpy raises only for exotic dtypes
        ok = np.zeros(arr.shape, dtype=bool)
    if not np.all(ok):
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"{name} must hold only 0/1 (or False/True) labels; "
            f"found {arr[i].item()!r} at index {i}"
        )
    return arr.astype(bool)


def event_weights(name: str, weights: ArrayLike | None, n: int) -> FloatArray:
    """Per-event weights (ones when None), finite, of length ``n``."""
    if weights is None:
        return np.ones(n, dtype=np.float64)
    arr = finite_1d(name, weights, allow_empty=True)
    if len(arr) != n:
        raise ValueError(f"mismatched lengths: {name} has {len(arr)}, the scores have {n}")
    return arr


def finite_number(name: str, value: object) -> float:
    """A finite float, or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


def non_negative_number(name: str, value: object) -> float:
    """A finite float >= 0, or a ValueError naming it."""
    out = finite_number(name, value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return out
