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
    # 50 x 2 weights were flattened into 100 and taken
    with pytest.raises(TrainingInputError, match=r"one weight per event, got shape \(50, 2\)"):
        CLASSIFIERS[kind]().fit(X, y, np.ones((50, 2)))
    with pytest.raises(TrainingInputError, match="sample_weight must be numbers"):
        CLASSIFIERS[kind]().fit(X, y, ["heavy"] * 100)


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


# -- every estimator: unfitted use and an empty selection ---------------------------------


def _tables() -> dict[str, pd.DataFrame]:
    X, y = good(200)
    table = X.assign(weight=1.0, label=y)
    return {"nominal": table, "jes_up": table.assign(pt=table["pt"] + 0.1)}


def _fit_xgboost(est):
    return est.fit(*good())


def _fit_tables(est):
    return est.fit(_tables())


def _fit_parameterised(est):
    X, y = good(200)
    return est.fit(X.assign(theta=np.where(y == 1, 1.0, 0.0) + np.arange(200) % 2), y)


def _fit_pivot(est):
    X, y = good(200)
    return est.fit(X, y, z=np.random.default_rng(1).normal(size=200))


def _fit_inferno(est):
    from analysis_lib.datasets.toys import make_inferno_toy

    return est.fit(*make_inferno_toy(300, 300, seed=1))


def _estimators() -> dict:
    from analysis_lib.training import (
        InfernoClassifier,
        NuisanceParameterisedClassifier,
        ParameterisedClassifier,
        PivotClassifier,
        VariationAugmentedClassifier,
    )

    keras_small = {"hidden_units": (4,), "epochs": 1}
    xgb = XGBoostClassifier(n_estimators=2)
    return {
        "xgboost": (XGBoostClassifier(n_estimators=2), _fit_xgboost, 2, 2),
        "keras": (KerasClassifier(**keras_small), _fit_xgboost, 2, 2),
        "parameterised": (ParameterisedClassifier(xgb), _fit_parameterised, 3, 2),
        "augmented": (VariationAugmentedClassifier(xgb), _fit_tables, 2, 2),
        "nuisance": (
            NuisanceParameterisedClassifier(
                KerasClassifier(**keras_small), variations={"nominal": 0.0, "jes_up": 1.0}
            ),
            _fit_tables,
            2,
            2,
        ),
        "pivot": (
            PivotClassifier(
                hidden_units=(4,),
                adversary_hidden_units=(4,),
                pretrain_epochs=0,
                adversary_pretrain_epochs=0,
                epochs=1,
                batch_size=64,
            ),
            _fit_pivot,
            2,
            2,
        ),
        "inferno": (
            InfernoClassifier(n_bins=3, hidden_units=(4,), epochs=1, batch_size=600),
            _fit_inferno,
            3,
            3,
        ),
    }


ESTIMATORS = ("xgboost", "keras", "parameterised", "augmented", "nuisance", "pivot", "inferno")


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_unfitted_estimators_raise_not_fitted_and_empty_input_gives_empty_output(
    kind: str,
) -> None:
    """scikit-learn's NotFittedError before fit; after it, a selection with no events (a
    small region, an empty chunk) scores to no rows of the usual width, not a crash."""
    from sklearn.exceptions import NotFittedError

    est, fit, n_features, width = _estimators()[kind]
    empty = np.zeros((0, n_features))
    for method in ("predict_proba", "predict", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(est, method)(empty)
    fit(est)
    names = getattr(est, "feature_names_in_", None)
    X = empty if names is None else pd.DataFrame(empty, columns=list(names))
    proba = est.predict_proba(X)
    assert proba.shape == (0, width) and proba.dtype == np.float64
    assert est.predict(X).shape == (0,)
    assert len(est.decision_function(X)) == 0
