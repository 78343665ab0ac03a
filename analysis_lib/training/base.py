"""What the binary classifiers share: input checks, feature names, probability outputs.

A subclass implements ``_fit_arrays(X, y, w)`` (validated float64 arrays, weights after the
negative-weight policy and class balancing) and ``_score(X)`` (the signal probability for a
validated matrix). Everything else -- the scikit-learn contract, feature-name bookkeeping,
``predict_proba``/``predict``/``decision_function`` -- lives here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from . import inputs
from .split import check_fraction
from .weights import check_policy, training_weights

_EPS = 1e-7


class BinaryClassifierBase(ClassifierMixin, BaseEstimator):
    """Base of the XGBoost and Keras binary classifiers (not used directly)."""

    #: Whether NaN features are allowed (XGBoost's missing values); subclasses decide.
    _allow_nan_param = False

    # -- the contract ----------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BinaryClassifierBase:
        """Train on ``X`` (events x features), labels ``y`` (1 signal, 0 background).

        Parameters
        ----------
        X : array_like, pandas.DataFrame or pyarrow.Table
            Features; a DataFrame's column names are remembered (``feature_names_in_``)
            and checked at prediction time.
        y : array_like of {0, 1}
        sample_weight : array_like, optional
            Event weights; negative ones follow ``negative_weights``.

        Returns
        -------
        self
        """
        values, names, y_arr, w = self._validate_fit(X, y, sample_weight)
        self._fit_arrays(values, y_arr, w)
        self._set_feature_info(values, names)  # last: a failed fit leaves no half state
        return self

    def _validate_fit(self, X, y, sample_weight):
        check_policy(self.negative_weights)
        check_fraction(self.validation_fraction)
        values, names = inputs.feature_matrix(X, allow_nan=self._nan_allowed())
        y_arr = inputs.labels(y, values.shape[0])
        w = inputs.sample_weights(sample_weight, values.shape[0])
        w = training_weights(
            y_arr, w, negative_weights=self.negative_weights, class_balance=self.class_balance
        )
        return values, names, y_arr, w

    def _set_feature_info(self, values: NDArray, names: list[str] | None) -> None:
        self.n_features_in_ = int(values.shape[1])
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.classes_ = np.array([0, 1])

    def _nan_allowed(self) -> bool:
        return bool(getattr(self, "allow_nan", False)) if self._allow_nan_param else False

    @property
    def feature_names_(self) -> list[str]:
        """The training features' names (``x0, x1, ...`` for unnamed columns)."""
        check_is_fitted(self, "n_features_in_")
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        return inputs.default_names(self.n_features_in_)

    def _validate_predict(self, X: Any) -> NDArray[np.float64]:
        check_is_fitted(self, "n_features_in_")
        values, names = inputs.feature_matrix(X, allow_nan=self._nan_allowed())
        return inputs.align_features(
            values,
            names,
            getattr(self, "feature_names_in_", None),
            self.n_features_in_,
            owner=type(self).__name__,
        )

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Class probabilities, shape (n_events, 2): background, signal."""
        p = self._score(self._validate_predict(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> NDArray[np.int64]:
        """1 where the signal probability is at least 0.5, else 0."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def decision_function(self, X: Any) -> NDArray[np.float64]:
        """The log-odds ``log p / (1 - p)``: a monotone score, unbounded, for ROC curves."""
        p = np.clip(self.predict_proba(X)[:, 1], _EPS, 1.0 - _EPS)
        return np.log(p) - np.log1p(-p)

    # -- for subclasses --------------------------------------------------------------------
    def _fit_arrays(self, X: NDArray, y: NDArray, w: NDArray) -> None:  # pragma: no cover
        raise NotImplementedError

    def _score(self, X: NDArray) -> NDArray[np.float64]:  # pragma: no cover
        raise NotImplementedError

    def training_config(self) -> dict[str, Any]:
        """The constructor arguments as JSON-able values (for saved metadata)."""
        return {k: _jsonable(v) for k, v in self.get_params(deep=False).items()}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "get_params"):
        return {"class": type(value).__name__, "params": _jsonable(value.get_params(deep=False))}
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', value)}"
    return repr(value)
