"""Saving and loading trained models: one archive with the model and its metadata.

The archive (a zip file, conventionally ``*.hepml.zip``) holds

* ``metadata.json`` -- the class, features (the columns ``predict_proba`` takes), the
  native model's input columns (``model_inputs``: the same, plus nu last for a
  nuisance-parameterised model), parameter and nuisance names, variations,
  training configuration (constructor arguments), fitted summary, data provenance (what
  the caller passes), code version (package versions, git commit) and creation time;
* ``estimator.pkl`` -- the pickled estimator (Keras models inside as ``.keras`` bytes);
* ``model.ubj`` or ``model.keras`` -- the native model of the innermost XGBoost/Keras
  classifier, for tools that do not unpickle (e.g. the columnar
  :class:`~analysis_lib.columnar.FeatureScorer`).

It is written under a temporary name in the target directory and renamed into place
(``os.replace``): a reader sees the previous archive or the complete new one, never a half
written file. :func:`load_model` unpickles: load only archives you trust.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from analysis_lib.training import XGBoostClassifier
>>> X = np.random.default_rng(0).normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
>>> clf = XGBoostClassifier(n_estimators=5, validation_fraction=0).fit(X, y)
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = save_model(clf, os.path.join(tmp, "bdt.hepml.zip"), provenance={"data": "toy"})
...     meta = read_metadata(path)
...     again = load_model(path)
>>> meta["features"], meta["provenance"], meta["class"]
(['x0', 'x1'], {'data': 'toy'}, 'analysis_lib.training.xgboost_classifier.XGBoostClassifier')
>>> bool(np.array_equal(again.predict_proba(X), clf.predict_proba(X)))
True
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.metadata
import json
import math
import os
import pickle
import platform
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from sklearn.utils.validation import check_is_fitted

from .atomic import atomic_write
from .base import _jsonable
from .errors import TrainingInputError
from .onnx_export import base_classifier, model_feature_names, model_input_names

FORMAT = "hepml-model"
FORMAT_VERSION = 1
_PACKAGES = ("hepml-hub", "numpy", "scikit-learn", "xgboost", "keras", "tensorflow-cpu")


@functools.cache
def _git_commit() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parents[2]
    try:
        run = functools.partial(
            subprocess.run, capture_output=True, text=True, timeout=5, check=True
        )
        commit = run(["git", "-C", str(root), "rev-parse", "HEAD"]).stdout.strip()
        dirty = run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
        return commit or None, bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def code_version() -> dict[str, Any]:
    """Versions of Python, this package and the training libraries; git commit if any.

    Examples
    --------
    >>> "xgboost" in code_version()
    True
    """
    out: dict[str, Any] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["git_commit"], out["git_dirty"] = _git_commit()
    return out


def describe(model: Any) -> dict[str, Any]:
    """The metadata of a fitted model (without provenance, versions and time)."""
    check_is_fitted(model)
    cls = type(model)
    fitted = {}
    for attr in (
        "device_",
        "best_iteration_",
        "n_epochs_",
        "parameter_range_",
        "parameter_values_",
        "nuisance_values_",
        "mixing_",
        "profiled_nuisance_",
    ):
        if hasattr(model, attr):
            fitted[attr] = _jsonable(_plain(getattr(model, attr)))
    with contextlib.suppress(TrainingInputError):
        inner = base_classifier(model)
        if inner is not model:
            for attr in ("device_", "best_iteration_", "n_epochs_"):
                if hasattr(inner, attr):
                    fitted[f"estimator_.{attr}"] = _jsonable(_plain(getattr(inner, attr)))
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "features": model_feature_names(model),
        "model_inputs": _model_inputs(model),
        "parameter": getattr(model, "parameter_name_", None),
        "nuisance": getattr(model, "nuisance_name_", None),
        "variations": _jsonable(_plain(getattr(model, "variations_", None))),
        "training_config": _jsonable(model.get_params(deep=False)),
        "fitted": fitted,
    }


def _model_inputs(model: Any) -> list[str] | None:
    """The input columns of the native model file (``model.ubj``/``model.keras``)."""
    try:
        return model_input_names(model)
    except TrainingInputError:
        return None


def _finite_json(value: Any) -> Any:
    """``value`` with NaN and infinities as the strings "nan", "inf", "-inf": standard JSON
    has no such numbers, and strict readers (``jq``, browsers) refuse ``NaN``."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return list(value)
    return value


def save_model(
    model: Any,
    path: str | os.PathLike,
    *,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a fitted model and its metadata to one archive, atomically.

    Parameters
    ----------
    model : fitted estimator
        Any estimator of this package (or another picklable fitted scikit-learn
        estimator).
    path : path
        The archive to write.
    provenance : dict, optional
        Where the training data came from (sample names, file paths, their metadata,
        selection); stored as given (must be JSON-able).
    overwrite : bool, default True
        Replace an existing archive (atomically); False raises ``FileExistsError``.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists and overwrite=False")
    metadata = describe(model)
    try:
        provenance_json = json.loads(json.dumps(provenance or {}))
    except TypeError as exc:
        raise TrainingInputError(f"provenance must be JSON-serialisable: {exc}") from None
    files = {"estimator": "estimator.pkl"}
    native: tuple[str, bytes] | None = None
    with contextlib.suppress(TrainingInputError):
        native = _native(base_classifier(model))
    if native is not None:
        files["native"] = native[0]
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **metadata,
        "provenance": provenance_json,
        "code_version": code_version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            text = json.dumps(_finite_json(metadata), indent=2, allow_nan=False)
            zf.writestr("metadata.json", text + "\n")
            zf.writestr("estimator.pkl", blob)
            if native is not None:
                zf.writestr(native[0], native[1])

    return atomic_write(path, write, mode=0o644)


def _native(clf: Any) -> tuple[str, bytes] | None:
    from .keras_classifier import KerasClassifier, keras_model_to_bytes
    from .xgboost_classifier import XGBoostClassifier

    if isinstance(clf, XGBoostClassifier):
        return "model.ubj", bytes(clf.booster().save_raw(raw_format="ubj"))
    if isinstance(clf, KerasClassifier):
        return "model.keras", keras_model_to_bytes(clf.model_)
    return None  # pragma: no cover


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of an archive written by :func:`save_model` (nothing is unpickled)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("metadata.json"))
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise TrainingInputError(f"{path}: not a saved model archive ({exc})") from None
    if meta.get("format") != FORMAT:
        raise TrainingInputError(
            f"{path}: not a saved model archive (format {meta.get('format')!r})"
        )
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise TrainingInputError(
            f"{path}: archive format version {meta['format_version']} is newer than this "
            f"code reads ({FORMAT_VERSION}); update analysis_lib"
        )
    return meta


def load_model(path: str | os.PathLike) -> Any:
    """The estimator saved by :func:`save_model` (unpickled: trusted files only).

    Its ``feature_names_in_``/``n_features_in_`` still guard predictions against the wrong
    feature set; the metadata's feature list is checked against them here.
    """
    meta = read_metadata(path)
    with zipfile.ZipFile(path) as zf:
        model = pickle.loads(zf.read(meta["files"]["estimator"]))
    if model_feature_names(model) != meta["features"]:
        raise TrainingInputError(
            f"{path}: the stored model's features {model_feature_names(model)} differ from "
            f"its metadata {meta['features']}"
        )
    return model
