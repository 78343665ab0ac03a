"""Save/load with metadata (atomic archive) and ONNX export checked with onnxruntime."""

from __future__ import annotations

import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost

from analysis_lib.datasets.toys import make_pnn_toy
from analysis_lib.training import (
    FeatureMismatchError,
    KerasClassifier,
    NuisanceParameterisedClassifier,
    ParameterisedClassifier,
    TrainingInputError,
    XGBoostClassifier,
    export_onnx,
    load_model,
    onnx_predict_proba,
    read_metadata,
    save_model,
)


def data(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] - X[:, 2] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame(X, columns=["pt", "eta", "mass"]), y


@pytest.fixture(scope="module")
def models() -> dict:
    X, y = data()
    return {
        "xgboost": XGBoostClassifier(n_estimators=200, early_stopping_rounds=3).fit(X, y),
        "keras": KerasClassifier(hidden_units=(8,), epochs=3, learning_rate=0.01).fit(X, y),
    }


@pytest.mark.parametrize("kind", ["xgboost", "keras"])
def test_save_load_roundtrip_with_metadata(kind: str, models: dict, tmp_path: Path) -> None:
    X, _ = data()
    model = models[kind]
    provenance = {"samples": {"signal": "zprime_m1000", "background": "ttbar_semilep"}}
    path = save_model(model, tmp_path / "m.hepml.zip", provenance=provenance)
    meta = read_metadata(path)
    assert meta["format"] == "hepml-model"
    assert meta["features"] == ["pt", "eta", "mass"]
    assert meta["provenance"] == provenance
    assert meta["training_config"] == json.loads(json.dumps(model.training_config()))
    assert meta["code_version"]["xgboost"] == xgboost.__version__
    assert "git_commit" in meta["code_version"] and meta["created"]
    assert meta["parameter"] is None
    again = load_model(path)
    assert type(again) is type(model)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    native = "model.ubj" if kind == "xgboost" else "model.keras"
    assert names == {"metadata.json", "estimator.pkl", native}
    assert [p.name for p in tmp_path.iterdir()] == ["m.hepml.zip"]  # no temporaries


def test_metadata_is_strict_json(models: dict, tmp_path: Path) -> None:
    """NaN and infinities (in provenance, say) were written as bare NaN/Infinity tokens,
    which strict JSON readers refuse."""
    provenance = {"efficiency": float("nan"), "range": [0.0, float("inf"), -float("inf")]}
    path = save_model(models["xgboost"], tmp_path / "m.hepml.zip", provenance=provenance)

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"), parse_constant=refuse)
    assert meta["provenance"] == {"efficiency": "nan", "range": [0.0, "inf", "-inf"]}


def test_native_booster_is_the_early_stopped_model(models: dict, tmp_path: Path) -> None:
    X, _ = data()
    model = models["xgboost"]
    assert model.best_iteration_ is not None
    path = save_model(model, tmp_path / "bdt.hepml.zip")
    with zipfile.ZipFile(path) as zf:
        raw = zf.read("model.ubj")
    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    assert booster.num_boosted_rounds() == model.best_iteration_ + 1
    p = booster.inplace_predict(X.to_numpy())
    np.testing.assert_allclose(p, model.predict_proba(X)[:, 1], rtol=1e-6)


