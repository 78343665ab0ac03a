"""INFERNO and the Asimov/Fisher expected uncertainty: paper references, autodiff, contract."""

from __future__ import annotations

import math
import os
import pickle

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from sklearn.base import clone

from analysis_lib.datasets.toys import (
    InfernoParams,
    inferno_background_logpdf,
    inferno_signal_logpdf,
    make_inferno_toy,
    sample_inferno_background,
    sample_inferno_signal,
)
from analysis_lib.training.asimov import (
    Nuisance,
    binned_fisher_information,
    expected_sigma,
    inferno_toy_exact_sigma,
    inferno_toy_nuisances,
    profiled_sigma,
)
from analysis_lib.training.errors import (
    FeatureMismatchError,
    TrainingInputError,
    UnknownParameterError,
    UnknownVariationError,
)
from analysis_lib.training.inferno import InfernoClassifier, batch_size_for

try:  # only possible before TensorFlow's runtime starts (another test may have started it)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:
    pass

S, B = 50.0, 1000.0
# de Castro & Dorigo, arXiv:1806.04743, Table 2 ("Analytical likelihood", "Optimal classifier")
PAPER_EXACT = {(): 14.71, ("r",): 15.52, ("r", "lam"): 15.65}
PAPER_OPTIMAL_CLASSIFIER_B0 = 14.97


def _bayes_classifier(X):
    """s/(s+b) density ratio at equal priors: the paper's "optimal classifier"."""
    return 1.0 / (1.0 + np.exp(inferno_background_logpdf(X) - inferno_signal_logpdf(X)))


@pytest.fixture(scope="module")
def evaluation():
    return sample_inferno_signal(200_000, seed=11), sample_inferno_background(200_000, seed=12)


# ------------------------------------------------------------------ exact reference


@pytest.mark.parametrize("free", list(PAPER_EXACT))
def test_exact_likelihood_reference_matches_the_paper(free):
    assert inferno_toy_exact_sigma(free) == pytest.approx(PAPER_EXACT[free], abs=0.1)


def test_exact_reference_agrees_with_monte_carlo_score_integral():
    """Independent estimate: I = s E_s[g g^T] + b E_b[g g^T] with g = grad log nu (scores)."""
    n = 400_000
    p = InfernoParams()
    xs, xb = sample_inferno_signal(n, seed=1), sample_inferno_background(n, seed=2)

    def scores(X):
        fs = np.exp(inferno_signal_logpdf(X))
        fb = np.exp(inferno_background_logpdf(X, p))
        nu = p.s * fs + p.b * fb
        grads = [fs, p.b * fb * (X[:, 0] - 2.0) / 5.0, p.b * fb * (1.0 / p.lam - X[:, 2])]
        return np.stack(grads, axis=1) / nu[:, None]

    gs, gb = scores(xs), scores(xb)
    fisher = p.s * gs.T @ gs / n + p.b * gb.T @ gb / n
    assert inferno_toy_exact_sigma() == pytest.approx(profiled_sigma(fisher), rel=0.01)
    # a constraint can only shrink the uncertainty, towards the no-nuisance value
    constrained = inferno_toy_exact_sigma(constraints={"r": 0.4, "lam": 1.0})
    assert inferno_toy_exact_sigma([]) < constrained < inferno_toy_exact_sigma()


# ------------------------------------------------------------------ binned Asimov


def test_binned_fisher_is_the_hessian_of_the_asimov_nll():
    rng = np.random.default_rng(0)
    t_s, t_b, d_b = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6)), rng.normal(0, 0.02, 6)

    def nu(theta):
        s, a = theta
        return s * t_s + B * (t_b + a * d_b)

    def nll(theta):  # Poisson NLL of the Asimov data set at the true (50, 0)
        n_obs = nu((S, 0.0))
        lam = nu(theta)
        return float(np.sum(lam - n_obs * np.log(lam)))

    h = 1e-3
    theta0 = np.array([S, 0.0])
    hess = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            hess[i, j] = (
                nll(theta0 + ei + ej) - nll(theta0 + ei - ej)
                - nll(theta0 - ei + ej) + nll(theta0 - ei - ej)
            ) / (4 * h * h)  # fmt: skip
    fisher = binned_fisher_information(nu(theta0), [t_s, B * d_b])
    np.testing.assert_allclose(fisher, hess, rtol=1e-4)


def test_expected_sigma_of_the_bayes_classifier(evaluation):
    xs, xb = evaluation
    sigmas = {
        free: expected_sigma(
            _bayes_classifier, xs, xb, signal_yield=S, background_yield=B,
            nuisances=inferno_toy_nuisances(free),
        ).sigma
        for free in PAPER_EXACT
    }  # fmt: skip
    assert sigmas[()] == pytest.approx(PAPER_OPTIMAL_CLASSIFIER_B0, abs=0.15)
    # nuisances the classifier ignores cost a lot (paper: 19.12 and 24.93)
    assert sigmas[()] < 17.0 < sigmas[("r",)] < 21.0 < sigmas[("r", "lam")] < 27.0
    for free, sigma in sigmas.items():
        assert sigma > inferno_toy_exact_sigma(free)  # nothing beats the exact likelihood


