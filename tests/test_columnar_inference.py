"""Models applied inside the processor: one score column per variation, equal to a bare predict."""

from __future__ import annotations

import pickle

import awkward as ak
import numpy as np
import pytest
import xgboost
from columnar_samples import write_sample

from analysis_lib.columnar import (
    VARIATIONS,
    FeatureScorer,
    ModelFileError,
    SemileptonicProcessor,
    default_features,
    run_columnar,
)

FEATURES = default_features()


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    """Feature tables of a signal and a background sample, and a tiny XGBoost model."""
    d = tmp_path_factory.mktemp("inference")
    files = {
        "ttbar": write_sample(d / "ttbar.root", 3000, process="ttbar", seed=31),
        "zprime": write_sample(d / "zprime.root", 3000, process="zprime", seed=32),
    }
    result = run_columnar(
        list(files.values()),
        SemileptonicProcessor(variations=[]),
        executor="iterative",
        progress=False,
    )
    tables = [result.to_pandas(s) for s in ("ttbar", "zprime")]
    X = np.concatenate([t[FEATURES].to_numpy(np.float32) for t in tables])
    y = np.concatenate([np.zeros(len(tables[0])), np.ones(len(tables[1]))])
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgboost.DMatrix(X, label=y),
        num_boost_round=15,
    )
    return files, X, y, booster


def matrix(table, features=FEATURES) -> np.ndarray:
    return table.select(features).to_pandas().to_numpy(np.float32)


def test_xgboost_booster_scores_every_variation(training):
    files, _, _, booster = training
    proc = SemileptonicProcessor(model=booster)
    result = run_columnar(files, proc, executor="iterative", progress=False, chunksize=1000)
    for sample in files:
        for variation in VARIATIONS:
            table = result.tables[sample][variation]
            assert table.column_names[-1] == "score"
            bare = booster.predict(xgboost.DMatrix(matrix(table)))
            np.testing.assert_allclose(table["score"].to_numpy(), bare, atol=1e-6, rtol=0)
    # the shape variations move the score, the weight variations do not
    nominal = result.to_pandas("zprime", "nominal")
    assert nominal["score"].equals(result.to_pandas("zprime", "btag_sf_up")["score"])
    jes = result.to_pandas("zprime", "jes_up").set_index("event")["score"]
    common = nominal.set_index("event")["score"].index.intersection(jes.index)
    assert not np.allclose(jes[common], nominal.set_index("event")["score"][common])
    # signal-like events score higher: the model learnt something
    assert nominal["score"].mean() > result.to_pandas("ttbar")["score"].mean()
    assert result.timing["inference_s"] > 0


def test_model_from_file_and_sklearn_api(training, tmp_path):
    files, X, y, booster = training
    path = tmp_path / "bdt.json"
    booster.save_model(path)
    clf = xgboost.XGBClassifier(n_estimators=10, max_depth=2, n_jobs=1).fit(X, y)
    for model, bare in (
        (str(path), lambda X: booster.predict(xgboost.DMatrix(X))),
        (clf, lambda X: clf.predict_proba(X)[:, 1]),
    ):
        scorer = FeatureScorer(model, FEATURES)
        clone = pickle.loads(pickle.dumps(scorer))  # what a Dask worker receives
        result = run_columnar(
            [files["zprime"]],
            SemileptonicProcessor(model=clone, variations=["jer_up"], score_column="bdt"),
            executor="iterative",
            progress=False,
        )
        for variation in ("nominal", "jer_up"):
            table = result.table("zprime", variation)
            np.testing.assert_allclose(table["bdt"].to_numpy(), bare(matrix(table)), atol=1e-6)


