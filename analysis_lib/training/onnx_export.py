"""ONNX export of the trained XGBoost and Keras classifiers, and scoring with onnxruntime.

The exported graph takes one ``float32`` input ``features`` of shape (n_events,
n_features), the columns in the model's training order (the ``θ`` column of a
parameterised model and the nuisance column nu of a nuisance-parameterised one included,
last for the latter; the names are in the ONNX metadata ``feature_names``), and gives the
signal probability:

* XGBoost (:class:`~analysis_lib.training.XGBoostClassifier`):
  ``onnxmltools.convert_xgboost`` (best iteration honoured), outputs ``label`` and
  ``probabilities`` (n, 2);
* Keras (:class:`~analysis_lib.training.KerasClassifier`): ``model.export(...,
  format="onnx")`` (tf2onnx), output (n, 1) -- the normalisation layer is inside.

The file is written atomically (temporary name, then ``os.replace``).

Examples
--------
>>> import numpy as np, tempfile, os
>>> from analysis_lib.training import XGBoostClassifier
>>> X = np.random.default_rng(0).normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
>>> clf = XGBoostClassifier(n_estimators=5, validation_fraction=0).fit(X, y)
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = export_onnx(clf, os.path.join(tmp, "bdt.onnx"))
...     p = onnx_predict_proba(path, X)
>>> bool(np.allclose(p, clf.predict_proba(X), atol=1e-5))
True
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import inputs
from .atomic import atomic_write
from .errors import TrainingInputError


def base_classifier(model: Any) -> Any:
    """The innermost fitted XGBoost/Keras classifier of a (possibly wrapped) model."""
    from .base import BinaryClassifierBase

    seen = model
    for _ in range(8):
        if isinstance(seen, BinaryClassifierBase):
            if not hasattr(seen, "model_"):
                raise TrainingInputError(
                    f"cannot export {type(model).__name__}: it is not fitted; call fit first"
                )
            return seen
        inner = getattr(seen, "estimator_", None)
        if inner is None:
            break
        seen = inner
    raise TrainingInputError(
        f"cannot export {type(model).__name__}: expected a fitted XGBoostClassifier or "
        "KerasClassifier, or a fitted wrapper around one"
    )


def model_feature_names(model: Any) -> list[str]:
    """The columns a fitted model's ``predict_proba`` takes, in order."""
    if hasattr(model, "feature_names_in_"):
        return [str(c) for c in model.feature_names_in_]
    return inputs.default_names(int(model.n_features_in_))


def model_input_names(model: Any) -> list[str]:
    """The input columns of the XGBoost/Keras classifier inside ``model``, in order.

    These are the exported graph's inputs. They are ``model``'s own columns, except where
    a wrapper adds a column of its own: a
    :class:`~analysis_lib.training.NuisanceParameterisedClassifier` feeds its nuisance
    value nu as the last column.
    """
    clf = base_classifier(model)
    names = model_feature_names(clf)
    outer = model_feature_names(model)
    if len(outer) == len(names) and names == inputs.default_names(len(names)):
        return outer  # an inner model fitted on plain arrays: the wrapper knows the names
    return names


def _feature_names_value(names: list[str]) -> str:
    """The ``feature_names`` metadata value: comma-separated, or JSON when a name has a
    comma (read by :func:`_stored_feature_names`)."""
    if any("," in name for name in names) or any(name.startswith("[") for name in names[:1]):
        return json.dumps(names)
    return ",".join(names)


def _stored_feature_names(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [str(v) for v in json.loads(value)] if value.startswith("[") else value.split(",")


def export_onnx(model: Any, path: str | os.PathLike, *, opset: int | None = None) -> Path:
    """Write a fitted model as an ONNX file.

    Parameters
    ----------
    model : XGBoostClassifier, KerasClassifier, or a fitted wrapper around one
        (:class:`~analysis_lib.training.ParameterisedClassifier`, ...).
    path : path
        Output file.
    opset : int, optional
        ONNX opset (the converter's default otherwise).

    Returns
    -------
    pathlib.Path
    """
    import onnx

    from .keras_classifier import KerasClassifier
    from .xgboost_classifier import XGBoostClassifier

    clf = base_classifier(model)
    names = model_input_names(model)
    n = len(names)
    if isinstance(clf, XGBoostClassifier):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        kwargs = {"target_opset": opset} if opset is not None else {}
        proto = onnxmltools.convert_xgboost(
            clf.model_, initial_types=[("features", FloatTensorType([None, n]))], **kwargs
        )
    elif isinstance(clf, KerasClassifier):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "model.onnx")
            kwargs = {"opset_version": opset} if opset is not None else {}
            clf.model_.export(out, format="onnx", verbose=False, **kwargs)
            proto = onnx.load(out)
    else:  # pragma: no cover - base_classifier only returns the two
        raise TrainingInputError(f"no ONNX export for {type(clf).__name__}")
    meta = {"feature_names": _feature_names_value(names), "producer": "analysis_lib.training"}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return atomic_write(Path(path), lambda tmp: onnx.save(proto, tmp))


def onnx_predict_proba(path: str | os.PathLike, X: Any) -> NDArray[np.float64]:
    """Class probabilities (n_events, 2) from an ONNX file written by :func:`export_onnx`.

    ``X`` holds all the model's input columns in training order (a DataFrame is reordered
    by the names stored in the file; missing or extra names raise).
    """
    import onnxruntime as ort

    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    names = _stored_feature_names(meta.get("feature_names"))
    values, given = inputs.feature_matrix(X)
    n_in = session.get_inputs()[0].shape[1]
    n_in = len(names) if names is not None else int(n_in)
    values = inputs.align_features(values, given, names, n_in, owner="ONNX model")
    feed = {session.get_inputs()[0].name: values.astype(np.float32)}
    results = session.run(None, feed)
    outputs = {o.name: v for o, v in zip(session.get_outputs(), results, strict=True)}
    if "probabilities" in outputs:
        p = np.asarray(outputs["probabilities"], dtype=np.float64)[:, 1]
    else:
        p = np.asarray(next(iter(outputs.values())), dtype=np.float64).reshape(-1)
    return np.column_stack([1.0 - p, p])
