"""Systematics-aware training: augmentation across variation tables with mixing, and the
nuisance-parameterised classifier (nominal, any value, profiled, envelope)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from analysis_lib.training import (
    FeatureMismatchError,
    NuisanceParameterisedClassifier,
    TrainingInputError,
    UnknownParameterError,
    UnknownVariationError,
    VariationAugmentedClassifier,
    XGBoostClassifier,
    label_tables,
)

SHIFTS = {"nominal": 0.0, "jes_up": 1.0, "jes_down": -1.0}


def sample(signal: bool, shift: float, n: int, seed: int) -> pd.DataFrame:
    """Columnar-style table: features plus a weight column. Feature ``b`` moves with the
    jet energy scale for signal only; ``a`` does not move."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.6 if signal else -0.6, 1.0, n)
    b = rng.normal((1.5 + 1.2 * shift) if signal else 0.0, 1.0, n)
    return pd.DataFrame({"a": a, "b": b, "weight": np.full(n, 0.5 if signal else 2.0)})


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    sig = {v: sample(True, s, 1500, seed=i) for i, (v, s) in enumerate(SHIFTS.items())}
    bkg = {v: sample(False, s, 1500, seed=10 + i) for i, (v, s) in enumerate(SHIFTS.items())}
    return label_tables(sig, bkg)


def test_label_tables_stacks_signal_and_background(tables) -> None:
    assert list(tables) == ["nominal", "jes_up", "jes_down"]
    t = tables["jes_up"]
    assert t.columns.tolist() == ["a", "b", "weight", "label"]
    assert t["label"].tolist() == [1] * 1500 + [0] * 1500
    with pytest.raises(UnknownVariationError, match=r"missing \['jes_up'\]"):
        label_tables({"nominal": t, "jes_up": t}, {"nominal": t})
    # several background samples, pyarrow tables
    arrow = {"nominal": pa.Table.from_pandas(sample(False, 0.0, 10, 0))}
    out = label_tables({"nominal": sample(True, 0, 5, 1)}, [arrow, arrow])
    assert out["nominal"]["label"].tolist() == [1] * 5 + [0] * 20


def test_mixing_only_nominal_is_plain_training_on_nominal(tables) -> None:
    base = XGBoostClassifier(n_estimators=30)
    aug = VariationAugmentedClassifier(base, mixing={"nominal": 1.0}).fit(tables)
    nominal = tables["nominal"]
    plain = clone(base).fit(nominal[["a", "b"]], nominal["label"], nominal["weight"])
    np.testing.assert_allclose(aug.predict_proba(nominal), plain.predict_proba(nominal[["a", "b"]]))
    assert aug.variations_ == ["nominal"] and aug.n_training_events_ == {"nominal": 3000}
    assert list(aug.feature_names_in_) == ["a", "b"]


def test_augmentation_learns_the_varied_events() -> None:
    """With a large jes effect (signal b at 1.5 +- 3), a model trained on nominal only calls
    the jes_down signal background; trained across the variations it does not."""

    def varied(seed: int) -> dict[str, pd.DataFrame]:
        items = list(enumerate(SHIFTS.items()))
        sig = {v: sample(True, 2.5 * s, 1000, seed=seed + i) for i, (v, s) in items}
        bkg = {v: sample(False, s, 1000, seed=seed + 5 + i) for i, (v, s) in items}
        return label_tables(sig, bkg)

    train, test = varied(100), varied(200)
    base = XGBoostClassifier(n_estimators=40, max_depth=3)
    nominal_only = VariationAugmentedClassifier(base, mixing={"nominal": 1}).fit(train)
    augmented = VariationAugmentedClassifier(base).fit(train)
    assert augmented.mixing_ == pytest.approx({k: 1 / 3 for k in SHIFTS})
    down = test["jes_down"]
    auc_nominal = roc_auc_score(down["label"], nominal_only.predict_proba(down)[:, 1])
    auc_augmented = roc_auc_score(down["label"], augmented.predict_proba(down)[:, 1])
    assert auc_augmented > auc_nominal + 0.05, (auc_augmented, auc_nominal)
    # mixing only jes_down is the same as training on jes_down alone
    only_down = VariationAugmentedClassifier(base, mixing={"jes_down": 1}).fit(train)
    t = train["jes_down"]
    plain = clone(base).fit(t[["a", "b"]], t["label"], t["weight"])
    np.testing.assert_allclose(only_down.predict_proba(down), plain.predict_proba(down[["a", "b"]]))


