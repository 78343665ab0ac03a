"""Bad input to the training estimators: a clear error that names the problem, and no
fitted state or file left half-way."""

from __future__ import annotations

import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis_lib.training import (
    FeatureMismatchError,
    KerasClassifier,
    TrainingInputError,
    XGBoostClassifier,
    save_model,
)

CLASSIFIERS = {
    "xgboost": lambda: XGBoostClassifier(n_estimators=3),
    "keras": lambda: KerasClassifier(hidden_units=(4,), epochs=1),
}


def good(n: int = 100) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(n, 2)), columns=["pt", "eta"])
    return X, (X["pt"] > 0).astype(int).to_numpy()


@pytest.mark.parametrize("kind", CLASSIFIERS)
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.nan, r"feature 'eta' has 1 NaN value \(first at row 7\)"),
        (np.inf, r"feature 'eta' has 1 infinite value \(first at row 7\)"),
        (-np.inf, r"feature 'eta' has 1 infinite value"),
    ],
)
def test_non_finite_features(kind: str, bad: float, message: str) -> None:
    X, y = good()
    X.loc[7, "eta"] = bad
    clf = CLASSIFIERS[kind]()
    with pytest.raises(TrainingInputError, match=message):
        clf.fit(X, y)
    assert not hasattr(clf, "n_features_in_") and not hasattr(clf, "model_")


def test_xgboost_may_take_nan_as_missing_but_never_inf() -> None:
    X, y = good()
    X.loc[7, "eta"] = np.nan
    clf = XGBoostClassifier(n_estimators=3, allow_nan=True).fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()
    X.loc[8, "eta"] = np.inf
    with pytest.raises(TrainingInputError, match="feature 'eta' has 1 infinite value"):
        clf.predict_proba(X)


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_mismatched_lengths(kind: str) -> None:
    X, y = good()
    with pytest.raises(TrainingInputError, match="100 events in X, 99 labels"):
        CLASSIFIERS[kind]().fit(X, y[:-1])
    with pytest.raises(TrainingInputError, match="100 events, 50 weights"):
        CLASSIFIERS[kind]().fit(X, y, np.ones(50))
    with pytest.raises(TrainingInputError, match=r"sample_weight has a non-finite value nan"):
        CLASSIFIERS[kind]().fit(X, y, np.r_[np.nan, np.ones(99)])


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_labels(kind: str) -> None:
    X, _ = good()
    with pytest.raises(TrainingInputError, match=r"single class \(0\)"):
        CLASSIFIERS[kind]().fit(X, np.zeros(100))
    with pytest.raises(TrainingInputError, match=r"only 0 and 1, got \[2\.0\]"):
        CLASSIFIERS[kind]().fit(X, np.r_[np.zeros(50), np.full(50, 2)])


def test_shapes_and_types() -> None:
    _, y = good()
    with pytest.raises(TrainingInputError, match=r"must be 2D.*X.reshape\(-1, 1\)"):
        XGBoostClassifier().fit(np.zeros(100), y)
    with pytest.raises(TrainingInputError, match=r"non-numeric feature column.*'sample'"):
        XGBoostClassifier().fit(pd.DataFrame({"pt": np.ones(100), "sample": "tt"}), y)
    with pytest.raises(TrainingInputError, match="negative_weights must be one of"):
        XGBoostClassifier(negative_weights="flip").fit(*good())
    with pytest.raises(TrainingInputError, match=r"validation_fraction must be in \[0, 1\)"):
        KerasClassifier(validation_fraction=1.5).fit(*good())
    with pytest.raises(TrainingInputError, match="too few for a validation split"):
        XGBoostClassifier(validation_fraction=0.5).fit(*good(3))


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_wrong_feature_set(kind: str) -> None:
    X, y = good()
    clf = CLASSIFIERS[kind]().fit(X, y)
    with pytest.raises(FeatureMismatchError, match=r"missing 'eta'; unexpected 'phi'"):
        clf.predict_proba(X.rename(columns={"eta": "phi"}))
    with pytest.raises(FeatureMismatchError, match=r"X has 3 features but .* trained on 2"):
        clf.predict_proba(np.zeros((5, 3)))
    with pytest.raises(FeatureMismatchError, match="unexpected 'mass'"):
        clf.predict_proba(X.assign(mass=1.0))
    unnamed = CLASSIFIERS[kind]().fit(X.to_numpy(), y)
    with pytest.raises(FeatureMismatchError, match=r"X has 1 features .* \(x0, x1\)"):
        unnamed.predict(X[["pt"]])


def test_unfitted_model_is_not_saved(tmp_path: Path) -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        save_model(XGBoostClassifier(), tmp_path / "m.zip")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(NotFittedError):
        XGBoostClassifier().predict_proba(np.zeros((2, 2)))
