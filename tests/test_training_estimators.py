"""XGBoost and Keras binary classifiers: the scikit-learn contract, weights, early stopping,
reproducibility, pickling, devices."""

from __future__ import annotations

import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import pickle

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from analysis_lib.training import (
    KerasClassifier,
    TrainingInputError,
    XGBoostClassifier,
    resolve_tensorflow_device,
    resolve_xgboost_device,
    training_weights,
    validation_split,
)
from analysis_lib.training.device import nvml_gpu_count, tensorflow_gpus

FAST = {
    "xgboost": lambda **kw: XGBoostClassifier(n_estimators=30, **kw),
    "keras": lambda **kw: KerasClassifier(
        hidden_units=(8,), epochs=4, batch_size=128, learning_rate=0.01, **kw
    ),
}


def data(n: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.7 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame(X, columns=["a", "b", "c"]), y


@pytest.fixture(scope="module")
def fitted() -> dict:
    X, y = data()
    return {name: make().fit(X, y) for name, make in FAST.items()}


@pytest.mark.parametrize("kind", FAST)
def test_contract_and_outputs(kind: str, fitted: dict) -> None:
    X, y = data()
    clf = fitted[kind]
    assert list(clf.feature_names_in_) == ["a", "b", "c"] and clf.n_features_in_ == 3
    assert clf.classes_.tolist() == [0, 1]
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y, proba[:, 1]) > 0.8
    assert set(clf.predict(X).tolist()) <= {0, 1}
    # the decision function is the log-odds: monotone in the probability
    d = clf.decision_function(X)
    p = np.clip(proba[:, 1], 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(d, np.log(p / (1 - p)), rtol=1e-6, atol=1e-6)
    # a DataFrame with the columns in another order is reordered, not misread
    np.testing.assert_allclose(clf.predict_proba(X[["c", "a", "b"]]), proba)
    # unnamed arrays of the right width are accepted
    np.testing.assert_allclose(clf.predict_proba(X.to_numpy()), proba)


@pytest.mark.parametrize("kind", FAST)
def test_get_set_params_and_clone(kind: str) -> None:
    clf = FAST[kind](class_balance=True, random_state=3)
    params = clf.get_params()
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    assert not hasattr(twin, "model_")
    twin.set_params(random_state=5)
    assert twin.random_state == 5 and clf.random_state == 3


@pytest.mark.parametrize("kind", FAST)
@pytest.mark.parametrize("module", [pickle, cloudpickle], ids=["pickle", "cloudpickle"])
def test_pickle_roundtrip(kind: str, module, fitted: dict) -> None:
    X, _ = data()
    clf = fitted[kind]
    again = module.loads(module.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert list(again.feature_names_in_) == list(clf.feature_names_in_)


@pytest.mark.parametrize("kind", FAST)
def test_reproducible_for_a_seed(kind: str, fitted: dict) -> None:
    X, y = data()
    again = FAST[kind]().fit(X, y)
    np.testing.assert_allclose(
        again.predict_proba(X), fitted[kind].predict_proba(X), rtol=0, atol=1e-6
    )
    other = FAST[kind](random_state=7).fit(X, y)
    assert np.abs(other.predict_proba(X) - fitted[kind].predict_proba(X)).max() > 1e-4


def test_xgboost_early_stopping_stops_and_keeps_best_round() -> None:
    X, y = data(600)
    clf = XGBoostClassifier(
        n_estimators=500, max_depth=6, learning_rate=0.5, early_stopping_rounds=5
    ).fit(X, y)
    assert clf.best_iteration_ is not None and clf.best_iteration_ < 100
    losses = clf.evals_result_["validation_0"]["logloss"]
    assert len(losses) == clf.best_iteration_ + 6  # stopped 5 rounds after the best
    assert int(np.argmin(losses)) == clf.best_iteration_
    no_stop = XGBoostClassifier(n_estimators=20, validation_fraction=0).fit(X, y)
    assert no_stop.best_iteration_ is None and no_stop.evals_result_ == {}
    assert no_stop.model_.get_booster().num_boosted_rounds() == 20


def test_keras_early_stopping_restores_best_epoch() -> None:
    X, y = data(400)
    clf = KerasClassifier(
        hidden_units=(64, 64),
        epochs=60,
        learning_rate=0.05,
        batch_size=32,
        early_stopping_patience=2,
    ).fit(X, y)
    assert clf.n_epochs_ < 60
    val = clf.history_["val_loss"]
    assert len(val) == clf.n_epochs_
    assert int(np.argmin(val)) == clf.n_epochs_ - 3  # patience 2 after the best


def test_validation_split_is_stratified_and_seeded() -> None:
    y = np.r_[np.ones(100), np.zeros(300)]
    train, val = validation_split(y, 0.2, seed=1)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 400
    assert int(y[val].sum()) == 20 and int((y[val] == 0).sum()) == 60
    assert np.array_equal(val, validation_split(y, 0.2, seed=1)[1])
    assert not np.array_equal(val, validation_split(y, 0.2, seed=2)[1])


def test_negative_weight_policies() -> None:
    y = np.array([1.0, 1.0, 0.0, 0.0])
    w = np.array([2.0, -1.0, 1.0, 1.0])
    assert training_weights(y, w, negative_weights="keep").tolist() == [2.0, -1.0, 1.0, 1.0]
    assert training_weights(y, w, negative_weights="abs").tolist() == [2.0, 1.0, 1.0, 1.0]
    assert training_weights(y, w, negative_weights="zero").tolist() == [2.0, 0.0, 1.0, 1.0]
    with pytest.raises(TrainingInputError, match=r"1 negative weight.*row 1"):
        training_weights(y, w, negative_weights="error")
    with pytest.raises(TrainingInputError, match="negative_weights must be one of"):
        training_weights(y, w, negative_weights="flip")
    with pytest.raises(TrainingInputError, match="class 1 has total weight"):
        training_weights(y, np.array([1.0, -2.0, 1.0, 1.0]), negative_weights="keep")


def test_negative_weights_in_training() -> None:
    X, y = data(600)
    w = np.ones(len(y))
    w[::7] = -0.3
    # XGBoost refuses negative weights: "keep" says so, "abs"/"zero" train
    with pytest.raises(TrainingInputError, match="XGBoost refuses negative event weights"):
        XGBoostClassifier(n_estimators=5, negative_weights="keep").fit(X, y, w)
    a = XGBoostClassifier(n_estimators=5, negative_weights="abs").fit(X, y, w)
    z = XGBoostClassifier(n_estimators=5, negative_weights="zero").fit(X, y, w)
    assert np.abs(a.predict_proba(X) - z.predict_proba(X)).max() > 1e-4
    # Keras keeps them as they are (the weighted cross-entropy takes them)
    k = KerasClassifier(hidden_units=(4,), epochs=2).fit(X, y, w)
    assert np.isfinite(k.predict_proba(X)).all()
    with pytest.raises(TrainingInputError, match="negative_weights='error'"):
        KerasClassifier(negative_weights="error").fit(X, y, w)


def test_class_balance_moves_the_output_to_equal_priors() -> None:
    rng = np.random.default_rng(0)
    n_sig, n_bkg = 300, 2700
    X = np.r_[rng.normal(1.0, 1.0, n_sig), rng.normal(-1.0, 1.0, n_bkg)].reshape(-1, 1)
    y = np.r_[np.ones(n_sig), np.zeros(n_bkg)]
    plain = XGBoostClassifier(n_estimators=50, max_depth=2).fit(X, y)
    balanced = XGBoostClassifier(n_estimators=50, max_depth=2, class_balance=True).fit(X, y)
    # at x = 0 the likelihood ratio is 1: posterior = prior (0.1), or 0.5 when balanced
    at0 = np.array([[0.0]])
    assert abs(plain.predict_proba(at0)[0, 1] - 0.1) < 0.06
    assert abs(balanced.predict_proba(at0)[0, 1] - 0.5) < 0.15


def test_devices_resolve_to_cpu_here() -> None:
    if nvml_gpu_count() or tensorflow_gpus():
        pytest.skip("this machine has a GPU")
    assert resolve_xgboost_device("auto") == "cpu"
    assert resolve_tensorflow_device("auto") == "/CPU:0"
    with pytest.raises(TrainingInputError, match="no usable GPU"):
        resolve_xgboost_device("cuda")
    with pytest.raises(TrainingInputError, match="TensorFlow sees 0 GPU"):
        resolve_tensorflow_device("gpu")
    X, y = data(200)
    assert XGBoostClassifier(n_estimators=2).fit(X, y).device_ == "cpu"
    with pytest.raises(TrainingInputError, match="no usable GPU"):
        XGBoostClassifier(n_estimators=2, device="cuda").fit(X, y)


@pytest.mark.gpu
def test_gpu_training_matches_cpu() -> None:
    X, y = data(2000)
    gpu = XGBoostClassifier(n_estimators=20, device="auto").fit(X, y)
    assert gpu.device_.startswith("cuda")
    cpu = XGBoostClassifier(n_estimators=20, device="cpu").fit(X, y)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-3)
    if tensorflow_gpus():
        k = KerasClassifier(hidden_units=(8,), epochs=2, device="auto").fit(X, y)
        assert k.device_ == "/GPU:0"


def _tiny_model(n_features: int):
    import keras

    inputs = keras.Input(shape=(n_features,))
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="only")(inputs))


def test_keras_custom_model_fn_is_used_and_pickles() -> None:
    X, y = data(300)
    clf = KerasClassifier(model_fn=_tiny_model, epochs=2, validation_fraction=0).fit(X, y)
    assert [layer.name for layer in clf.model_.layers][-1] == "only"
    assert clf.model_.count_params() == 4  # 3 weights + bias: the custom net, not the default
    again = cloudpickle.loads(cloudpickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert clone(clf).get_params()["model_fn"] is _tiny_model