# ------------------------------------------------------------------ INFERNO training


@pytest.fixture(scope="module")
def trained():
    X, y = make_inferno_toy(20_000, 20_000, seed=1)
    clf = InfernoClassifier(
        n_bins=10, hidden_units=(32, 32), epochs=8, batch_size=1000, learning_rate=2e-3,
        nuisances=inferno_toy_nuisances(), seed=0,
    ).fit(X, y)  # fmt: skip
    return clf, X, y


def test_inferno_beats_the_bayes_classifier_under_nuisances(trained, evaluation):
    clf, _, _ = trained
    xs, xb = evaluation
    nuis = inferno_toy_nuisances()
    inferno = expected_sigma(
        clf.predict_proba, xs, xb, signal_yield=S, background_yield=B, nuisances=nuis
    )
    baseline = expected_sigma(
        _bayes_classifier, xs, xb, signal_yield=S, background_yield=B, nuisances=nuis
    )
    assert inferno.names == ("s", "r", "lam")
    # the best cross-entropy classifier binned in 10 bins: ~24.7; INFERNO (paper 16.95)
    assert inferno.sigma < baseline.sigma - 4.0, (inferno.sigma, baseline.sigma)
    assert inferno.sigma > inferno_toy_exact_sigma() - 0.3
    losses = clf.history_["loss"]
    assert losses[-1] < losses[0]


def test_train_step_fisher_matches_finite_differences(trained):
    """The autodiff Fisher of the loss equals one from soft templates of shifted inputs."""
    clf, X, y = trained
    X, y = X[:4000], y[:4000]
    _, fisher = clf.model_.inferno_loss(X.astype(np.float32), y.astype(np.float32), None)
    proba = clf.predict_proba  # softmax at the training temperature: the soft summary

    def template(x):
        return proba(x).mean(axis=0)

    t_s, t_b = template(X[y == 1]), template(X[y == 0])
    rows = [t_s]
    for nu in inferno_toy_nuisances():
        h = 1e-2
        up = template(nu.transform(X[y == 0], nu.nominal + h))
        down = template(nu.transform(X[y == 0], nu.nominal - h))
        rows.append(B * (up - down) / (2 * h))
    expected = binned_fisher_information(S * t_s + B * t_b, rows)
    np.testing.assert_allclose(np.asarray(fisher), expected, rtol=0.03, atol=1e-3)


def test_predictions_contract_and_pickle(trained):
    clf, X, _ = trained
    proba = clf.predict_proba(X[:200])
    bins = clf.predict(X[:200])
    assert proba.shape == (200, 10) and np.allclose(proba.sum(axis=1), 1.0)
    assert bins.min() >= 0 and bins.max() < 10
    np.testing.assert_array_equal(bins, proba.argmax(axis=1))
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X[:200]), proba, rtol=1e-5, atol=1e-6)
    params = clf.get_params()
    twin = clone(clf)
    assert twin.get_params()["nuisances"] == params["nuisances"]
    assert not hasattr(twin, "model_")
    assert twin.set_params(temperature=0.2) is twin and twin.temperature == 0.2


def test_without_nuisances_and_with_a_yield_nuisance():
    X, y = make_inferno_toy(1000, 1000, seed=4)
    for nuisances in ((), (Nuisance("b", "yield", B, constraint=100.0),)):
        clf = InfernoClassifier(n_bins=3, hidden_units=(8,), epochs=2, batch_size=500,
                                nuisances=nuisances, seed=1)  # fmt: skip
        assert clf.fit(X, y) is clf
        assert np.isfinite(clf.history_["loss"]).all()
        assert clf.expected_variance(X, y) > S  # never better than the Poisson limit, s


def test_bad_input():
    X, y = make_inferno_toy(200, 200, seed=5)
    est = InfernoClassifier(n_bins=3, hidden_units=(4,), epochs=1, batch_size=400,
                            nuisances=inferno_toy_nuisances())  # fmt: skip
    bad = X.copy()
    bad[5, 2] = np.inf
    with pytest.raises(TrainingInputError, match=r"feature 'x2' has 1 infinite value"):
        est.fit(bad, y)
    with pytest.raises(TrainingInputError, match="X and y have different lengths"):
        est.fit(X, y[:-2])
    with pytest.raises(TrainingInputError, match="single class"):
        est.fit(X, np.zeros(len(X)))
    with pytest.raises(UnknownParameterError, match=r"nuisance 'lam' acts on feature 2.*2 columns"):
        est.fit(X[:, :2], y)
    with pytest.raises(UnknownParameterError, match="unknown INFERNO toy nuisance 'sigma'"):
        inferno_toy_nuisances(["r", "sigma"])
    with pytest.raises(TrainingInputError, match="used twice"):
        clone(est).set_params(nuisances=inferno_toy_nuisances() * 2).fit(X, y)
    with pytest.raises(TrainingInputError, match="sample_weight must be >= 0"):
        est.fit(X, y, np.where(y == 1, -1.0, 1.0))
    with pytest.raises(TrainingInputError, match="temperature must be"):
        clone(est).set_params(temperature=0.0).fit(X, y)
    with pytest.raises(TrainingInputError, match="X_signal contains NaN"):
        expected_sigma(lambda x: x[:, 0], np.full((3, 3), np.nan), X, signal_yield=S,
                       background_yield=B)  # fmt: skip
    est.fit(X, y)
    with pytest.raises(FeatureMismatchError):
        est.predict(np.zeros((2, 4)))
    assert math.isfinite(est.expected_variance(X, y))