def test_sample_mixing_draws_events_in_proportion(tables) -> None:
    mix = {"nominal": 0.5, "jes_up": 0.25, "jes_down": 0.25}
    clf = VariationAugmentedClassifier(
        XGBoostClassifier(n_estimators=5), mixing=mix, mixing_mode="sample", random_state=1
    ).fit(tables)
    assert clf.n_training_events_ == {"nominal": 1500, "jes_up": 750, "jes_down": 750}
    again = clone(clf).fit(tables)
    np.testing.assert_array_equal(
        again.predict_proba(tables["nominal"]), clf.predict_proba(tables["nominal"])
    )
    other = clone(clf).set_params(random_state=2).fit(tables)
    nominal = tables["nominal"]
    assert np.abs(other.predict_proba(nominal) - clf.predict_proba(nominal)).max() > 0


def test_augmentation_input_errors(tables) -> None:
    clf = VariationAugmentedClassifier(XGBoostClassifier(n_estimators=2))
    with pytest.raises(UnknownVariationError, match="unknown variation 'jer_up' in mixing"):
        clf.set_params(mixing={"jer_up": 1.0}).fit(tables)
    with pytest.raises(TrainingInputError, match="mixing share of 'jes_up' must be >= 0"):
        clf.set_params(mixing={"jes_up": -1}).fit(tables)
    with pytest.raises(TrainingInputError, match="mixing_mode must be one of"):
        clf.set_params(mixing=None, mixing_mode="shuffle").fit(tables)
    with pytest.raises(TrainingInputError, match="X must be a mapping"):
        clf.set_params(mixing_mode="weight").fit(tables["nominal"])
    broken = {**tables, "jes_up": tables["jes_up"].drop(columns="b")}
    with pytest.raises(TrainingInputError, match="table 'jes_up' lacks feature column"):
        clf.fit(broken)
    nan = {**tables, "jes_down": tables["jes_down"].assign(a=np.nan)}
    with pytest.raises(TrainingInputError, match="table 'jes_down': feature 'a' has 3000 NaN"):
        clf.fit(nan)
    # a misnamed weight column is refused, not trained on as a feature with unit weights
    misnamed = clone(clf).set_params(weight_column="evt_weight")
    with pytest.raises(TrainingInputError, match="table 'nominal' has no weight column 'evt_w"):
        misnamed.fit(tables)
    with pytest.raises(TrainingInputError, match="no weight column 'evt_weight'"):
        NuisanceParameterisedClassifier(
            XGBoostClassifier(n_estimators=2), weight_column="evt_weight"
        ).fit(tables)
    unweighted = clone(clf).set_params(weight_column=None).fit(tables)
    assert unweighted.feature_names_in_.tolist() == ["a", "b", "weight"]  # asked for
    fitted = clf.fit(tables)
    assert fitted.feature_names_in_.tolist() == ["a", "b"]
    with pytest.raises(FeatureMismatchError, match="lacks 'b'"):
        fitted.predict_proba(tables["nominal"].drop(columns="b"))


def test_tables_from_arrow_and_parquet(tables, tmp_path: Path) -> None:
    paths = {}
    for name, t in tables.items():
        paths[name] = tmp_path / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(t), paths[name])
    arrow = {k: pa.Table.from_pandas(t) for k, t in tables.items()}
    base = XGBoostClassifier(n_estimators=5)
    from_frames = VariationAugmentedClassifier(base).fit(tables)
    for source in (arrow, paths):
        model = VariationAugmentedClassifier(base).fit(source)
        np.testing.assert_array_equal(
            model.predict_proba(tables["nominal"]), from_frames.predict_proba(tables["nominal"])
        )


@pytest.fixture(scope="module")
def npc(tables) -> NuisanceParameterisedClassifier:
    return NuisanceParameterisedClassifier(
        XGBoostClassifier(n_estimators=60, max_depth=3), nuisance="jes"
    ).fit(tables)


