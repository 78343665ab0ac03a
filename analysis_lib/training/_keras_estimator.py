"""What the estimators around a custom Keras model share: inputs, standardisation, pickling.

:class:`~analysis_lib.training.pivot.PivotClassifier` and
:class:`~analysis_lib.training.inferno.InfernoClassifier` train a ``keras.Model`` subclass
of their own (a custom ``train_step``) that standardises its input with the training mean
and scale. :class:`KerasModelEstimator` records the training features
(``n_features_in_``, ``feature_names_in_``, ``feature_mean_``, ``feature_scale_``), checks
prediction inputs against them, and pickles the model as the weights of its networks,
rebuilt by the estimator (a subclassed model has no portable ``.keras`` form, unlike
:func:`~analysis_lib.training.keras_classifier.keras_model_to_bytes`).

Examples
--------
>>> import numpy as np
>>> est = KerasModelEstimator()
>>> est._fit_features(np.array([[1.0, 5.0], [3.0, 5.0]]), ["a", "b"])
>>> est.feature_mean_.tolist(), est.feature_scale_.tolist(), est.feature_names_in_.tolist()
([2.0, 5.0], [1.0, 1.0], ['a', 'b'])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted

from analysis_lib.training.inputs import align_features, feature_matrix

__all__ = ["KerasModelEstimator", "keras_predict"]


def keras_predict(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """``model.predict(x)`` as float64, also for no events (Keras fails on an empty input).

    With zero rows the result has zero rows and the model's output width, found by
    running the model on one row of zeros.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> keras_predict(model, np.zeros((0, 2), np.float32), batch_size=8).shape
    (0, 3)
    """
    if len(x) == 0:
        probe = np.zeros((1, *x.shape[1:]), dtype=x.dtype)
        return np.asarray(model.predict(probe, verbose=0), np.float64)[:0]
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), np.float64)


class KerasModelEstimator:
    """Mixin for an estimator whose ``model_`` is rebuilt from its networks' weights.

    A subclass defines ``_networks(model)`` (the Keras sub-models whose weights make up the
    trained state, in a fixed order) and ``_new_model()`` (a fresh, untrained ``model_``
    for the fitted attributes); put the mixin before ``BaseEstimator`` in the bases.
    """

    def _fit_features(self, values: np.ndarray, names: list[str] | None) -> None:
        """Record the training features: count, names (when given), mean and scale."""
        self.n_features_in_ = values.shape[1]
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.feature_mean_ = values.mean(axis=0)
        std = values.std(axis=0)
        self.feature_scale_ = np.where(std > 0, std, 1.0)

    def _checked(self, X: ArrayLike) -> np.ndarray:
        """``X`` checked against (and ordered as) the training features, as float32."""
        check_is_fitted(self, "model_")
        values, names = feature_matrix(X)
        fitted = getattr(self, "feature_names_in_", None)
        values = align_features(
            values,
            names,
            None if fitted is None else list(fitted),
            self.n_features_in_,
            owner=type(self).__name__,
        )
        return values.astype(np.float32)

    # ------------------------------------------------------------------ pickling

    def _networks(self, model: Any) -> list[Any]:
        raise NotImplementedError

    def _new_model(self) -> Any:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        model = state.pop("model_", None)
        if model is not None:
            state["_weights"] = [
                [np.asarray(v) for v in net.get_weights()] for net in self._networks(model)
            ]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("_weights", None)
        self.__dict__.update(state)
        if weights is not None:
            self.model_ = self._new_model()
            for net, values in zip(self._networks(self.model_), weights, strict=True):
                net.set_weights(values)
