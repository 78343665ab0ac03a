"""Weighted ROC/AUC against scikit-learn, a brute-force pair count, and the 1D toy's Bayes AUC."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from analysis_lib.datasets.toys import pnn_toy_bayes_auc
from analysis_lib.evaluation import RocCurve, roc_auc, roc_curve


def _sample(n: int, seed: int, *, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = rng.normal(loc=0.8 * y, scale=1.0)
    if ties:
        scores = np.round(scores, 1)
    weights = rng.exponential(1.0, n)
    return y, scores, weights


def _pairwise_auc(y, scores, weights) -> float:
    """The weighted Mann-Whitney statistic by an explicit double sum over signal x background."""
    sig, bkg = y == 1, y == 0
    xs, ws = scores[sig], weights[sig]
    xb, wb = scores[bkg], weights[bkg]
    greater = (xs[:, None] > xb[None, :]).astype(float)
    equal = (xs[:, None] == xb[None, :]).astype(float)
    num = np.sum(ws[:, None] * wb[None, :] * (greater + 0.5 * equal))
    return float(num / (ws.sum() * wb.sum()))


@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn_with_weights(ties):
    y, scores, weights = _sample(5000, seed=1, ties=ties)
    expected = roc_auc_score(y, scores, sample_weight=weights)
    assert roc_auc(y, scores, sample_weight=weights) == pytest.approx(expected, rel=1e-12)
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), rel=1e-12)


def test_curve_points_match_sklearn_without_dropping():
    y, scores, weights = _sample(2000, seed=2, ties=True)
    curve = roc_curve(y, scores, sample_weight=weights)
    fpr, tpr, thr = sk_roc_curve(y, scores, sample_weight=weights, drop_intermediate=False)
    assert isinstance(curve, RocCurve)
    np.testing.assert_allclose(curve.fpr, fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve.tpr, tpr, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(curve.thresholds[1:], thr[1:])
    assert curve.thresholds[0] == np.inf
    assert (curve.fpr[0], curve.tpr[0], curve.fpr[-1], curve.tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert len(curve) == len(np.unique(scores)) + 1


def test_negative_weights_kept_equal_pairwise_statistic():
    y, scores, weights = _sample(400, seed=3, ties=True)
    rng = np.random.default_rng(4)
    weights = weights * np.where(rng.random(len(weights)) < 0.2, -0.5, 1.0)
    assert (weights < 0).sum() > 20
    expected = _pairwise_auc(y, scores, weights)
    assert roc_auc(y, scores, sample_weight=weights) == pytest.approx(expected, rel=1e-12)


def test_negative_weights_clip_equals_sklearn_on_clipped_weights():
    y, scores, weights = _sample(1000, seed=5)
    weights[::7] *= -1.0
    clipped = np.clip(weights, 0.0, None)
    got = roc_auc(y, scores, sample_weight=weights, negative_weights="clip")
    assert got == pytest.approx(roc_auc_score(y, scores, sample_weight=clipped), rel=1e-12)
    kept = roc_auc(y, scores, sample_weight=weights)
    assert kept != pytest.approx(got, rel=1e-6)


def test_negative_weights_error_names_the_weight():
    y, scores, weights = _sample(50, seed=6)
    weights[3] = -2.5
    with pytest.raises(ValueError, match=r"sample_weight\[3\] = -2.5"):
        roc_auc(y, scores, sample_weight=weights, negative_weights="error")


def test_auc_is_invariant_under_weight_scale_and_monotone_score_maps():
    y, scores, weights = _sample(1000, seed=7)
    base = roc_auc(y, scores, sample_weight=weights)
    assert roc_auc(y, scores, sample_weight=3.0 * weights) == pytest.approx(base, rel=1e-12)
    assert roc_auc(y, np.exp(scores), sample_weight=weights) == pytest.approx(base, rel=1e-12)
    assert roc_auc(y, -scores, sample_weight=weights) == pytest.approx(1.0 - base, rel=1e-12)


def test_bool_labels_and_perfect_separation():
    assert roc_auc([True, False, True], [0.9, 0.1, 0.8]) == 1.0
    assert roc_auc([1, 0], [0.1, 0.9]) == 0.0


def test_optimal_score_on_the_1d_toy_reaches_the_bayes_auc():
    # signal N(0.5, 0.25), background U[-4, 4]: -|x - 0.5| orders events like the
    # likelihood ratio (the signal never leaves the support at 14 sigma)
    rng = np.random.default_rng(8)
    n = 100_000
    x = np.r_[rng.normal(0.5, 0.25, n), rng.uniform(-4.0, 4.0, n)]
    y = np.r_[np.ones(n), np.zeros(n)]
    auc = roc_auc(y, -np.abs(x - 0.5))
    assert auc == pytest.approx(pnn_toy_bayes_auc(0.5), abs=0.003)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"y_score": [0.1, float("nan"), 0.3, 0.4]},
            r"y_score must be finite; y_score\[1\] is nan",
        ),
        ({"y_score": [0.1, 0.2, float("inf"), 0.4]}, r"y_score\[2\] is inf"),
        ({"y_true": [0, 1, 1]}, r"mismatched lengths: y_true has 3, y_score has 4"),
        ({"sample_weight": [1.0, 1.0]}, r"sample_weight has 2, the scores have 4"),
        ({"sample_weight": [1.0, float("nan"), 1, 1]}, r"sample_weight\[1\] is nan"),
        ({"y_true": [], "y_score": []}, r"y_true is empty"),
        ({"y_true": [1, 1, 1, 1]}, r"y_true holds only one class \(1\)"),
        ({"y_true": [0, 0, 0, 0]}, r"y_true holds only one class \(0\)"),
        ({"y_true": [0, 1, 2, 1]}, r"only 0/1 \(or False/True\) labels; found 2 at index 2"),
        ({"sample_weight": [1.0, -1.0, 1.0, -2.0]}, r"the signal \(1\) weights sum to -3.0"),
        ({"negative_weights": "ignore"}, r"negative_weights must be 'keep', 'clip' or 'error'"),
        ({"y_score": [[0.1, 0.2], [0.3, 0.4]]}, r"y_score must be one-dimensional"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    args = {"y_true": [0, 1, 0, 1], "y_score": [0.1, 0.2, 0.3, 0.4]} | kwargs
    with pytest.raises(ValueError, match=message):
        roc_curve(**args)
