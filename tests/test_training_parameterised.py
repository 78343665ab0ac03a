"""Parameterised classifier (Baldi et al.): θ as an input, background θ from the signal's
distribution, evaluation at any θ, leave-one-θ-out, AUC vs θ, and the paper's 1D toy."""

from __future__ import annotations

import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import importlib.util
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from analysis_lib.datasets.toys import (
    make_pnn_toy,
    pnn_toy_bayes_auc,
    pnn_toy_log_likelihood_ratio,
)
from analysis_lib.training import (
    KerasClassifier,
    ParameterisedClassifier,
    UnknownParameterError,
    XGBoostClassifier,
    auc_vs_parameter,
    leave_one_parameter_out,
    resample_background_parameter,
)
from analysis_lib.training.errors import FeatureMismatchError


def frame(X: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(X, columns=["x", "theta"])


@pytest.fixture(scope="module")
def xgb_pnn() -> ParameterisedClassifier:
    X, y, _ = make_pnn_toy(1000, seed=0)
    return ParameterisedClassifier(XGBoostClassifier(n_estimators=40)).fit(frame(X), y)


def test_background_parameter_follows_the_signal_distribution() -> None:
    rng = np.random.default_rng(0)
    theta_sig = rng.choice([1.0, 2.0, 3.0], size=3000, p=[0.5, 0.3, 0.2])
    theta = np.r_[theta_sig, np.full(20000, -7.0)]
    y = np.r_[np.ones(3000), np.zeros(20000)]
    w = np.r_[np.where(theta_sig == 3.0, 2.0, 1.0), np.ones(20000)]  # weight moves the mix
    out = resample_background_parameter(theta, y, w, seed=1)
    np.testing.assert_array_equal(out[:3000], theta_sig)  # signal untouched
    bkg = out[3000:]
    assert set(np.unique(bkg).tolist()) == {1.0, 2.0, 3.0}
    sig_share = np.array([np.sum(w[:3000][theta_sig == v]) for v in (1.0, 2.0, 3.0)])
    sig_share /= sig_share.sum()
    bkg_share = np.array([np.mean(bkg == v) for v in (1.0, 2.0, 3.0)])
    np.testing.assert_allclose(bkg_share, sig_share, atol=0.015)
    np.testing.assert_array_equal(out, resample_background_parameter(theta, y, w, seed=1))


def test_theta_alone_carries_no_information() -> None:
    # background generated with θ = 0 everywhere: without resampling θ would give it away
    X, y, _ = make_pnn_toy(500, seed=2)
    X[y == 0, 1] = 0.0
    Xf = frame(X)
    theta_only = ParameterisedClassifier(XGBoostClassifier(n_estimators=20), parameter="theta")
    theta_only.fit(Xf.assign(x=0.0), y)  # x carries nothing: only θ could separate
    # evaluated on the resampled training set the θ-only model is at chance level
    resampled = resample_background_parameter(X[:, 1], y, seed=0)
    s2 = theta_only.estimator_.predict_proba(pd.DataFrame({"x": 0.0, "theta": resampled}))[:, 1]
    assert abs(roc_auc_score(y, s2) - 0.5) < 0.03
    keep = ParameterisedClassifier(
        XGBoostClassifier(n_estimators=20), parameter="theta", background_parameter="keep"
    ).fit(Xf.assign(x=0.0), y)
    # kept as generated, the background's θ = 0 alone separates the classes
    assert roc_auc_score(y, keep.estimator_.predict_proba(Xf.assign(x=0.0))[:, 1]) > 0.75


def test_evaluation_at_scalar_and_per_event_parameter(xgb_pnn) -> None:
    X, y, _ = make_pnn_toy(300, [1.0], seed=3)
    x_only = pd.DataFrame({"x": X[:, 0]})
    at_scalar = xgb_pnn.predict_proba(x_only, parameter=1.0)
    at_array = xgb_pnn.predict_proba(x_only, parameter=np.full(len(X), 1.0))
    with_column = xgb_pnn.predict_proba(frame(X))
    np.testing.assert_array_equal(at_scalar, at_array)
    np.testing.assert_array_equal(at_scalar, with_column)
    # the same as the inner model on [x, θ]
    inner = xgb_pnn.estimator_.predict_proba(frame(X))
    np.testing.assert_array_equal(at_scalar, inner)
    # θ matters: the same events scored at θ = -2 are much worse
    auc1 = roc_auc_score(y, at_scalar[:, 1])
    auc_wrong = roc_auc_score(y, xgb_pnn.predict_proba(x_only, parameter=-2.0)[:, 1])
    assert auc1 > 0.93 and auc_wrong < 0.7
    # arrays without names: with or without the θ column
    np.testing.assert_array_equal(xgb_pnn.predict_proba(X[:, :1], parameter=1.0), at_scalar)
    assert xgb_pnn.parameter_values_.tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    np.testing.assert_allclose(xgb_pnn.parameter_probabilities_, 0.2)


def test_parameter_errors(xgb_pnn) -> None:
    x_only = pd.DataFrame({"x": [0.0, 1.0]})
    with pytest.raises(UnknownParameterError, match="pass parameter="):
        xgb_pnn.predict_proba(x_only)
    with pytest.raises(UnknownParameterError, match=r"= 3\.5 is outside the trained range"):
        xgb_pnn.predict_proba(x_only, parameter=3.5)
    assert xgb_pnn.predict_proba(x_only, parameter=3.5, extrapolate=True).shape == (2, 2)
    # a value was passed: the message said "X has no values ... pass parameter="
    with pytest.raises(UnknownParameterError, match=r"parameter=nan is not a finite value of"):
        xgb_pnn.predict_proba(x_only, parameter=float("nan"))
    with pytest.raises(UnknownParameterError, match=r"not a finite value .*\(event 1: nan\)"):
        xgb_pnn.predict_proba(x_only, parameter=np.array([0.5, np.nan]))
    with pytest.raises(FeatureMismatchError, match="unexpected 'mass'"):
        xgb_pnn.predict_proba(pd.DataFrame({"x": [0.0], "mass": [1.0]}), parameter=0.0)
    X, y, _ = make_pnn_toy(50, seed=0)
    with pytest.raises(UnknownParameterError, match="unknown parameter 'mass'"):
        ParameterisedClassifier(XGBoostClassifier(), parameter="mass").fit(frame(X), y)
    with pytest.raises(UnknownParameterError, match="no column names"):
        ParameterisedClassifier(XGBoostClassifier(), parameter="theta").fit(X, y)
    with pytest.raises(UnknownParameterError, match="index 5 is out of range"):
        ParameterisedClassifier(XGBoostClassifier(), parameter=5).fit(X, y)


def test_clone_and_pickle(xgb_pnn) -> None:
    twin = clone(xgb_pnn)
    assert twin.get_params()["parameter"] == "theta" and not hasattr(twin, "estimator_")
    again = pickle.loads(pickle.dumps(xgb_pnn))
    X, _, _ = make_pnn_toy(20, [0.5], seed=1)
    np.testing.assert_array_equal(again.predict_proba(frame(X)), xgb_pnn.predict_proba(frame(X)))


def test_auc_vs_parameter_matches_a_direct_computation(xgb_pnn) -> None:
    X, y, w = make_pnn_toy(400, [-1.0, 0.0, 1.0], seed=4)
    table = auc_vs_parameter(xgb_pnn, frame(X), y, w)
    assert table["parameter"].tolist() == [-1.0, 0.0, 1.0]
    assert table["n_signal"].tolist() == [400, 400, 400]
    for theta, auc in zip(table["parameter"], table["auc"], strict=True):
        keep = (y == 0) | (X[:, 1] == theta)
        score = xgb_pnn.predict_proba(frame(X[keep]), parameter=theta)[:, 1]
        assert auc == pytest.approx(roc_auc_score(y[keep], score, sample_weight=w[keep]))
        assert auc > 0.85
    with pytest.raises(UnknownParameterError, match="no signal events"):
        auc_vs_parameter(xgb_pnn, frame(X), y, values=[0.5])


def test_leave_one_parameter_out_trains_without_the_held_out_signal() -> None:
    X, y, _ = make_pnn_toy(300, [-1.0, 0.0, 1.0], seed=5)
    model = ParameterisedClassifier(XGBoostClassifier(n_estimators=20))
    table = leave_one_parameter_out(model, frame(X), y)
    assert table["parameter"].tolist() == [0.0]
    assert table["n_signal"].tolist() == [300]
    # trees cannot interpolate to the unseen θ = 0: much worse than trained there
    full = clone(model).fit(frame(X), y).auc_vs_parameter(frame(X), y, values=[0.0])
    assert table["auc"].iloc[0] < full["auc"].iloc[0] - 0.05


def test_plot_auc_vs_parameter(xgb_pnn) -> None:
    if importlib.util.find_spec("analysis_lib.evaluation.plots") is None:
        pytest.skip("analysis_lib.evaluation.plots is not there yet")
    import matplotlib

    matplotlib.use("Agg")
    X, y, _ = make_pnn_toy(200, [-1.0, 1.0], seed=6)
    ax = xgb_pnn.plot_auc_vs_parameter(frame(X), y, reference=[0.95, 0.95])
    table = xgb_pnn.auc_vs_parameter(frame(X), y)
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [-1.0, 1.0])
    np.testing.assert_allclose(line.get_ydata(), table["auc"])