def test_bad_model_files_are_named_before_the_run(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(ModelFileError, match=f"^{missing}: no such file$"):
        SemileptonicProcessor(model=str(missing))
    broken = tmp_path / "broken.json"
    broken.write_text('{"learner": ')
    with pytest.raises(ModelFileError, match=f"^{broken}: cannot load it as an XGBoost model"):
        FeatureScorer(broken)
    not_keras = tmp_path / "model.keras"
    not_keras.write_text("weights")
    with pytest.raises(ModelFileError, match="not a Keras model"):
        FeatureScorer(str(not_keras))
    not_h5 = tmp_path / "model.h5"
    not_h5.write_text("weights")
    with pytest.raises(ModelFileError, match=r"not a Keras model \(an .h5 file is HDF5\)"):
        FeatureScorer(str(not_h5))


def test_keras_files_of_both_formats_and_their_width(tmp_path):
    """A .keras and a Keras 2 style .h5 file load; one of the wrong width is refused up
    front (it used to fail in every chunk, after three retries, with a traceback)."""
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((len(FEATURES),)), keras.layers.Dense(1)])
    probe = {name: np.full(3, float(i)) for i, name in enumerate(FEATURES)}
    expected = model.predict(np.tile(np.arange(len(FEATURES), dtype=np.float32), (3, 1)), verbose=0)
    for name in ("m.keras", "m.h5"):
        model.save(tmp_path / name)
        scorer = pickle.loads(pickle.dumps(FeatureScorer(str(tmp_path / name))))
        np.testing.assert_allclose(scorer.score(probe), expected[:, 0], rtol=1e-6)
    narrow = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    narrow.save(tmp_path / "five.keras")
    with pytest.raises(ModelFileError, match=r"five.keras: the model takes 5 features but 28"):
        SemileptonicProcessor(model=str(tmp_path / "five.keras"))
    with pytest.raises(ValueError, match="the model takes 5 features but 28"):
        FeatureScorer(narrow)


def test_a_model_retrained_into_the_same_file_is_a_new_run(training, tmp_path):
    _, X, y, booster = training
    path = tmp_path / "bdt.json"
    booster.save_model(path)
    first = SemileptonicProcessor(model=str(path))
    assert first.fingerprint() == SemileptonicProcessor(model=str(path)).fingerprint()
    shipped = pickle.loads(pickle.dumps(first.scorer))  # as a worker receives it
    retrained = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2},
        xgboost.DMatrix(X, label=y),
        num_boost_round=3,
    )
    retrained.save_model(path)
    # checkpoints are keyed by the fingerprint: the old model's chunks are not resumed
    assert SemileptonicProcessor(model=str(path)).fingerprint() != first.fingerprint()
    assert (
        first.config()["model"]["sha256"]
        != SemileptonicProcessor(model=str(path)).config()["model"]["sha256"]
    )
    # a worker of the run that started with the old file refuses the new one
    with pytest.raises(ModelFileError, match="changed after the run started"):
        shipped.score({name: X[:5, i] for i, name in enumerate(FEATURES)})


def test_missing_values_are_nan_for_xgboost(training):
    _, X, _, booster = training
    scorer = FeatureScorer(booster, FEATURES)
    columns = {name: X[:50, i].copy() for i, name in enumerate(FEATURES)}
    columns["m_jj"][:10] = np.nan
    expected = booster.predict(xgboost.DMatrix(np.column_stack(list(columns.values()))))
    np.testing.assert_allclose(scorer.score(columns), expected, atol=1e-6)


