"""Adversarial pivot training: the paper's toy (small), adversary variants, contract, bad input."""

from __future__ import annotations

import math
import os
import pickle

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import ks_2samp
from sklearn.base import clone

from analysis_lib.datasets.toys import make_pivot_toy
from analysis_lib.training.errors import (
    FeatureMismatchError,
    TrainingInputError,
    UnknownParameterError,
)
from analysis_lib.training.pivot import PivotClassifier, refit_adversary_nll

try:  # only possible before TensorFlow's runtime starts (another test may have started it)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:
    pass

PRIOR_ENTROPY = 0.5 * math.log(2.0 * math.pi * math.e)  # entropy of Z ~ N(0, 1): 1.4189
SMALL = {
    "hidden_units": (32, 32),
    "adversary_hidden_units": (16, 16),
    "batch_size": 256,
    "seed": 0,
}


@pytest.fixture(scope="module")
def toy():
    return {
        "train": make_pivot_toy(8000, seed=1),
        "adv": make_pivot_toy(8000, seed=2),
        "test": make_pivot_toy(8000, seed=3),
        "minus": make_pivot_toy(10000, z=-1.0, seed=4),
        "plus": make_pivot_toy(10000, z=1.0, seed=5),
    }


def _ks(clf, toy):
    return ks_2samp(
        clf.predict_proba(toy["minus"][0])[:, 1], clf.predict_proba(toy["plus"][0])[:, 1]
    ).statistic


def test_pivot_toy_small_lambda_50_removes_the_dependence_on_z(toy):
    X, y, z = toy["train"]
    settings = dict(
        SMALL,
        adversary_steps=3,
        pretrain_epochs=3,
        adversary_pretrain_epochs=3,
        epochs=10,
        learning_rate=3e-4,
    )
    plain = PivotClassifier(lam=0.0, **settings).fit(X, y, z=z)
    pivot = PivotClassifier(lam=50.0, **settings).fit(X, y, z=z)
    ks_plain, ks_pivot = _ks(plain, toy), _ks(pivot, toy)
    # the plain classifier uses x1, which Z shifts; the pivot does not (>= 8x is the target of
    # benchmarks/paper_pivot.py with more data and epochs; seen here: 0.257 and 0.059)
    assert ks_plain > 0.2
    assert ks_pivot < ks_plain / 3, (ks_plain, ks_pivot)
    Xa, _, za = toy["adv"]
    Xt, yt, zt = toy["test"]
    nll_plain = refit_adversary_nll(plain, Xa, za, Xt, zt, epochs=10, seed=0)
    nll_pivot = refit_adversary_nll(pivot, Xa, za, Xt, zt, epochs=10, seed=0)
    # f(X) of a plain classifier tells about Z (seen: -0.042); the pivot's nothing (-0.005)
    assert nll_plain < PRIOR_ENTROPY - 0.025, nll_plain
    assert abs(nll_pivot - PRIOR_ENTROPY) < 0.02, nll_pivot
    # the pivot still classifies (the x0-only Bayes classifier has accuracy Phi(0.5) = 0.69)
    assert np.mean(pivot.predict(Xt) == yt) > 0.65
    assert pivot.history_["adversary_loss"] and pivot.history_["pretrain_classifier_loss"]


def test_adversary_on_one_class_only(toy):
    """Z moves only Y=1 events: an adversary on Y=0 events learns nothing, on Y=1 it does."""
    X, y, z = toy["train"]
    Xt, yt, zt = toy["test"]
    common = dict(SMALL, lam=0.0, pretrain_epochs=3, adversary_pretrain_epochs=4, epochs=0)
    on0 = PivotClassifier(adversary_class=0, **common).fit(X, y, z=z)
    on1 = PivotClassifier(adversary_class=1, **common).fit(X, y, z=z)
    nll0 = on0.adversary_nll(Xt[yt == 0], zt[yt == 0])
    nll1 = on1.adversary_nll(Xt[yt == 1], zt[yt == 1])
    assert abs(nll0 - PRIOR_ENTROPY) < 0.03, nll0
    assert nll1 < PRIOR_ENTROPY - 0.05, nll1


