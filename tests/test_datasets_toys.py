"""The papers' toy benchmarks: shapes, determinism, distributions, reference numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from analysis_lib.datasets.toys import (
    INFERNO_BACKGROUND_COV,
    PIVOT_COV_0,
    PIVOT_COV_1,
    PNN_THETA_TRAIN,
    InfernoParams,
    PnnToyParams,
    inferno_background_logpdf,
    inferno_expected_counts,
    inferno_mixture_logpdf,
    inferno_signal_logpdf,
    make_inferno_toy,
    make_pivot_toy,
    make_pnn_toy,
    pivot_toy_log_likelihood_ratio,
    pnn_toy_bayes_auc,
    pnn_toy_log_likelihood_ratio,
    sample_inferno_background,
    sample_inferno_pseudo_data,
    sample_inferno_signal,
)

N = 40_000  # events per sample in the moment checks: tolerances are ~5 standard errors


def _all_float64(*arrays):
    return all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in arrays)


# ------------------------------------------------------------ parameterised network toy


def test_pnn_shapes_dtypes_and_weights():
    X, y, w = make_pnn_toy(100, seed=0)
    assert X.shape == (1000, 2) and y.shape == w.shape == (1000,)
    assert _all_float64(X, y, w)
    assert set(np.unique(y)) == {0.0, 1.0} and y.sum() == 500
    assert np.all(w == 1.0)

    X, y, w = make_pnn_toy(100, [0.0, 1.0], n_background=50, seed=0)
    assert X.shape == (250, 2)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum()) == 200.0

    X, y, w = make_pnn_toy(0, seed=0)
    assert X.shape == (0, 2) and y.shape == w.shape == (0,)


def test_pnn_is_deterministic_for_a_seed():
    a = make_pnn_toy(200, seed=42)
    b = make_pnn_toy(200, seed=np.random.default_rng(42))
    c = make_pnn_toy(200, seed=43)
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[0], c[0])


def test_pnn_unshuffled_order():
    X, y, _ = make_pnn_toy(3, [1.0, -1.0], seed=0, shuffle=False)
    np.testing.assert_array_equal(y, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(X[:6, 1], [1.0, 1.0, 1.0, -1.0, -1.0, -1.0])


def test_pnn_distributions():
    X, y, _ = make_pnn_toy(N // 5, seed=1)
    sig, bkg = X[y == 1], X[y == 0]
    for theta in PNN_THETA_TRAIN:
        x = sig[sig[:, 1] == theta, 0]
        se = 0.25 / math.sqrt(len(x))
        assert abs(x.mean() - theta) < 5 * se
        assert abs(x.std(ddof=1) - 0.25) < 5 * 0.25 / math.sqrt(2 * len(x))
    xb = bkg[:, 0]
    assert xb.min() >= -4.0 and xb.max() <= 4.0
    assert abs(xb.mean()) < 5 * (8 / math.sqrt(12)) / math.sqrt(len(xb))
    assert abs(xb.var(ddof=1) - 64 / 12) < 0.1 * 64 / 12
    # uniform: each unit bin holds an eighth of the background
    counts, _ = np.histogram(xb, bins=8, range=(-4, 4))
    assert np.all(np.abs(counts / len(xb) - 1 / 8) < 0.01)


def test_pnn_background_theta_marginal_matches_signal():
    # divisible case: exactly the same multiset of θ values
    X, y, _ = make_pnn_toy(300, seed=2)
    sig_theta = np.sort(X[y == 1, 1])
    bkg_theta = np.sort(X[y == 0, 1])
    np.testing.assert_array_equal(sig_theta, bkg_theta)
    # background x does not depend on its θ
    for theta in PNN_THETA_TRAIN:
        xb = X[(y == 0) & (X[:, 1] == theta), 0]
        assert abs(xb.mean()) < 5 * (8 / math.sqrt(12)) / math.sqrt(len(xb))
    # non-divisible case: within one event per θ value
    X, y, _ = make_pnn_toy(10, seed=3, n_background=23)
    values, counts = np.unique(X[y == 0, 1], return_counts=True)
    np.testing.assert_array_equal(values, PNN_THETA_TRAIN)
    assert set(counts) <= {4, 5} and counts.sum() == 23


def test_pnn_bayes_auc_reproduces_0_9501():
    for theta in (-2.0, -1.5, 0.0, 0.5, 2.0):
        assert pnn_toy_bayes_auc(theta) == pytest.approx(0.9501, abs=5e-5)
    # closed form deep inside the support
    assert pnn_toy_bayes_auc(0.0) == pytest.approx(1 - 2 * 0.25 * math.sqrt(2 / math.pi) / 8)
    # reading 0.25 as a variance would not give the quoted number
    assert pnn_toy_bayes_auc(0.0, params=PnnToyParams(sigma=0.5)) == pytest.approx(0.9003, abs=1e-4)
    # at the support edge half of the signal has an infinite ratio
    assert pnn_toy_bayes_auc(4.0) == pytest.approx(1 - 0.25 / math.sqrt(2 * math.pi) / 8)


def test_pnn_bayes_auc_matches_sampled_likelihood_ratio():
    X, y, _ = make_pnn_toy(100_000, [0.0], seed=4)
    llr = pnn_toy_log_likelihood_ratio(X[:, 0], X[:, 1])
    assert np.all(np.isfinite(llr))
    auc = roc_auc_score(y, llr)
    # standard error of the AUC at n = 1e5 per class is ~7e-4
    assert auc == pytest.approx(pnn_toy_bayes_auc(0.0), abs=3e-3)


def test_pnn_log_likelihood_ratio_values():
    expected = math.log(8 / (0.25 * math.sqrt(2 * math.pi)))
    assert float(pnn_toy_log_likelihood_ratio(1.0, 1.0)) == pytest.approx(expected)
    out = pnn_toy_log_likelihood_ratio(np.array([-4.5, 0.0, 4.5]), 0.0)
    assert out[0] == out[2] == np.inf and np.isfinite(out[1])


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: make_pnn_toy(-1), "n_per_theta must be a non-negative integer, got -1"),
        (lambda: make_pnn_toy(2.5), "n_per_theta must be a non-negative integer, got 2.5"),
        (lambda: make_pnn_toy(10, []), "thetas must be a non-empty 1D list of values, got []"),
        (lambda: make_pnn_toy(10, [0.0, np.nan]), "thetas must all be finite"),
        (lambda: make_pnn_toy(10, n_background=-3), "n_background must be a non-negative"),
        (lambda: PnnToyParams(sigma=0.0), "sigma must be > 0, got 0.0"),
        (lambda: PnnToyParams(sigma=-0.25), "sigma must be > 0, got -0.25"),
        (lambda: PnnToyParams(low=1.0, high=1.0), "high must be > low, got low=1.0, high=1.0"),
        (lambda: make_pnn_toy(10, seed="abc"), "seed must be an int"),
        (lambda: make_pnn_toy(10, seed=-1), "seed must be >= 0, got -1"),
        (lambda: pnn_toy_bayes_auc(float("inf")), "theta must be a finite number, got inf"),
    ],
)
def test_pnn_bad_input(call, named):
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_toy_params_of_the_wrong_type_are_named():
    # a dict failed with AttributeError deep inside
    with pytest.raises(TypeError, match=r"params must be a PnnToyParams or None, got \{'sigma"):
        make_pnn_toy(5, params={"sigma": 1.0})
    with pytest.raises(TypeError, match=r"InfernoParams or None, got 3"):
        make_inferno_toy(5, 5, params=3)


# -------------------------------------------------------------------------- pivot toy


def test_pivot_shapes_dtypes_and_determinism():
    X, y, z = make_pivot_toy(500, seed=0)
    assert X.shape == (1000, 2) and y.shape == z.shape == (1000,)
    assert _all_float64(X, y, z) and y.sum() == 500
    again = make_pivot_toy(500, seed=0)
    for left, right in zip((X, y, z), again, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(X, make_pivot_toy(500, seed=1)[0])


def test_pivot_distributions():
    X, y, z = make_pivot_toy(N, seed=5)
    x0, x1, z1 = X[y == 0], X[y == 1], z[y == 1]
    se = 1 / math.sqrt(N)
    # Y = 0: the correlated Gaussian, independent of z
    assert np.all(np.abs(x0.mean(axis=0)) < 5 * se)
    np.testing.assert_allclose(np.cov(x0.T), PIVOT_COV_0, atol=0.04)
    assert abs(np.corrcoef(x0[:, 1], z[y == 0])[0, 1]) < 5 * se
    # Y = 1: mean (1, 1 + z) with unit covariance given z
    np.testing.assert_allclose(x1.mean(axis=0), [1.0, 1.0], atol=5 * math.sqrt(2) * se)
    resid = x1 - np.column_stack([np.ones(N), 1.0 + z1])
    np.testing.assert_allclose(np.cov(resid.T), PIVOT_COV_1, atol=0.04)
    slope = np.polyfit(z1, x1[:, 1], 1)[0]
    assert slope == pytest.approx(1.0, abs=0.03)
    # nuisance prior N(0, 1)
    assert abs(z.mean()) < 5 / math.sqrt(2 * N) and z.std() == pytest.approx(1.0, abs=0.02)


def test_pivot_fixed_nuisance_shifts_class_one_only():
    for value in (-1.0, 0.0, 1.0):
        X, y, z = make_pivot_toy(N, z=value, seed=6)
        assert np.all(z == value)
        means = X[y == 1].mean(axis=0)
        np.testing.assert_allclose(means, [1.0, 1.0 + value], atol=5 / math.sqrt(N))
        assert np.all(np.abs(X[y == 0].mean(axis=0)) < 5 / math.sqrt(N))
    # same seed, different z: class-1 events move rigidly in x1
    a, ya, _ = make_pivot_toy(100, z=0.0, seed=9, shuffle=False)
    b, _, _ = make_pivot_toy(100, z=1.0, seed=9, shuffle=False)
    np.testing.assert_allclose(b[ya == 1] - a[ya == 1], np.tile([0.0, 1.0], (100, 1)))
    np.testing.assert_array_equal(b[ya == 0], a[ya == 0])


def test_pivot_likelihood_ratio_is_a_better_classifier_than_noise():
    X, y, _ = make_pivot_toy(20_000, seed=8)
    llr = pivot_toy_log_likelihood_ratio(X)
    assert _all_float64(llr) and llr.shape == (40_000,)
    auc_marginal = roc_auc_score(y, llr)
    auc_first_coordinate = roc_auc_score(y, X[:, 0])
    assert auc_marginal > auc_first_coordinate > 0.5
    # conditioning on the true (fixed) nuisance recovers the exact Gaussian ratio
    X, y, _ = make_pivot_toy(5, z=0.5, seed=8)
    llr = pivot_toy_log_likelihood_ratio(X, z=0.5)
    x = X[0]
    d0, d1 = x, x - np.array([1.0, 1.5])
    inv0 = np.linalg.inv(PIVOT_COV_0)
    expected = -0.5 * d1 @ d1 + 0.5 * d0 @ inv0 @ d0 + 0.5 * math.log(np.linalg.det(PIVOT_COV_0))
    assert llr[0] == pytest.approx(expected)


def test_pivot_constants_are_read_only():
    with pytest.raises(ValueError, match="read-only"):
        PIVOT_COV_0[0, 0] = 2.0


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: make_pivot_toy(-5), "n_per_class must be a non-negative integer, got -5"),
        (lambda: make_pivot_toy(5, z_sigma=0.0), "z_sigma must be > 0, got 0.0"),
        (lambda: make_pivot_toy(5, z=float("nan")), "z must be a finite number, got nan"),
        (lambda: pivot_toy_log_likelihood_ratio(np.zeros((3, 3))), r"shape \(n, 2\)"),
    ],
)
def test_pivot_bad_input(call, named):
    with pytest.raises(ValueError, match=named):
        call()


# ------------------------------------------------------------------- INFERNO 3D mixture


def test_inferno_params_and_counts():
    assert InfernoParams() == InfernoParams(r=0.0, lam=3.0, s=50, b=1000)
    assert inferno_expected_counts() == (50.0, 1000.0)
    assert inferno_expected_counts(InfernoParams(s=10, b=200)) == (10.0, 200.0)
    assert isinstance(InfernoParams(s=50).s, float)


def test_inferno_shapes_dtypes_and_determinism():
    s = sample_inferno_signal(10, seed=0)
    b = sample_inferno_background(12, seed=0)
    X, y = make_inferno_toy(10, 12, seed=0)
    assert s.shape == (10, 3) and b.shape == (12, 3) and X.shape == (22, 3) and y.shape == (22,)
    assert _all_float64(s, b, X, y) and y.sum() == 10
    np.testing.assert_array_equal(X, make_inferno_toy(10, 12, seed=0)[0])
    np.testing.assert_array_equal(s, sample_inferno_signal(10, seed=0))
    assert not np.array_equal(s, sample_inferno_signal(10, seed=1))
    assert sample_inferno_signal(0, seed=0).shape == (0, 3)


def test_inferno_signal_moments():
    s = sample_inferno_signal(N, seed=1)
    se = 1 / math.sqrt(N)
    assert np.all(np.abs(s[:, :2].mean(axis=0)) < 5 * se)
    np.testing.assert_allclose(np.cov(s[:, :2].T), np.eye(2), atol=0.04)
    assert np.all(s[:, 2] >= 0)
    # Exp(rate 2): mean = sd = 1/2, so the rate estimate 1/mean is 2
    assert 1 / s[:, 2].mean() == pytest.approx(2.0, rel=5 * se)
    assert s[:, 2].std() == pytest.approx(0.5, rel=0.03)


@pytest.mark.parametrize(("r", "lam"), [(0.0, 3.0), (-0.6, 2.0), (1.0, 4.5)])
def test_inferno_background_moments(r, lam):
    b = sample_inferno_background(N, InfernoParams(r=r, lam=lam), seed=2)
    se = 1 / math.sqrt(N)
    assert b[:, 0].mean() == pytest.approx(2.0 + r, abs=5 * math.sqrt(5) * se)
    assert abs(b[:, 1].mean()) < 5 * 3 * se
    # diag(5, 9) are the variances (covariance matrix), not standard deviations
    np.testing.assert_allclose(np.cov(b[:, :2].T), INFERNO_BACKGROUND_COV, atol=0.3)
    assert np.all(b[:, 2] >= 0)
    assert 1 / b[:, 2].mean() == pytest.approx(lam, rel=5 * se)


def test_inferno_nuisances_move_background_through_common_random_numbers():
    nominal = make_inferno_toy(50, 100, seed=3, shuffle=False)[0]
    varied = make_inferno_toy(50, 100, InfernoParams(r=0.4, lam=2.5), seed=3, shuffle=False)[0]
    np.testing.assert_array_equal(nominal[:50], varied[:50])  # signal untouched
    np.testing.assert_allclose(varied[50:, 0] - nominal[50:, 0], 0.4)
    np.testing.assert_array_equal(varied[50:, 1], nominal[50:, 1])
    np.testing.assert_allclose(varied[50:, 2] / nominal[50:, 2], 3.0 / 2.5)


def _grid_integral(logpdf, lo, hi, n=(101, 101, 301)):
    """Trapezoidal integral of exp(logpdf) over the box [lo, hi] (3D)."""
    axes = [np.linspace(a, b, k) for a, b, k in zip(lo, hi, n, strict=True)]
    g0, g1, g2 = np.meshgrid(*axes, indexing="ij")
    values = np.exp(logpdf(np.column_stack([g0.ravel(), g1.ravel(), g2.ravel()])))
    values = values.reshape(g0.shape)
    for axis in reversed(range(3)):
        values = np.trapezoid(values, axes[axis], axis=axis)
    return float(values), axes


def test_inferno_densities_integrate_to_one():
    # x2 extends to 15 decay lengths: exp(-15) ~ 3e-7 is left out
    total, _ = _grid_integral(inferno_signal_logpdf, (-9, -9, 0), (9, 9, 7.5))
    assert total == pytest.approx(1.0, abs=2e-3)
    for params in (InfernoParams(), InfernoParams(r=-1.0, lam=1.5), InfernoParams(r=2.0, lam=5.0)):
        c = 2.0 + params.r
        total, _ = _grid_integral(
            lambda X, p=params: inferno_background_logpdf(X, p),
            (c - 20, -30, 0),
            (c + 20, 30, 15 / params.lam),
        )
        assert total == pytest.approx(1.0, abs=2e-3)
    total, _ = _grid_integral(inferno_mixture_logpdf, (-20, -30, 0), (24, 30, 7.5))
    assert total == pytest.approx(1.0, abs=2e-3)
    # nothing below x2 = 0
    assert inferno_signal_logpdf([[0.0, 0.0, -0.1]])[0] == -np.inf
    assert inferno_background_logpdf([[0.0, 0.0, -0.1]])[0] == -np.inf


def test_inferno_r_shifts_the_background_density_mean():
    for r in (-0.5, 0.0, 0.7):
        p = InfernoParams(r=r)
        x0 = np.linspace(2 + r - 25, 2 + r + 25, 2001)
        X = np.column_stack([x0, np.zeros_like(x0), np.full_like(x0, 0.2)])
        dens = np.exp(inferno_background_logpdf(X, p))
        mean = np.trapezoid(x0 * dens, x0) / np.trapezoid(dens, x0)
        assert mean == pytest.approx(2.0 + r, abs=1e-9)
        var = np.trapezoid((x0 - mean) ** 2 * dens, x0) / np.trapezoid(dens, x0)
        assert var == pytest.approx(5.0, rel=1e-6)


def test_inferno_logpdfs_match_samples_and_scipy_free_formulas():
    X = np.array([[0.3, -0.2, 0.5], [2.0, 1.0, 0.1]])
    expected_s = (
        -0.5 * (X[:, 0] ** 2 + X[:, 1] ** 2) - math.log(2 * math.pi) + math.log(2) - 2 * X[:, 2]
    )
    np.testing.assert_allclose(inferno_signal_logpdf(X), expected_s)
    p = InfernoParams(r=0.3, lam=2.0)
    expected_b = (
        -0.5 * ((X[:, 0] - 2.3) ** 2 / 5 + X[:, 1] ** 2 / 9)
        - math.log(2 * math.pi * math.sqrt(45))
        + math.log(2.0)
        - 2.0 * X[:, 2]
    )
    np.testing.assert_allclose(inferno_background_logpdf(X, p), expected_b)
    mix = np.log((50 * np.exp(expected_s) + 1000 * np.exp(expected_b)) / 1050)
    np.testing.assert_allclose(inferno_mixture_logpdf(X, InfernoParams(r=0.3, lam=2.0)), mix)


def test_inferno_pseudo_data():
    X, y = sample_inferno_pseudo_data(seed=4)
    assert _all_float64(X, y) and X.shape[1] == 3
    assert abs(y.sum() - 50) < 5 * math.sqrt(50)
    assert abs((1 - y).sum() - 1000) < 5 * math.sqrt(1000)
    np.testing.assert_array_equal(X, sample_inferno_pseudo_data(seed=4)[0])
    X, y = sample_inferno_pseudo_data(InfernoParams(s=0.0), seed=4)
    assert y.sum() == 0


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: InfernoParams(lam=0.0), "lam must be > 0, got 0.0"),
        (lambda: InfernoParams(lam=-2), "lam must be > 0, got -2"),
        (lambda: InfernoParams(s=-1.0), "s must be >= 0, got -1.0"),
        (lambda: InfernoParams(b=float("nan")), "b must be a finite number, got nan"),
        (lambda: InfernoParams(r="x"), "r must be a finite number, got 'x'"),
        (lambda: sample_inferno_signal(-1), "n must be a non-negative integer, got -1"),
        (lambda: sample_inferno_background(-2), "n must be a non-negative integer, got -2"),
        (lambda: make_inferno_toy(1, -4), "n_background must be a non-negative integer, got -4"),
        (lambda: inferno_signal_logpdf(np.zeros((2, 2))), r"X must have shape \(n, 3\)"),
        (
            lambda: inferno_mixture_logpdf(np.zeros((1, 3)), InfernoParams(s=0, b=0)),
            "s \\+ b must be > 0",
        ),
    ],
)
def test_inferno_bad_input(call, named):
    with pytest.raises(ValueError, match=named):
        call()
