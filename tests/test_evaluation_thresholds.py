"""Threshold scans against a brute-force loop over cuts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis_lib.evaluation import ThresholdScan, ams, ams1, scan_thresholds


def _events(seed: int = 0, n_sig: int = 300, n_bkg: int = 3000):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_sig), np.zeros(n_bkg)]
    scores = np.round(np.r_[rng.beta(5, 2, n_sig), rng.beta(2, 5, n_bkg)], 3)  # with ties
    weights = np.where(y == 1, 0.1, 0.5) * rng.uniform(0.5, 1.5, len(y))
    return y, scores, weights


def _brute_force(y, scores, weights, metric, cuts, min_background=0.0):
    s = np.array([weights[(scores >= t) & (y == 1)].sum() for t in cuts])
    b = np.array([weights[(scores >= t) & (y == 0)].sum() for t in cuts])
    values = np.array(
        [
            metric(si, bi) if (si >= 0 and bi > min_background) else math.nan
            for si, bi in zip(s, b, strict=True)
        ]
    )
    return s, b, values


def test_ams_scan_matches_brute_force():
    y, scores, weights = _events()
    scan = scan_thresholds(y, scores, sample_weight=weights)
    assert isinstance(scan, ThresholdScan)
    cuts = np.unique(scores)
    np.testing.assert_array_equal(scan.thresholds, cuts)
    s, b, values = _brute_force(y, scores, weights, ams, cuts)
    np.testing.assert_allclose(scan.s, s, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(scan.b, b, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(scan.values, values, rtol=1e-10, equal_nan=True)
    best = int(np.nanargmax(values))
    assert scan.best_threshold == cuts[best]
    assert scan.best_value == pytest.approx(values[best], rel=1e-12)
    # the top cuts leave no background: skipped, NaN
    assert np.isnan(scan.values[-1]) and scan.b[-1] == 0.0


def test_ams1_and_custom_metrics():
    y, scores, weights = _events(seed=1)
    cuts = np.linspace(0.05, 0.95, 19)

    def metric(s, b):
        return ams1(s, b, 0.2 * b)

    scan = scan_thresholds(y, scores, sample_weight=weights, metric=metric, thresholds=cuts)
    _, _, values = _brute_force(y, scores, weights, lambda s, b: ams1(s, b, 0.2 * b), cuts)
    np.testing.assert_allclose(scan.values, values, rtol=1e-10, equal_nan=True)
    assert scan.best_threshold == cuts[int(np.nanargmax(values))]

    naive = scan_thresholds(
        y, scores, sample_weight=weights, metric=lambda s, b: s / np.sqrt(b), thresholds=cuts
    )
    _, _, values = _brute_force(y, scores, weights, lambda s, b: s / math.sqrt(b), cuts)
    np.testing.assert_allclose(naive.values, values, rtol=1e-10, equal_nan=True)


def test_relative_background_uncertainty_moves_the_cut_tighter():
    # a relative uncertainty sigma_b = 0.3 b penalises loose cuts (large b) most
    y, scores, weights = _events(seed=2, n_sig=2000, n_bkg=20000)
    plain = scan_thresholds(y, scores, sample_weight=weights, metric=lambda s, b: ams1(s, b, 0.0))
    syst = scan_thresholds(
        y, scores, sample_weight=weights, metric=lambda s, b: ams1(s, b, 0.3 * b)
    )
    assert syst.best_value < plain.best_value
    assert syst.best_threshold >= plain.best_threshold


def test_min_background_and_quantile_thresholds():
    y, scores, weights = _events(seed=3)
    scan = scan_thresholds(y, scores, sample_weight=weights, min_background=20.0)
    assert np.all(np.isnan(scan.values[scan.b <= 20.0]))
    assert np.all(np.isfinite(scan.values[scan.b > 20.0]))
    assert scan.b[scan.best_index] > 20.0

    q = scan_thresholds(y, scores, sample_weight=weights, thresholds=11)
    assert len(q.thresholds) <= 11
    assert q.thresholds[0] == scores.min() and q.thresholds[-1] == scores.max()
    np.testing.assert_allclose(q.thresholds, np.unique(np.quantile(scores, np.linspace(0, 1, 11))))


def test_unweighted_counts():
    scan = scan_thresholds([1, 1, 0, 0, 0], [0.9, 0.6, 0.7, 0.2, 0.1])
    assert scan.s.tolist() == [2.0, 2.0, 2.0, 1.0, 1.0]
    assert scan.b.tolist() == [3.0, 2.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y_score": [0.1, float("nan"), 0.3]}, r"y_score\[1\] is nan"),
        ({"y_true": [0, 1]}, r"mismatched lengths: y_true has 2, y_score has 3"),
        ({"sample_weight": [1.0, 1.0]}, r"sample_weight has 2, the scores have 3"),
        ({"metric": lambda s, b: 1.0}, r"metric must return one value per threshold"),
        ({"thresholds": 0}, r"thresholds must be >= 1"),
        ({"min_background": 100.0}, r"not finite at any of the 3 thresholds"),
        ({"y_true": [], "y_score": []}, r"y_true is empty"),
    ],
)
def test_bad_input(kwargs, message):
    args = {"y_true": [0, 1, 0], "y_score": [0.1, 0.5, 0.3]} | kwargs
    with pytest.raises(ValueError, match=message):
        scan_thresholds(**args)