def test_failed_save_leaves_the_previous_archive(models: dict, tmp_path: Path) -> None:
    X, y = data(200)
    path = save_model(models["xgboost"], tmp_path / "m.hepml.zip")
    before = path.read_bytes()
    # a model that cannot be pickled (a lambda attached) fails half-way
    unpicklable = XGBoostClassifier(n_estimators=2).fit(X, y)
    unpicklable.note_ = lambda: None
    with pytest.raises((pickle.PicklingError, AttributeError)):
        save_model(unpicklable, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.hepml.zip"]
    with pytest.raises(FileExistsError):
        save_model(models["xgboost"], path, overwrite=False)
    with pytest.raises(TrainingInputError, match="JSON-serialisable"):
        save_model(models["xgboost"], tmp_path / "n.zip", provenance={"x": object()})
    assert not (tmp_path / "n.zip").exists()


def test_read_metadata_refuses_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "not_a_model.zip"
    bad.write_text("hello")
    with pytest.raises(TrainingInputError, match="not a saved model archive"):
        read_metadata(bad)


def test_parameterised_metadata_names_the_parameter(tmp_path: Path) -> None:
    X, y, _ = make_pnn_toy(200, seed=0)
    frame = pd.DataFrame(X, columns=["x", "mass"])
    pnn = ParameterisedClassifier(XGBoostClassifier(n_estimators=5), parameter="mass")
    pnn.fit(frame, y)
    meta = read_metadata(save_model(pnn, tmp_path / "pnn.hepml.zip"))
    assert meta["parameter"] == "mass" and meta["features"] == ["x", "mass"]
    assert meta["fitted"]["parameter_values_"] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert meta["training_config"]["estimator"]["class"] == "XGBoostClassifier"


@pytest.mark.parametrize("kind", ["xgboost", "keras"])
def test_onnx_export_scores_like_the_model(kind: str, models: dict, tmp_path: Path) -> None:
    X, _ = data(300, seed=1)
    model = models[kind]
    path = export_onnx(model, tmp_path / f"{kind}.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{kind}.onnx"]
    p_onnx = onnx_predict_proba(path, X)
    np.testing.assert_allclose(p_onnx, model.predict_proba(X), atol=2e-5)
    # the file keeps the feature names: columns are reordered, wrong ones refused
    np.testing.assert_allclose(onnx_predict_proba(path, X[["mass", "pt", "eta"]]), p_onnx)
    with pytest.raises(FeatureMismatchError, match="missing 'mass'"):
        onnx_predict_proba(path, X[["pt", "eta"]])


def test_onnx_export_of_a_parameterised_network(tmp_path: Path) -> None:
    X, y, _ = make_pnn_toy(300, seed=0)
    frame = pd.DataFrame(X, columns=["x", "theta"])
    pnn = ParameterisedClassifier(KerasClassifier(hidden_units=(8,), epochs=2)).fit(frame, y)
    path = export_onnx(pnn, tmp_path / "pnn.onnx")
    probe = frame.assign(theta=0.5)
    np.testing.assert_allclose(onnx_predict_proba(path, probe), pnn.predict_proba(probe), atol=2e-5)
    # the same wrapper (a Keras model inside) through save/load
    again = load_model(save_model(pnn, tmp_path / "pnn.hepml.zip"))
    np.testing.assert_array_equal(again.predict_proba(probe), pnn.predict_proba(probe))
    assert read_metadata(tmp_path / "pnn.hepml.zip")["files"]["native"] == "model.keras"


def test_onnx_export_of_a_nuisance_parameterised_model_takes_nu_last(tmp_path: Path) -> None:
    """The graph of a nuisance-parameterised model takes the features and then nu; the
    archive says so too (``model_inputs``), and names with a comma survive."""
    X, y = data(400)
    X = X.rename(columns={"pt": "pt,lead"})
    tables = {
        "nominal": X.assign(label=y, weight=1.0),
        "jes_up": X.assign(eta=X["eta"] + 0.3, label=y, weight=1.0),
    }
    model = NuisanceParameterisedClassifier(
        XGBoostClassifier(n_estimators=20), variations={"nominal": 0.0, "jes_up": 1.0}
    ).fit(tables)
    path = export_onnx(model, tmp_path / "npc.onnx")
    for nu in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(
            onnx_predict_proba(path, X.assign(jes=nu)),
            model.predict_proba(X, nuisance=nu),
            atol=2e-5,
        )
    with pytest.raises(FeatureMismatchError, match="missing 'jes'"):
        onnx_predict_proba(path, X)
    meta = read_metadata(save_model(model, tmp_path / "npc.hepml.zip"))
    assert meta["features"] == ["pt,lead", "eta", "mass"]
    assert meta["model_inputs"] == ["pt,lead", "eta", "mass", "jes"]
    with zipfile.ZipFile(tmp_path / "npc.hepml.zip") as zf:
        (tmp_path / "native.ubj").write_bytes(zf.read(meta["files"]["native"]))
    native = xgboost.Booster(model_file=str(tmp_path / "native.ubj"))
    assert native.num_features() == len(meta["model_inputs"])


def test_export_refuses_unfitted_or_foreign_models(tmp_path: Path) -> None:
    with pytest.raises(TrainingInputError, match="cannot export"):
        export_onnx(XGBoostClassifier(), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
