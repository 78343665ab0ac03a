"""Threshold optimisation: scan ``score >= t`` and maximise a significance metric of (s, b).

For every candidate threshold ``t`` the weighted signal ``s(t)`` and background ``b(t)``
above it are computed in one sort (cumulative sums), the metric is evaluated on all of them
at once, and the best threshold is the one with the largest finite value. Cuts that leave
``b <= min_background`` (by default: no background at all) or a negative ``s`` (negative
weights) are not evaluated; they get NaN in the curve. Requiring some background guards
against choosing a cut whose only virtue is that the background simulation ran out of
events.

Examples
--------
>>> scan = scan_thresholds([0, 0, 0, 1, 1], [0.1, 0.3, 0.6, 0.5, 0.9],
...                        sample_weight=[20.0, 20.0, 5.0, 2.0, 2.0])
>>> float(scan.best_threshold), round(float(scan.best_value), 6)
(0.5, 0.991349)
>>> from analysis_lib.evaluation.ams import ams1
>>> scan = scan_thresholds([0, 0, 0, 1, 1], [0.1, 0.3, 0.6, 0.5, 0.9],
...                        metric=lambda s, b: ams1(s, b, 0.2 * b))
>>> float(scan.best_threshold)
0.5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .ams import ams
from .validation import binary_labels, event_weights, finite_1d, finite_number, same_length

__all__ = ["Metric", "ThresholdScan", "scan_thresholds"]

#: A significance metric: vectorised ``metric(s, b) -> values``.
Metric = Callable[[NDArray[np.float64], NDArray[np.float64]], ArrayLike]


@dataclass(frozen=True, eq=False)
class ThresholdScan:
    """The result of :func:`scan_thresholds`, thresholds in increasing order.

    Attributes
    ----------
    thresholds : ndarray
        The cut values ``t`` (select ``score >= t``).
    s, b : ndarray
        Weighted signal and background above each threshold.
    values : ndarray
        The metric at each threshold; NaN where it was not evaluated.
    best_index : int
        Index of the largest finite value.
    """

    thresholds: NDArray[np.float64]
    s: NDArray[np.float64]
    b: NDArray[np.float64]
    values: NDArray[np.float64]
    best_index: int

    @property
    def best_threshold(self) -> float:
        """The threshold with the largest metric value."""
        return float(self.thresholds[self.best_index])

    @property
    def best_value(self) -> float:
        """The largest metric value."""
        return float(self.values[self.best_index])


def _candidates(scores: NDArray[np.float64], thresholds: ArrayLike | int | None) -> np.ndarray:
    if thresholds is None:
        return np.unique(scores)
    if isinstance(thresholds, int | np.integer) and not isinstance(thresholds, bool):
        if thresholds < 1:
            raise ValueError(f"thresholds must be >= 1 when given as a count, got {thresholds}")
        return np.unique(np.quantile(scores, np.linspace(0.0, 1.0, int(thresholds))))
    return np.unique(finite_1d("thresholds", thresholds))


def scan_thresholds(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    metric: Metric = ams,
    thresholds: ArrayLike | int | None = None,
    min_background: float = 0.0,
) -> ThresholdScan:
    """Scan score thresholds and find the one that maximises ``metric(s, b)``.

    Parameters
    ----------
    y_true : array_like of {0, 1} or bool, shape (n,)
        1 for signal, 0 for background.
    y_score : array_like, shape (n,)
        Classifier scores (finite).
    sample_weight : array_like, shape (n,), optional
        Event weights normalised to the expected yields (cross section x luminosity / N);
        ones when omitted.
    metric : callable
        Vectorised ``metric(s, b)``; :func:`~analysis_lib.evaluation.ams.ams` by default.
        For AMS1 with a 10 % background uncertainty:
        ``lambda s, b: ams1(s, b, 0.1 * b)``.
    thresholds : array_like or int, optional
        The candidate thresholds: every distinct score (default), an explicit array, or a
        number of quantiles of the scores.
    min_background : float
        Thresholds leaving ``b <= min_background`` are skipped (NaN). Default 0.

    Returns
    -------
    ThresholdScan

    Raises
    ------
    ValueError
        Bad scores, labels or weights (see :func:`~analysis_lib.evaluation.roc.roc_curve`),
        a metric that does not return one value per threshold, or no threshold at which the
        metric is finite.

    Examples
    --------
    >>> scan = scan_thresholds([1, 0, 1, 0], [0.9, 0.2, 0.7, 0.8],
    ...                        metric=lambda s, b: s / np.sqrt(b))
    >>> scan.thresholds.tolist(), scan.values.tolist()
    ([0.2, 0.7, 0.8, 0.9], [1.414213562373095, 2.0, 1.0, nan])
    >>> scan.best_threshold
    0.7
    """
    labels = binary_labels("y_true", y_true)
    scores = finite_1d("y_score", y_score)
    same_length(y_true=labels, y_score=scores)
    weights = event_weights("sample_weight", sample_weight, len(scores))
    floor = finite_number("min_background", min_background)
    cuts = _candidates(scores, thresholds)

    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    w_sig = np.where(labels, weights, 0.0)[order]
    w_bkg = np.where(labels, 0.0, weights)[order]
    # weight at or above each cut = total - weight strictly below it
    below = np.searchsorted(sorted_scores, cuts, side="left")
    cum_sig = np.concatenate([[0.0], np.cumsum(w_sig)])
    cum_bkg = np.concatenate([[0.0], np.cumsum(w_bkg)])
    s = cum_sig[-1] - cum_sig[below]
    b = cum_bkg[-1] - cum_bkg[below]

    ok = (s >= 0) & (b > floor)
    values = np.full(len(cuts), np.nan)
    if ok.any():
        out = np.asarray(metric(s[ok], b[ok]), dtype=np.float64)
        if out.shape != (int(ok.sum()),):
            raise ValueError(
                f"metric must return one value per threshold: got shape {out.shape} for "
                f"{int(ok.sum())} thresholds"
            )
        values[ok] = out
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError(
            f"the metric is not finite at any of the {len(cuts)} thresholds "
            f"(min_background={floor!r}; largest b = {float(b.max())!r})"
        )
    best = int(np.flatnonzero(finite)[np.argmax(values[finite])])
    return ThresholdScan(thresholds=cuts, s=s, b=b, values=values, best_index=best)