def test_categorical_adversary(toy):
    parts = [make_pivot_toy(2000, z=v, seed=10 + i) for i, v in enumerate((-1.0, 0.0, 1.0))]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    z = np.concatenate([p[2] for p in parts])
    clf = PivotClassifier(
        adversary="categorical", lam=0.0, pretrain_epochs=3, adversary_pretrain_epochs=4,
        epochs=1, **SMALL,
    ).fit(X, y, z=z)  # fmt: skip
    assert clf.z_classes_.tolist() == [-1.0, 0.0, 1.0]
    # a plain classifier's output reveals the shift class: NLL below log(3) on signal
    assert clf.adversary_nll(X[y == 1], z[y == 1]) < math.log(3.0) - 0.02
    with pytest.raises(UnknownParameterError, match=r"z value 2\.0"):
        clf.adversary_nll(X[:5], np.full(5, 2.0))


def test_estimator_contract_and_pickle(toy):
    X, y, z = toy["train"]
    est = PivotClassifier(lam=5.0, pretrain_epochs=1, adversary_pretrain_epochs=1, epochs=1,
                          **SMALL)  # fmt: skip
    params = est.get_params()
    assert params["lam"] == 5.0 and params["adversary"] == "gaussian_mixture"
    twin = clone(est)
    assert twin.get_params() == params and not hasattr(twin, "model_")
    assert est.set_params(lam=7.0) is est and est.lam == 7.0
    assert est.fit(X[:2000], y[:2000], z=z[:2000]) is est
    proba = est.predict_proba(X[:100])
    assert proba.shape == (100, 2) and np.allclose(proba.sum(axis=1), 1.0)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(restored.predict_proba(X[:100]), proba, rtol=1e-6, atol=1e-7)
    assert restored.adversary_nll(X[:500], z[:500]) == pytest.approx(
        est.adversary_nll(X[:500], z[:500]), rel=1e-5
    )


def test_bad_input(toy):
    X, y, z = (a[:400] for a in toy["train"])
    est = PivotClassifier(pretrain_epochs=0, adversary_pretrain_epochs=0, epochs=1, **SMALL)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(TrainingInputError, match=r"feature 'x1' has 1 NaN value \(first at row 3"):
        est.fit(bad, y, z=z)
    z_bad = z.copy()
    z_bad[7] = np.inf
    with pytest.raises(TrainingInputError, match=r"z has 1 NaN or infinite value.*row 7"):
        est.fit(X, y, z=z_bad)
    with pytest.raises(TrainingInputError, match="z is required"):
        est.fit(X, y)
    with pytest.raises(TrainingInputError, match=r"X and z have different lengths: 400 .* 399"):
        est.fit(X, y, z=z[:-1])
    with pytest.raises(TrainingInputError, match="X and y have different lengths"):
        est.fit(X, y[:-1], z=z)
    with pytest.raises(TrainingInputError, match="single class"):
        est.fit(X, np.ones(len(X)), z=z)
    with pytest.raises(TrainingInputError, match=r"sample_weight must be >= 0.*row 0"):
        est.fit(X, y, -np.ones(len(X)), z=z)
    with pytest.raises(TrainingInputError, match="adversary must be one of"):
        clone(est).set_params(adversary="wasserstein").fit(X, y, z=z)
    with pytest.raises(TrainingInputError, match="too many for adversary='categorical'"):
        clone(est).set_params(adversary="categorical").fit(X, y, z=z)
    with pytest.raises(TrainingInputError, match="z is constant"):
        est.fit(X, y, z=np.zeros(len(X)))
    est.fit(X, y, z=z)
    with pytest.raises(FeatureMismatchError):
        est.predict_proba(np.zeros((3, 3)))
    # a failed refit leaves the fitted model as it was (it replaced z's standardisation)
    before = est.adversary_nll(X, z)
    with pytest.raises(TrainingInputError, match="z is constant"):
        est.fit(X, y, z=np.ones(len(X)))
    assert est.adversary_nll(X, z) == before
    categorical = clone(est).set_params(adversary="categorical")
    categorical.fit(X, y, z=np.where(z > 0, 1.0, -1.0))
    with pytest.raises(TrainingInputError, match="single value"):
        categorical.fit(X, y, z=np.ones(len(X)))
    assert categorical.z_classes_.tolist() == [-1.0, 1.0]