def test_nuisance_values_and_evaluation(npc, tables) -> None:
    assert npc.nuisance_values_ == {"jes_down": -1.0, "nominal": 0.0, "jes_up": 1.0}
    assert npc.nuisance_range_ == (-1.0, 1.0) and npc.nominal_nuisance_ == 0.0
    nominal = tables["nominal"]
    at_nominal = npc.predict_proba(nominal)
    np.testing.assert_array_equal(at_nominal, npc.predict_proba(nominal, nuisance=0.0))
    np.testing.assert_array_equal(at_nominal, npc.predict_proba(nominal, nuisance="nominal"))
    inner = npc.estimator_.predict_proba(nominal[["a", "b"]].assign(jes=0.0))
    np.testing.assert_array_equal(at_nominal, inner)
    up = npc.predict_proba(nominal, nuisance="jes_up")
    np.testing.assert_array_equal(up, npc.predict_proba(nominal, nuisance=1.0))
    per_event = npc.predict_proba(nominal, nuisance=np.r_[np.zeros(1500), np.ones(1500)])
    np.testing.assert_array_equal(per_event[:1500], at_nominal[:1500])
    np.testing.assert_array_equal(per_event[1500:], up[1500:])
    # the model knows the signal's b sits higher when jes is up: same event, less signal-like
    b_mid = pd.DataFrame({"a": [0.6], "b": [1.5]})
    assert npc.predict_proba(b_mid, nuisance=1.0)[0, 1] < npc.predict_proba(b_mid)[0, 1]


def test_profiled_nuisance_finds_the_variation(npc, tables) -> None:
    grid = [-1.0, -0.5, 0.0, 0.5, 1.0]
    for name, expected in (("jes_up", 1.0), ("nominal", 0.0), ("jes_down", -1.0)):
        npc.profile(tables[name], grid=grid)
        assert npc.profiled_nuisance_ == pytest.approx(expected, abs=0.5), name
        assert npc.profile_curve_["nuisance"] == grid
    npc.profile(tables["jes_up"], grid=grid)
    np.testing.assert_array_equal(
        npc.predict_proba(tables["nominal"], nuisance="profiled"),
        npc.predict_proba(tables["nominal"], nuisance=npc.profiled_nuisance_),
    )


def test_envelope_brackets_every_nuisance_value(npc, tables) -> None:
    X = tables["nominal"].iloc[::10]
    low, high = npc.score_envelope(X, grid=[-1.0, 0.0, 1.0])
    for nu in (-1.0, 0.0, 1.0):
        p = npc.predict_proba(X, nuisance=nu)[:, 1]
        assert np.all(low <= p) and np.all(p <= high)
    assert np.mean(high - low) > 0.01


def test_nuisance_errors(npc, tables) -> None:
    X = tables["nominal"]
    with pytest.raises(UnknownParameterError, match=r"= 2\.0 is outside the trained range"):
        npc.predict_proba(X, nuisance=2.0)
    with pytest.raises(UnknownParameterError, match="unknown nuisance setting 'jer_up'"):
        npc.predict_proba(X, nuisance="jer_up")
    fresh = clone(npc).fit(tables)
    with pytest.raises(UnknownParameterError, match="needs profile"):
        fresh.predict_proba(X, nuisance="profiled")
    with pytest.raises(UnknownVariationError, match="'jes_up' of nuisance 'jes' not in X"):
        clone(npc).fit({k: v for k, v in tables.items() if k != "jes_up"})
    with pytest.raises(FeatureMismatchError, match="lacks 'a'"):
        npc.predict_proba(X.drop(columns="a"))
    with pytest.raises(TrainingInputError, match="is also a feature column"):
        clone(npc).set_params(nuisance="a", variations=SHIFTS).fit(tables)
    # the error above says "pass extrapolate=True": every method takes it
    outside = npc.predict_proba(X, nuisance=2.0, extrapolate=True)
    assert npc.predict(X, nuisance=2.0, extrapolate=True).tolist() == (
        (outside[:, 1] >= 0.5).astype(int).tolist()
    )
    assert np.isfinite(npc.decision_function(X, nuisance=2.0, extrapolate=True)).all()
    for bad in (float("nan"), 5.0, "abc"):  # nominal must lie within the variations
        with pytest.raises(TrainingInputError, match=f"nominal_value must be a number within "
                           rf"the variations' values \[-1.0, 1.0\], got {bad!r}"):  # fmt: skip
            clone(npc).set_params(nominal_value=bad).fit(tables)
    with pytest.raises(TrainingInputError, match=r"positive total weight, got 0\.0"):
        npc.profile(tables["jes_up"], sample_weight=np.zeros(len(tables["jes_up"])))


def test_wrappers_pickle_and_clone(npc, tables) -> None:
    X = tables["jes_up"]
    again = pickle.loads(pickle.dumps(npc))
    np.testing.assert_array_equal(
        again.predict_proba(X, nuisance=0.5), npc.predict_proba(X, nuisance=0.5)
    )
    params = clone(npc).get_params(deep=False)
    assert params["nuisance"] == "jes" and params["variations"] is None
