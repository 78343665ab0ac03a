"""Checking what goes into an estimator: feature matrices, labels, weights, feature names.

Every check raises a :class:`~analysis_lib.training.errors.TrainingInputError` (a
``ValueError``) that names the offending column, row or value; nothing is silently
converted except numeric dtypes to ``float64``.

Examples
--------
>>> import numpy as np, pandas as pd
>>> X, names = feature_matrix(pd.DataFrame({"x": [1.0, 2.0], "theta": [0, 1]}))
>>> X.dtype, names
(dtype('float64'), ['x', 'theta'])
>>> feature_matrix(np.array([[1.0, np.nan]]))
Traceback (most recent call last):
...
analysis_lib.training.errors.TrainingInputError: X: feature 'x1' has 1 NaN value (first at row 0)
>>> labels([1, 1, 1], 3)
Traceback (most recent call last):
...
analysis_lib.training.errors.TrainingInputError: y has a single class (1); a binary classifier needs both signal (1) and background (0) events
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import FeatureMismatchError, TrainingInputError

FloatArray = NDArray[np.float64]


def default_names(n_features: int) -> list[str]:
    """Names for unnamed columns: ``x0, x1, ...``.

    Examples
    --------
    >>> default_names(3)
    ['x0', 'x1', 'x2']
    """
    return [f"x{i}" for i in range(n_features)]


def _to_frame_or_array(X: Any) -> Any:
    if hasattr(X, "to_pandas") and hasattr(X, "schema"):  # pyarrow Table
        return X.to_pandas()
    return X


def feature_matrix(
    X: Any, *, allow_nan: bool = False, name: str = "X"
) -> tuple[FloatArray, list[str] | None]:
    """``X`` as a finite ``float64`` matrix of shape (n_events, n_features), and its column names.

    Parameters
    ----------
    X : array_like, pandas.DataFrame or pyarrow.Table
        The features; a DataFrame's (or Table's) column names are returned, an array has none.
    allow_nan : bool, default False
        Let NaN through (XGBoost treats it as missing); infinities are always refused.
    name : str
        What to call ``X`` in error messages.

    Returns
    -------
    X : ndarray of float64
    names : list of str or None
    """
    X = _to_frame_or_array(X)
    names = None
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        names = [str(c) for c in X.columns]
        bad = [c for c, dt in zip(names, X.dtypes, strict=True) if not _numeric(dt)]
        if bad:
            raise TrainingInputError(
                f"{name}: non-numeric feature column(s) {', '.join(map(repr, bad))}"
            )
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise TrainingInputError(f"{name}: duplicate column name(s) {dup}")
        values = X.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        try:
            values = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TrainingInputError(f"{name} must be numeric: {exc}") from None
    if values.ndim != 2:
        raise TrainingInputError(
            f"{name} must be 2D (n_events, n_features), got shape {values.shape}"
            + ("; use X.reshape(-1, 1) for a single feature" if values.ndim == 1 else "")
        )
    if values.shape[1] == 0:
        raise TrainingInputError(f"{name} has no feature columns")
    check_finite(values, names or default_names(values.shape[1]), allow_nan=allow_nan, name=name)
    return values, names


def _numeric(dtype: Any) -> bool:
    kind = getattr(dtype, "kind", None)
    if kind is None:  # pandas extension dtypes
        try:
            kind = np.dtype(getattr(dtype, "numpy_dtype", dtype)).kind
        except TypeError:
            return False
    return kind in "biuf"


def check_finite(
    values: FloatArray, names: Sequence[str], *, allow_nan: bool = False, name: str = "X"
) -> None:
    """Raise if a column has infinities (or NaN, unless ``allow_nan``), naming the column."""
    bad_inf = np.isinf(values)
    bad_nan = np.isnan(values)
    for kind, mask in (("infinite", bad_inf), ("NaN", None if allow_nan else bad_nan)):
        if mask is None or not mask.any():
            continue
        col = int(np.flatnonzero(mask.any(axis=0))[0])
        rows = np.flatnonzero(mask[:, col])
        plural = "s" if rows.size > 1 else ""
        raise TrainingInputError(
            f"{name}: feature {names[col]!r} has {rows.size} {kind} value{plural} "
            f"(first at row {int(rows[0])})"
        )


def one_per_event(values: Any, n_events: int, *, name: str, item: str, items: str) -> np.ndarray:
    """``values`` as a 1D array of ``n_events`` entries (a single column is flattened).

    ``name`` is the argument's name, ``item`` and ``items`` what one entry and several
    entries are called in the error messages.

    Examples
    --------
    >>> one_per_event([[1], [2]], 2, name="z", item="nuisance value", items="z values")
    array([1, 2])
    >>> one_per_event([1, 2], 3, name="z", item="nuisance value", items="z values")
    Traceback (most recent call last):
    ...
    analysis_lib.training.errors.TrainingInputError: X and z have different lengths: 3 events in X, 2 z values
    """  # noqa: E501
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise TrainingInputError(f"{name} must be 1D (one {item} per event), got shape {arr.shape}")
    if arr.shape[0] != n_events:
        raise TrainingInputError(
            f"X and {name} have different lengths: {n_events} events in X, {arr.shape[0]} {items}"
        )
    return arr


def number_or_nan(value: Any) -> float:
    """``float(value)``, or NaN when ``value`` is not a number (for one finiteness check).

    Examples
    --------
    >>> number_or_nan("0.5"), number_or_nan("half"), number_or_nan(None)
    (0.5, nan, nan)
    """
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def labels(y: Any, n_events: int) -> FloatArray:
    """Binary labels (1 signal, 0 background) as float64; both classes must be present."""
    if y is None:
        raise TrainingInputError("y is required: 1 for signal, 0 for background")
    arr = one_per_event(y, n_events, name="y", item="label", items="labels")
    try:
        values = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise TrainingInputError(f"y must be 0/1 labels, got dtype {arr.dtype}") from None
    unknown = np.setdiff1d(np.unique(values[~np.isnan(values)]), [0.0, 1.0])
    if np.isnan(values).any() or unknown.size:
        shown = "NaN" if np.isnan(values).any() else repr(unknown[:3].tolist())
        raise TrainingInputError(f"y must contain only 0 and 1, got {shown}")
    present = np.unique(values)
    if present.size < 2:
        raise TrainingInputError(
            f"y has a single class ({int(present[0]) if present.size else 'none'}); a binary "
            "classifier needs both signal (1) and background (0) events"
        )
    return values


def sample_weights(sample_weight: Any, n_events: int) -> FloatArray:
    """Event weights as float64 (ones if None); finite, one per event."""
    if sample_weight is None:
        return np.ones(n_events)
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TrainingInputError(f"sample_weight must be numbers: {exc}") from None
    if w.ndim > 1 and w.shape[1:] != (1,) * (w.ndim - 1):
        raise TrainingInputError(
            f"sample_weight must hold one weight per event, got shape {w.shape}"
        )
    w = w.reshape(-1)
    if w.shape[0] != n_events:
        raise TrainingInputError(
            f"X and sample_weight have different lengths: {n_events} events, {w.shape[0]} weights"
        )
    if not np.all(np.isfinite(w)):
        row = int(np.flatnonzero(~np.isfinite(w))[0])
        raise TrainingInputError(
            f"sample_weight has a non-finite value {float(w[row])!r} at row {row}"
        )
    return w


def nonnegative_weights(w: FloatArray, purpose: str) -> FloatArray:
    """Refuse negative event weights, naming the first one; ``purpose`` says what needs them.

    Examples
    --------
    >>> nonnegative_weights(np.array([1.0, -0.5]), "templates")
    Traceback (most recent call last):
    ...
    analysis_lib.training.errors.TrainingInputError: sample_weight must be >= 0 for templates, got np.float64(-0.5) at row 1
    """  # noqa: E501
    if np.any(w < 0):
        row = int(np.flatnonzero(w < 0)[0])
        raise TrainingInputError(
            f"sample_weight must be >= 0 for {purpose}, got {w[row]!r} at row {row}"
        )
    return w


def align_features(
    values: FloatArray,
    names: list[str] | None,
    fitted_names: Sequence[str] | None,
    n_features: int,
    *,
    owner: str = "model",
) -> FloatArray:
    """Check a prediction matrix against the training features; reorder named columns.

    A DataFrame with the training columns in another order is reordered; missing or
    unexpected names, or a different number of columns, raise
    :class:`~analysis_lib.training.errors.FeatureMismatchError`.
    """
    expected = list(fitted_names) if fitted_names is not None else default_names(n_features)
    if names is not None and fitted_names is not None:
        if names == expected:
            return values
        missing = [c for c in expected if c not in names]
        extra = [c for c in names if c not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(map(repr, missing))}")
            if extra:
                parts.append(f"unexpected {', '.join(map(repr, extra))}")
            raise FeatureMismatchError(
                f"the {owner} was trained on features {expected}; X has {'; '.join(parts)}"
            )
        return values[:, [names.index(c) for c in expected]]
    if values.shape[1] != n_features:
        raise FeatureMismatchError(
            f"X has {values.shape[1]} features but the {owner} was trained on {n_features} "
            f"({', '.join(expected)})"
        )
    return values
