"""Weighted ROC curve and area under it, with a documented policy for negative weights.

Negative event weights (NLO generators, background subtraction) are kept by default: the
curve is built from *signed* cumulative sums of the weights, so the true- and false-positive
rates are those of the weighted distributions, exactly as a histogram would show them. Such a
curve can step backwards locally; the area is still computed exactly (trapezoids over the
distinct thresholds, ties counted half), which equals the weighted Mann-Whitney statistic

.. math:: \\mathrm{AUC} = \\frac{\\sum_{i \\in S} \\sum_{j \\in B} w_i w_j
          \\left([x_i > x_j] + \\tfrac12 [x_i = x_j]\\right)}{\\sum_{i \\in S} w_i
          \\sum_{j \\in B} w_j},

an unbiased estimate of the population AUC when the signed weights are. Like any estimate
from signed weights it can fall outside [0, 1] when negative weights dominate somewhere
(a small sample, or a score region of mostly negative weights): that says the sample is
too small to measure the AUC, not that the classifier is better than perfect. ``"clip"`` sets
negative weights to zero first; ``"error"`` refuses them. Either way each class must have a
positive total weight.

Examples
--------
>>> curve = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
>>> float(curve.auc)
0.75
>>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], sample_weight=[1, 1, 1, 3])
0.875
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .validation import binary_labels, event_weights, finite_1d, same_length

__all__ = ["NegativeWeights", "RocCurve", "roc_auc", "roc_curve"]

NegativeWeights = Literal["keep", "clip", "error"]


@dataclass(frozen=True, eq=False)
class RocCurve:
    """A ROC curve: one point per distinct score threshold, highest threshold first.

    Attributes
    ----------
    fpr, tpr : ndarray
        Background and signal efficiencies of ``score >= threshold`` (weighted), starting
        at (0, 0) and ending at (1, 1).
    thresholds : ndarray
        The thresholds, ``+inf`` first (nothing selected).
    auc : float
        Area under the curve.
    """

    fpr: NDArray[np.float64]
    tpr: NDArray[np.float64]
    thresholds: NDArray[np.float64]
    auc: float

    def __len__(self) -> int:
        return len(self.fpr)


def _prepare(
    y_true: ArrayLike,
    y_score: ArrayLike,
    sample_weight: ArrayLike | None,
    negative_weights: NegativeWeights,
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    labels = binary_labels("y_true", y_true)
    scores = finite_1d("y_score", y_score)
    same_length(y_true=labels, y_score=scores)
    weights = event_weights("sample_weight", sample_weight, len(scores))
    if negative_weights not in ("keep", "clip", "error"):
        raise ValueError(
            f"negative_weights must be 'keep', 'clip' or 'error', got {negative_weights!r}"
        )
    negative = np.flatnonzero(weights < 0)
    if negative.size and negative_weights == "error":
        i = int(negative[0])
        raise ValueError(
            f"sample_weight has {negative.size} negative weights (sample_weight[{i}] = "
            f"{float(weights[i])!r}) and negative_weights='error'"
        )
    if negative.size and negative_weights == "clip":
        weights = np.clip(weights, 0.0, None)
    for value, name in ((True, "signal (1)"), (False, "background (0)")):
        mask = labels == value
        if not mask.any():
            present = "1" if labels[0] else "0"
            raise ValueError(
                f"y_true holds only one class ({present}); a ROC curve needs both "
                "signal (1) and background (0) events"
            )
        total = float(weights[mask].sum())
        if not total > 0:
            raise ValueError(
                f"the {name} weights sum to {total!r}; each class needs a positive total weight"
            )
    return labels, scores, weights


def roc_curve(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    negative_weights: NegativeWeights = "keep",
) -> RocCurve:
    """The weighted ROC curve of a score, selecting ``score >= threshold`` as signal.

    Parameters
    ----------
    y_true : array_like of {0, 1} or bool, shape (n,)
        1 (True) for signal, 0 (False) for background.
    y_score : array_like, shape (n,)
        Classifier scores, larger meaning more signal-like; must be finite.
    sample_weight : array_like, shape (n,), optional
        Event weights (ones when omitted); may be negative, see ``negative_weights``.
    negative_weights : {"keep", "clip", "error"}
        Policy for negative weights (see the module documentation); default ``"keep"``.

    Returns
    -------
    RocCurve

    Raises
    ------
    ValueError
        Empty or mismatched inputs, non-finite scores or weights, labels other than 0/1, a
        single class, or a class whose weights do not sum to a positive number.

    Examples
    --------
    >>> c = roc_curve([0, 1, 1], [0.2, 0.9, 0.2])
    >>> c.tpr.tolist(), c.fpr.tolist(), float(c.auc)
    ([0.0, 0.5, 1.0], [0.0, 0.0, 1.0], 0.75)
    """
    labels, scores, weights = _prepare(y_true, y_score, sample_weight, negative_weights)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    w_sig = np.where(labels, weights, 0.0)[order]
    w_bkg = np.where(labels, 0.0, weights)[order]
    # last index of each run of equal scores: one point per distinct threshold
    ends = np.append(np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1)
    tps = np.cumsum(w_sig)[ends]
    fps = np.cumsum(w_bkg)[ends]
    tpr = np.concatenate([[0.0], tps / tps[-1]])
    fpr = np.concatenate([[0.0], fps / fps[-1]])
    thresholds = np.concatenate([[np.inf], sorted_scores[ends]])
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=thresholds, auc=auc)


def roc_auc(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    negative_weights: NegativeWeights = "keep",
) -> float:
    """The weighted area under the ROC curve (see :func:`roc_curve` for the arguments).

    With non-negative weights this equals
    ``sklearn.metrics.roc_auc_score(y_true, y_score, sample_weight=...)``.

    Examples
    --------
    >>> roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1])
    1.0

    A background of net weight 0.1, mostly cancelled above the signal: the signed estimate
    is far outside [0, 1], the clipped one is the AUC of the positive weights alone.

    >>> y, score, w = [0, 0, 1, 1], [0.1, 0.9, 0.5, 0.6], [1, -0.9, 1, 1]
    >>> round(roc_auc(y, score, sample_weight=w), 6)
    10.0
    >>> roc_auc(y, score, sample_weight=w, negative_weights="clip")
    1.0
    """
    return roc_curve(
        y_true, y_score, sample_weight=sample_weight, negative_weights=negative_weights
    ).auc