def test_keras_model_in_the_processor(training):
    keras = pytest.importorskip("keras")
    files, X, y, _ = training
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((len(FEATURES),)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    X0 = np.nan_to_num(X, nan=0.0)
    model.fit(X0, y, epochs=1, batch_size=256, verbose=0)
    scorer = FeatureScorer(model, FEATURES, fill_value=0.0)
    result = run_columnar(
        [files["ttbar"]],
        SemileptonicProcessor(model=scorer, variations=["jes_down"]),
        executor="iterative",
        progress=False,
    )
    for variation in ("nominal", "jes_down"):
        table = result.table("ttbar", variation)
        bare = model.predict(np.nan_to_num(matrix(table), nan=0.0), verbose=0)[:, 0]
        np.testing.assert_allclose(table["score"].to_numpy(), bare, atol=1e-6, rtol=1e-5)


def test_jagged_inputs_are_padded_coffea_style():
    """Through coffea's ml_tools wrapper on awkward records, jagged fields padded with NaN."""
    jets = ak.Array([[50.0, 40.0, 30.0], [60.0], []])
    records = ak.zip({"met_pt": [10.0, 20.0, 30.0], "jet_pt": jets}, depth_limit=1)
    small = xgboost.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgboost.DMatrix(np.random.default_rng(0).normal(size=(100, 3)), label=np.arange(100) % 2),
        num_boost_round=3,
    )
    scorer = FeatureScorer(small, ["met_pt", ("jet_pt", 2)])
    assert scorer.feature_names == ["met_pt", "jet_pt_0", "jet_pt_1"]
    padded = np.array([[10, 50, 40], [20, 60, np.nan], [30, np.nan, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(scorer.matrix({"met_pt": records.met_pt, "jet_pt": jets}), padded)
    expected = small.predict(xgboost.DMatrix(padded))
    np.testing.assert_allclose(np.asarray(scorer(records)), expected, atol=1e-6)


def test_model_feature_errors(training):
    _, _, _, booster = training
    with pytest.raises(ValueError, match="not produced"):
        SemileptonicProcessor(model=booster, model_features=["lep_pt", "jet9_pt"])
    # a model of another width is refused where the run starts, not in every chunk
    with pytest.raises(ValueError, match=r"the model takes 28 features but 5 are configured"):
        FeatureScorer(booster, FEATURES[:5])
    for column in ("weight", "lep_pt", "event", ""):
        with pytest.raises(ValueError, match=f"score_column {column!r} (clashes|is empty)"):
            SemileptonicProcessor(model=booster, score_column=column)
    with pytest.raises(KeyError, match="m_jj"):
        FeatureScorer(booster, FEATURES).score({"lep_pt": np.zeros(3)})


def test_early_stopped_models_use_their_best_iteration(training):
    """An early-stopped model scores in the processor as its own predict does."""
    import pandas as pd

    from analysis_lib.training import XGBoostClassifier

    _, X, y, _ = training
    rng = np.random.default_rng(5)
    y_noisy = np.where(rng.random(len(y)) < 0.35, 1 - y, y)  # overfits fast: stops early
    sk = xgboost.XGBClassifier(
        n_estimators=200, max_depth=6, learning_rate=0.5, n_jobs=1, early_stopping_rounds=3
    ).fit(X[::2], y_noisy[::2], eval_set=[(X[1::2], y_noisy[1::2])], verbose=False)
    assert sk.best_iteration + 1 < sk.get_booster().num_boosted_rounds()
    ours = XGBoostClassifier(
        n_estimators=200, max_depth=6, learning_rate=0.5, early_stopping_rounds=3
    ).fit(pd.DataFrame(X, columns=FEATURES), y_noisy)
    assert ours.best_iteration_ is not None
    columns = {name: X[:500, i] for i, name in enumerate(FEATURES)}
    for model, expected in (
        (sk, sk.predict_proba(X[:500])[:, 1]),
        (ours, ours.predict_proba(pd.DataFrame(X[:500], columns=FEATURES))[:, 1]),
    ):
        scorer = FeatureScorer(model) if model is ours else FeatureScorer(model, FEATURES)
        assert list(scorer.feature_names) == FEATURES  # ours brings its fitted names
        np.testing.assert_allclose(scorer.score(columns), expected, atol=1e-6)
    # all trees would score differently: the test can tell the two apart
    full = sk.get_booster().inplace_predict(X[:500], iteration_range=(0, 0))
    assert np.abs(full - sk.predict_proba(X[:500])[:, 1]).max() > 1e-3