def test_paper_toy_small_network_interpolates() -> None:
    """Baldi et al. Fig. 2, small: a network trained at θ ∈ {-2..2} classifies at unseen
    θ = ±0.5, ±1.5 almost as well as the Bayes-optimal classifier (AUC 0.9501)."""
    X, y, _ = make_pnn_toy(3000, seed=10)
    net = KerasClassifier(
        hidden_units=(32, 32),
        epochs=12,
        batch_size=256,
        learning_rate=3e-3,
        early_stopping_patience=3,
    )
    pnn = ParameterisedClassifier(net).fit(frame(X), y)
    Xt, yt, _ = make_pnn_toy(5000, [-1.5, -0.5, 0.5, 1.5], seed=11)
    table = pnn.auc_vs_parameter(frame(Xt), yt)
    assert table["parameter"].tolist() == [-1.5, -0.5, 0.5, 1.5]
    for theta, auc in zip(table["parameter"], table["auc"], strict=True):
        keep = (yt == 0) | (Xt[:, 1] == theta)
        bayes = roc_auc_score(yt[keep], pnn_toy_log_likelihood_ratio(Xt[keep, 0], theta))
        assert pnn_toy_bayes_auc(theta) == pytest.approx(0.9501, abs=1e-4)
        assert auc > 0.94, (theta, auc)
        assert auc > bayes - 0.006, (theta, auc, bayes)
