"""A stratified, seeded split of the training events into a training and a validation part.

Examples
--------
>>> import numpy as np
>>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
>>> train, val = validation_split(y, 0.5, seed=0)
>>> len(train), len(val), int(y[val].sum())
(5, 5, 3)
>>> np.array_equal(val, validation_split(y, 0.5, seed=0)[1])
True
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .errors import TrainingInputError


def check_fraction(fraction: float | None) -> float:
    """``fraction`` as a float in [0, 1); None counts as 0 (no validation part)."""
    if fraction is None:
        return 0.0
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise TrainingInputError(
            f"validation_fraction must be a number in [0, 1), got {fraction!r}"
        ) from None
    if not (0.0 <= value < 1.0) or math.isnan(value):
        raise TrainingInputError(f"validation_fraction must be in [0, 1), got {fraction!r}")
    return value


def validation_split(
    y: NDArray, fraction: float, *, seed: int | None = 0
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Indices of the training and validation events, each class split by ``fraction``.

    Parameters
    ----------
    y : ndarray
        Class labels.
    fraction : float
        Share of each class (rounded to whole events, at least one of each class) that goes
        to validation; 0 gives an empty validation part.
    seed : int, optional
        Seed of the shuffle; the same seed gives the same split.

    Returns
    -------
    train, validation : ndarray of int
        Sorted indices into ``y``.
    """
    fraction = check_fraction(fraction)
    y = np.asarray(y)
    if fraction == 0.0:
        return np.arange(y.size), np.arange(0)
    rng = np.random.default_rng(seed)
    val = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        n_val = max(1, round(fraction * idx.size))
        if n_val >= idx.size:
            raise TrainingInputError(
                f"class {cls!r} has only {idx.size} event(s): too few for a validation split of "
                f"{fraction}; lower validation_fraction or set it to 0"
            )
        val.append(rng.permutation(idx)[:n_val])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(y.size), val_idx)
    return train_idx, val_idx
