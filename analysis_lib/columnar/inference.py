"""Apply a trained XGBoost or Keras model to feature columns, coffea ``ml_tools`` style.

:class:`FeatureScorer` has the interface of coffea's
:class:`~coffea.ml_tools.helper.numpy_call_wrapper` (``prepare_awkward``,
``validate_numpy_input``, ``numpy_call``): called on an awkward (or dask-awkward) array of
records it pads jagged fields, turns missing values into NaN, stacks the features into an
``(n, n_features)`` float32 matrix and runs the model; called on a numpy matrix it runs the
model directly. :meth:`FeatureScorer.as_coffea` gives the same scorer as a genuine
``numpy_call_wrapper`` (that is what a call on awkward input goes through). It does not
subclass it because importing ``coffea.ml_tools`` imports TensorFlow (seconds), which an
XGBoost model does not need. The processor uses :meth:`FeatureScorer.score` on its feature
columns, once per variation, so every output table gets its score column in the same pass.

Models:

* ``xgboost.Booster``, ``XGBClassifier``, ``XGBRegressor`` (or a path to a saved booster,
  ``.json``/``.ubj``): ``inplace_predict`` with ``missing=NaN`` — the same numbers as
  ``booster.predict(xgboost.DMatrix(X))``, without building a DMatrix; for a binary
  classifier, the probability of class 1;
* a Keras 3 model (or a ``.keras`` path): the model called on batches of ``batch_size``
  rows.

XGBoost handles NaN natively; a Keras model sees NaN unless ``fill_value`` is given.

Examples
--------
>>> import numpy as np, xgboost
>>> X = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
>>> booster = xgboost.train({"objective": "binary:logistic"},
...                         xgboost.DMatrix(X, label=X[:, 0] > 0), num_boost_round=3)
>>> scorer = FeatureScorer(booster, ["a", ("b", 2)])
>>> scorer.feature_names
['a', 'b_0', 'b_1']
>>> scorer.kind
'xgboost'
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np

from .errors import ModelFileError

FeatureSpec = str | tuple[str, int]


def file_digest(path: str) -> str:
    """SHA-256 of a model file, to tell a retrained model at the same path from the old one.

    Raises
    ------
    ModelFileError
        The file is missing or cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError as exc:
        raise ModelFileError(path, "no such file") from exc
    except OSError as exc:
        raise ModelFileError(path, f"cannot read it ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def _is_awkward(value: Any) -> bool:
    return isinstance(value, ak.Array) or type(value).__module__.startswith("dask_awkward")


def _unwrap(model: Any) -> tuple[Any, list[str] | None]:
    """Our own fitted estimators (:mod:`analysis_lib.training`) → the model inside, features.

    An :class:`~analysis_lib.training.XGBoostClassifier` gives its booster cut at the best
    iteration, a :class:`~analysis_lib.training.KerasClassifier` its Keras model (which
    standardises its inputs itself); both bring the feature names they were fitted on.
    """
    if not type(model).__module__.startswith("analysis_lib.training."):
        return model, None
    names = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else None
    if callable(getattr(model, "booster", None)):
        return model.booster(), names
    inner = getattr(model, "model_", None)
    if inner is not None and type(inner).__module__.startswith(("keras", "tensorflow")):
        return inner, names
    raise TypeError(
        f"{type(model).__name__} cannot be applied inside the processor: use an XGBoost or "
        "Keras classifier (analysis_lib.training.XGBoostClassifier, KerasClassifier), fitted"
    )


def _iteration_range(booster: Any) -> tuple[int, int]:
    """Trees to use: up to the best iteration of an early-stopped model, else all."""
    best = booster.attr("best_iteration")
    return (0, int(best) + 1) if best is not None else (0, 0)


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_keras_file(path: str) -> None:
    """A ``.keras`` file is a zip archive, an ``.h5`` one HDF5 (Keras 2's format)."""
    if path.lower().endswith(".h5"):
        with open(path, "rb") as f:
            if f.read(8) != _HDF5_SIGNATURE:
                raise ModelFileError(path, "not a Keras model (an .h5 file is HDF5)")
    elif not zipfile.is_zipfile(path):
        raise ModelFileError(path, "not a Keras model (a .keras file is a zip archive)")


def _keras_width(model: Any) -> int | None:
    """The feature count of a single-input Keras model, when it declares one."""
    try:
        (tensor,) = model.inputs
        width = tensor.shape[-1]
    except Exception:  # a subclassed or multi-input model: checked per chunk instead
        return None
    return int(width) if width is not None else None


def _model_kind(model: Any) -> str:
    if isinstance(model, (str, os.PathLike)):
        suffix = os.fspath(model).rsplit(".", 1)[-1].lower()
        if suffix in ("json", "ubj", "model", "bst", "deprecated"):
            return "xgboost"
        if suffix in ("keras", "h5"):
            return "keras"
        raise ValueError(
            f"cannot tell the model type of {os.fspath(model)!r}: expected an XGBoost "
            "booster (.json, .ubj) or a Keras model (.keras, .h5)"
        )
    module = type(model).__module__
    if module.startswith("xgboost"):
        return "xgboost"
    if module.startswith(("keras", "tf_keras", "tensorflow")):
        return "keras"
    raise TypeError(
        f"unsupported model type {type(model).__name__}: expected xgboost.Booster, an "
        "XGBoost scikit-learn model or a Keras model"
    )


class FeatureScorer:
    """A trained model plus the ordered feature columns it takes.

    Parameters
    ----------
    model : xgboost.Booster, XGBClassifier/XGBRegressor, keras.Model, fitted
        :class:`~analysis_lib.training.XGBoostClassifier` or
        :class:`~analysis_lib.training.KerasClassifier`, or path
        The model, or a file it was saved to. A file is checked here (an XGBoost file is
        loaded, a ``.keras`` file must be a zip archive; :class:`ModelFileError` names a
        missing or broken one) and its SHA-256 kept; each worker loads it again and refuses
        it if it changed since. An early-stopped XGBoost model is applied up to its best
        iteration, as its ``predict`` does.
    features : sequence of str or (str, int)
        The inputs, in the model's order: a column name, or ``(name, n)`` for a jagged
        field padded (or clipped) to ``n`` entries, which expands to ``name_0 ... name_{n-1}``.
        Default: the feature names the estimator was fitted on (for our estimators fitted on
        a table), else :func:`analysis_lib.columnar.features.default_features`.
    batch_size : int
        Rows per Keras call.
    fill_value : float, optional
        Replace NaN by this before predicting (default: keep NaN, which XGBoost treats as
        missing).
    """

    def __init__(
        self,
        model: Any,
        features: Sequence[FeatureSpec] | None = None,
        *,
        batch_size: int = 65536,
        fill_value: float | None = None,
    ) -> None:
        model, fitted_names = _unwrap(model)
        if features is None:
            from .features import default_features

            features = fitted_names or default_features()
        self.kind = _model_kind(model)
        self.features = tuple(
            (f[0], int(f[1])) if isinstance(f, (tuple, list)) else str(f) for f in features
        )
        if not self.features:
            raise ValueError("a model needs at least one feature")
        self.batch_size = int(batch_size)
        self.fill_value = fill_value
        self._path = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
        self._model = None if self._path else model
        # a model file: checked here, where the run starts, not in every worker's first chunk;
        # its checksum goes into the description (so into the checkpoints' fingerprint: a
        # model retrained into the same file does not resume the old one's chunks)
        self._digest = file_digest(self._path) if self._path else None
        if self._path and self.kind == "keras":
            _check_keras_file(self._path)
        if self._path:
            self._load()
        self._check_width()

    # -- the model ---------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The model object (loaded from the path on first use)."""
        if self._model is None:
            if file_digest(self._path) != self._digest:
                raise ModelFileError(
                    self._path, "the file changed after the run started; run it again"
                )
            self._load()
        return self._model

    def _check_width(self) -> None:
        """The model takes as many inputs as there are feature columns (checked where the
        run starts, not in every worker's first chunk)."""
        if self.kind == "xgboost":
            booster = self._booster()
            width = booster.num_features() if hasattr(booster, "num_features") else None
        else:
            width = _keras_width(self._model)
        names = self.feature_names
        if width is None or width == len(names):
            return
        problem = (
            f"the model takes {width} features but {len(names)} are configured "
            f"({', '.join(names)}); name its inputs in order with --model-features "
            "(model_features=)"
        )
        if self._path:
            raise ModelFileError(self._path, problem)
        raise ValueError(problem)

    def _load(self) -> None:
        try:
            if self.kind == "xgboost":
                import xgboost

                self._model = xgboost.Booster(model_file=self._path)
            else:
                import keras

                self._model = keras.saving.load_model(self._path)
        except Exception as exc:  # XGBoost's and Keras's own errors carry stack dumps
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            kind = "an XGBoost" if self.kind == "xgboost" else "a Keras"
            raise ModelFileError(self._path, f"cannot load it as {kind} model ({first})") from exc

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self._path is not None:
            state["_model"] = None  # reload from the file where it is unpickled
        return state

    def describe(self) -> dict:
        """A JSON-able description (for the output metadata)."""
        return {
            "kind": self.kind,
            "type": type(self._model).__name__ if self._model is not None else None,
            "path": self._path,
            "sha256": self._digest,
            "features": self.feature_names,
        }

    # -- features ----------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """The matrix's column names, jagged fields expanded."""
        names: list[str] = []
        for f in self.features:
            if isinstance(f, tuple):
                names += [f"{f[0]}_{i}" for i in range(f[1])]
            else:
                names.append(f)
        return names

    @property
    def columns(self) -> list[str]:
        """The input column names (jagged fields once)."""
        return [f[0] if isinstance(f, tuple) else f for f in self.features]

    def matrix(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The ``(n, n_features)`` float32 input matrix; missing values are NaN.

        Parameters
        ----------
        columns : mapping
            Column name to a 1-d array (flat features) or a jagged awkward array (for a
            ``(name, n)`` feature).
        """
        missing = [c for c in self.columns if c not in columns]
        if missing:
            raise KeyError(
                f"the model needs column(s) {', '.join(missing)}; available: "
                f"{', '.join(sorted(columns))}"
            )
        n = len(columns[self.columns[0]])
        out = np.empty((n, len(self.feature_names)), dtype=np.float32)
        j = 0
        for f in self.features:
            if isinstance(f, tuple):
                name, width = f
                padded = ak.fill_none(ak.pad_none(columns[name], width, clip=True), np.nan)
                out[:, j : j + width] = ak.to_numpy(padded)
                j += width
            else:
                out[:, j] = columns[f]
                j += 1
        if self.fill_value is not None:
            np.nan_to_num(out, copy=False, nan=self.fill_value)
        return out

    def score(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Predict on feature columns: :meth:`matrix`, then the model."""
        return self._call_numpy(self.matrix(columns))

    # -- coffea ml_tools interface -----------------------------------------------------------
    def __call__(self, *args, **kwargs):
        """Score awkward or dask-awkward records (through coffea), or a numpy matrix."""
        if any(_is_awkward(a) for a in (*args, *kwargs.values())):
            return self.as_coffea()(*args, **kwargs)
        return self._call_numpy(*args, **kwargs)

    def as_coffea(self):
        """This scorer as a coffea ``ml_tools`` ``numpy_call_wrapper``."""
        from ._coffea_ml import CoffeaScorer

        return CoffeaScorer(self)

    def _call_numpy(self, data: np.ndarray, *args, **kwargs) -> np.ndarray:
        self.validate_numpy_input(data)
        return self.numpy_call(data)

    def prepare_awkward(self, array, *args, **kwargs) -> tuple[tuple, dict]:
        """Turn an (dask-)awkward array of records into the model's 2-d input.

        Jagged fields are padded with None to their width and None becomes NaN.
        """
        if type(array).__module__.startswith("dask_awkward"):
            import dask_awkward as lib
        else:
            lib = ak
        parts = []
        for f in self.features:
            if isinstance(f, tuple):
                name, width = f
                col = lib.pad_none(array[name], width, axis=1, clip=True)
            else:
                col = array[f][:, np.newaxis]
            col = lib.fill_none(lib.values_astype(col, np.float32), np.nan)
            parts.append(col)
        matrix = lib.concatenate(parts, axis=1)
        if self.fill_value is not None:
            matrix = lib.nan_to_num(matrix, nan=self.fill_value)
        return (matrix,), {}

    def validate_numpy_input(self, data: np.ndarray, *args, **kwargs) -> None:
        """Check the matrix has the model's number of columns."""
        if data.ndim != 2 or data.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected a matrix of {len(self.feature_names)} columns "
                f"({', '.join(self.feature_names)}), got shape {data.shape}"
            )
        if self.kind == "xgboost":
            booster = self._booster()
            n = booster.num_features()
            if n != data.shape[1]:
                raise ValueError(
                    f"the XGBoost model takes {n} features but {data.shape[1]} are configured"
                )

    def _booster(self):
        model = self.model
        return model.get_booster() if hasattr(model, "get_booster") else model

    def numpy_call(self, data: np.ndarray, *args, **kwargs) -> np.ndarray:
        """Run the model on the matrix; 1-d scores, or ``(n, k)`` for k outputs."""
        data = np.ascontiguousarray(data, dtype=np.float32)
        if self.kind == "xgboost":
            booster = self._booster()
            if len(data) == 0:
                return np.zeros(0, dtype=np.float32)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # device mismatch notices
                out = booster.inplace_predict(
                    data, missing=np.nan, iteration_range=_iteration_range(booster)
                )
        else:
            model = self.model
            if len(data) == 0:
                return np.zeros(0, dtype=np.float32)
            import keras

            out = np.concatenate(
                [
                    keras.ops.convert_to_numpy(model(data[i : i + self.batch_size], training=False))
                    for i in range(0, len(data), self.batch_size)
                ]
            )
        out = np.asarray(out)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out