def test_batches_always_hold_both_classes():
    """A short last batch used to hold no signal now and then, and training died in
    TensorFlow's MatrixInverse (here: 2002 events in batches of 500 failed for 2 seeds of
    6); full batches only, and a size too small for the signal fraction is refused."""
    X, y = make_inferno_toy(1001, 1001, seed=1)
    for seed in range(6):
        clf = InfernoClassifier(n_bins=3, hidden_units=(4,), epochs=4, batch_size=500,
                                seed=seed).fit(X, y)  # fmt: skip
        assert len(clf.history_["loss"]) == 4 and np.isfinite(clf.history_["loss"]).all()
    clf.set_params(validation_fraction=0.1).fit(X, y)  # the validation loss: one batch
    assert np.isfinite(clf.history_["val_loss"]).all()
    rare = np.r_[np.flatnonzero(y == 1)[:5], np.flatnonzero(y == 0)]
    small = InfernoClassifier(n_bins=3, hidden_units=(4,), epochs=1, batch_size=100)
    with pytest.raises(TrainingInputError, match=r"batch_size=100 is too small .* 5 weighted "
                       r"signal events among 1006.*use batch_size >= 1006"):  # fmt: skip
        small.fit(X[rare], y[rare])
    assert not hasattr(small, "model_")
    assert batch_size_for(y, np.ones(len(y)), steps=16) < 500
    with pytest.raises(
        TrainingInputError, match=r"validation events \(1, validation_fraction=0.001\)"
    ):
        clone(small).set_params(batch_size=2000, validation_fraction=0.001).fit(X[:1000], y[:1000])


# ------------------------------------------------------------------ variation tables


def test_variation_tables_equal_the_input_shift_they_encode(evaluation):
    xs, xb = evaluation
    r = inferno_toy_nuisances(["r"])[0]  # step 0.2
    up, down = r.transform(xb, 0.2), r.transform(xb, -0.2)
    by_shift = expected_sigma(
        _bayes_classifier, xs, xb, signal_yield=S, background_yield=B, nuisances=(r,)
    )
    by_table = expected_sigma(
        _bayes_classifier, xs, xb, signal_yield=S, background_yield=B,
        background_variations={"r_table": (up, down)}, variation_constraint=None,
    )  # fmt: skip
    assert by_table.names == ("s", "r_table")
    assert by_table.sigma == pytest.approx(by_shift.sigma, rel=1e-9)
    constrained = expected_sigma(
        _bayes_classifier, xs, xb, signal_yield=S, background_yield=B,
        background_variations={"r_table": (up, down)}, variation_constraint=1.0,
    )  # fmt: skip
    assert constrained.sigma < by_table.sigma  # the constraint adds information


def test_inferno_with_variation_tables_differentiates_along_the_tables():
    X, y = make_inferno_toy(3000, 3000, seed=6)
    delta = np.where(y[:, None] == 0, 0.2, 0.0) * np.eye(3)[0]  # background x0 +- 0.2
    variations = {"r_table": (X + delta, X - delta)}
    clf = InfernoClassifier(n_bins=4, hidden_units=(16,), epochs=2, batch_size=2000, seed=3)
    clf.fit(X, y, variations=variations)
    assert clf.variation_names_ == ["r_table"]
    x_all = np.hstack([X, delta]).astype(np.float32)
    _, fisher = clf.model_.inferno_loss(x_all, y.astype(np.float32), None)

    def template(x):
        return clf.predict_proba(x).mean(axis=0)

    xb, h = X[y == 0], 1e-2
    t_s, t_b = template(X[y == 1]), template(xb)
    shift = np.eye(3)[0] * h
    row = B * 0.2 * (template(xb + shift) - template(xb - shift)) / (2 * h)
    expected = binned_fisher_information(S * t_s + B * t_b, [t_s, row], [None, 1.0])
    np.testing.assert_allclose(np.asarray(fisher), expected, rtol=0.03, atol=1e-3)
    assert math.isfinite(clf.expected_variance(X, y, variations=variations))
    with pytest.raises(UnknownVariationError, match=r"differ from those the model was trained"):
        clf.expected_variance(X, y)
    with pytest.raises(TrainingInputError, match=r"variation 'r_table' up has shape \(10, 3\)"):
        clf.fit(X, y, variations={"r_table": (X[:10], X[:10])})
