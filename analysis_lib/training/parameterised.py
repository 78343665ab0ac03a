"""Parameterised classifiers (Baldi et al., arXiv:1601.07913): one model across a parameter θ.

The physics parameter θ (a signal mass, a coupling) is an input feature. Signal events carry
the θ they were generated at; background events have no θ, so each one gets a θ drawn from
the signal's θ distribution (weighted by the signal weights): θ alone then says nothing about
the class, and the model has to learn how the features' meaning depends on θ. One network
trained at a few θ then classifies at any θ in between.

* :class:`ParameterisedClassifier` wraps any binary classifier with the scikit-learn
  contract (:class:`~analysis_lib.training.KerasClassifier` by default);
  ``predict_proba(X, parameter=θ)`` evaluates at a scalar θ or one θ per event.
* :func:`auc_vs_parameter` -- the weighted ROC AUC at each θ (signal at that θ against all
  background, evaluated at that θ).
* :func:`leave_one_parameter_out` -- for each training θ: retrain without the signal at that
  θ, evaluate there; the test of interpolation the paper makes.

Trees interpolate poorly in θ (each split picks one side), so use a network to interpolate
between training θ; XGBoost works for evaluation at the training values.

Examples
--------
>>> from analysis_lib.datasets.toys import make_pnn_toy
>>> from analysis_lib.training import XGBoostClassifier
>>> X, y, _ = make_pnn_toy(200, seed=0)
>>> pnn = ParameterisedClassifier(XGBoostClassifier(n_estimators=20), parameter=1)
>>> pnn = pnn.fit(X, y)
>>> pnn.parameter_values_.tolist()
[-2.0, -1.0, 0.0, 1.0, 2.0]
>>> pnn.predict_proba(X[:3, :1], parameter=1.0).shape
(3, 2)
>>> pnn.predict_proba(X[:3, :1], parameter=7.0)
Traceback (most recent call last):
...
analysis_lib.training.errors.UnknownParameterError: parameter 'x1' = 7.0 is outside the trained range [-2.0, 2.0]; pass extrapolate=True to evaluate there anyway
"""  # noqa: E501

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from . import inputs
from .errors import FeatureMismatchError, TrainingInputError, UnknownParameterError

BACKGROUND_POLICIES = ("resample", "keep")


def weighted_auc(y: ArrayLike, score: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """ROC AUC with event weights (scikit-learn's, which accepts negative weights).

    Examples
    --------
    >>> weighted_auc([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    0.75
    """
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score, sample_weight=sample_weight))


def signal_parameter_distribution(
    theta: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The distinct signal θ values and their share of the signal weight (``|w|``).

    Examples
    --------
    >>> values, prob = signal_parameter_distribution([1, 2, 2, 5], [1, 1, 1, 0])
    >>> values.tolist(), prob.round(3).tolist()
    ([1.0, 2.0], [0.333, 0.667])
    """
    theta = np.asarray(theta, dtype=np.float64)
    y = np.asarray(y)
    w = np.ones(theta.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    signal = y == 1
    values, inverse = np.unique(theta[signal], return_inverse=True)
    prob = np.bincount(inverse, weights=np.abs(w[signal]), minlength=values.size)
    if values.size == 0 or not prob.sum() > 0:
        raise TrainingInputError("the signal events carry no weight: no θ distribution")
    return values, prob / prob.sum()


def resample_background_parameter(
    theta: ArrayLike,
    y: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    seed: int | np.random.Generator | None = 0,
) -> NDArray[np.float64]:
    """θ with every background value replaced by a draw from the signal θ distribution.

    Examples
    --------
    >>> theta = resample_background_parameter([1.0, 2.0, 99.0, 99.0], [1, 1, 0, 0], seed=0)
    >>> theta[:2].tolist(), set(theta[2:].tolist()) <= {1.0, 2.0}
    ([1.0, 2.0], True)
    """
    out = np.array(theta, dtype=np.float64)
    values, prob = signal_parameter_distribution(out, y, sample_weight)
    background = np.asarray(y) != 1
    rng = np.random.default_rng(seed)
    out[background] = rng.choice(values, size=int(background.sum()), p=prob)
    return out


class ParameterisedClassifier(ClassifierMixin, BaseEstimator):
    """Train one classifier across a physics parameter θ that is one of its input columns.

    Parameters
    ----------
    estimator : estimator, optional
        The binary classifier to train (cloned); default
        :class:`~analysis_lib.training.KerasClassifier` ``()``.
    parameter : str or int, default "theta"
        The θ column: a column name (DataFrame input) or a column index (arrays).
    background_parameter : {"resample", "keep"}, default "resample"
        ``"resample"``: draw each background event's θ from the signal θ distribution
        (the training values, with probabilities proportional to the signal weight at
        each); ``"keep"``: the θ column of background events is already filled in.
    random_state : int, default 0
        Seed of the background θ draw.

    Attributes
    ----------
    estimator_ : estimator
        The trained classifier (takes θ as the column ``parameter_index_``).
    parameter_values_ : ndarray
        The distinct signal θ values seen in training.
    parameter_probabilities_ : ndarray
        Their share of the signal weight (the background θ distribution).
    parameter_range_ : tuple of float
        ``(min, max)`` of the training θ; evaluation outside it needs ``extrapolate=True``.
    parameter_index_ : int
    parameter_name_ : str
    n_features_in_, feature_names_in_, classes_
        As in scikit-learn (θ included).
    """

    def __init__(
        self,
        estimator: Any = None,
        parameter: str | int = "theta",
        background_parameter: str = "resample",
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.parameter = parameter
        self.background_parameter = background_parameter
        self.random_state = random_state

    # -- columns ---------------------------------------------------------------------------
    def _parameter_index(self, names: list[str] | None, n_features: int) -> int:
        p = self.parameter
        if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
            if not -n_features <= int(p) < n_features:
                raise UnknownParameterError(
                    f"parameter column index {p} is out of range for X with {n_features} columns"
                )
            return int(p) % n_features
        if not isinstance(p, str):
            raise UnknownParameterError(f"parameter must be a column name or index, got {p!r}")
        if names is None:
            raise UnknownParameterError(
                f"parameter {p!r} is a column name but X has no column names; pass a "
                "DataFrame or give parameter as a column index"
            )
        if p not in names:
            raise UnknownParameterError(
                f"unknown parameter {p!r}: X has no such column (columns: {', '.join(names)})"
            )
        return names.index(p)

    def _frame(self, values: NDArray) -> Any:
        if hasattr(self, "feature_names_in_"):
            return pd.DataFrame(values, columns=list(self.feature_names_in_))
        return values

    # -- training --------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> ParameterisedClassifier:
        """Train on events whose θ column holds the signal parameter.

        Background θ values are replaced by draws from the signal θ distribution
        (``background_parameter="resample"``); the input is not modified.

        Returns
        -------
        self
        """
        if self.background_parameter not in BACKGROUND_POLICIES:
            raise TrainingInputError(
                f"background_parameter must be one of {BACKGROUND_POLICIES}, "
                f"got {self.background_parameter!r}"
            )
        values, names = inputs.feature_matrix(X)
        y_arr = inputs.labels(y, values.shape[0])
        w = inputs.sample_weights(sample_weight, values.shape[0])
        index = self._parameter_index(names, values.shape[1])
        theta_values, prob = signal_parameter_distribution(values[:, index], y_arr, w)
        values = values.copy()
        if self.background_parameter == "resample":
            values[:, index] = resample_background_parameter(
                values[:, index], y_arr, w, seed=self.random_state
            )
        estimator = self.estimator if self.estimator is not None else _default_estimator()
        frame = pd.DataFrame(values, columns=names) if names is not None else values
        self.estimator_ = clone(estimator).fit(frame, y_arr, sample_weight=sample_weight)
        self.parameter_values_ = theta_values
        self.parameter_probabilities_ = prob
        self.parameter_range_ = (float(theta_values.min()), float(theta_values.max()))
        self.parameter_index_ = index
        self.parameter_name_ = names[index] if names is not None else f"x{index}"
        self.n_features_in_ = values.shape[1]
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.classes_ = np.array([0, 1])
        return self

    # -- evaluation ------------------------------------------------------------------------
    def _with_parameter(
        self, X: Any, parameter: ArrayLike | None, extrapolate: bool
    ) -> NDArray[np.float64]:
        check_is_fitted(self, "estimator_")
        values, names = inputs.feature_matrix(X)
        values = np.array(values, dtype=np.float64)  # a copy: θ is written into it
        n, k = values.shape
        index, name = self.parameter_index_, self.parameter_name_
        fitted = list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else None
        if names is not None and fitted is not None:
            if name not in names:
                values = np.insert(values, min(index, k), np.nan, axis=1)
                names = [*names[:index], name, *names[index:]]
            values = inputs.align_features(
                values, names, fitted, self.n_features_in_, owner=type(self).__name__
            )
        elif k == self.n_features_in_ - 1:
            values = np.insert(values, index, np.nan, axis=1)
        elif k != self.n_features_in_:
            expected = fitted or inputs.default_names(self.n_features_in_)
            raise FeatureMismatchError(
                f"X has {k} features but the {type(self).__name__} was trained on "
                f"{self.n_features_in_} ({', '.join(expected)}; without the parameter "
                f"{name!r}: {self.n_features_in_ - 1})"
            )
        if parameter is not None:
            theta = np.asarray(parameter, dtype=np.float64)
            if theta.ndim > 1 or (theta.ndim == 1 and theta.shape[0] != n):
                raise TrainingInputError(
                    f"parameter must be a scalar or one value per event ({n}), "
                    f"got shape {theta.shape}"
                )
            values[:, index] = theta
        col = values[:, index]
        if not np.isfinite(col).all():
            first = int(np.flatnonzero(~np.isfinite(col))[0])
            if parameter is not None:
                raise UnknownParameterError(
                    f"parameter={parameter!r} is not a finite value of {name!r} "
                    f"(event {first}: {float(col[first])!r})"
                )
            if np.isnan(col).all():
                raise UnknownParameterError(
                    f"X has no values of the parameter {name!r}: pass parameter=<value or array>"
                )
            raise UnknownParameterError(
                f"parameter {name!r} has a non-finite value {float(col[first])!r} "
                f"(first at event {first})"
            )
        lo, hi = self.parameter_range_
        outside = (col < lo) | (col > hi)
        if outside.any() and not extrapolate:
            bad = float(col[outside][0])
            raise UnknownParameterError(
                f"parameter {name!r} = {bad!r} is outside the trained range [{lo}, {hi}]; "
                "pass extrapolate=True to evaluate there anyway"
            )
        return values

    def predict_proba(
        self, X: Any, parameter: ArrayLike | None = None, *, extrapolate: bool = False
    ) -> NDArray[np.float64]:
        """Class probabilities at θ = ``parameter``.

        Parameters
        ----------
        X : array_like or DataFrame
            Features, with or without the θ column.
        parameter : float or array_like, optional
            θ for every event (scalar) or per event; overrides X's θ column. Needed if X
            has no θ column.
        extrapolate : bool, default False
            Allow θ outside the trained range (otherwise an
            :class:`~analysis_lib.training.errors.UnknownParameterError`).
        """
        values = self._with_parameter(X, parameter, extrapolate)
        return self.estimator_.predict_proba(self._frame(values))

    def predict(
        self, X: Any, parameter: ArrayLike | None = None, *, extrapolate: bool = False
    ) -> NDArray[np.int64]:
        """1 where the signal probability at θ is at least 0.5."""
        p = self.predict_proba(X, parameter, extrapolate=extrapolate)[:, 1]
        return (p >= 0.5).astype(np.int64)

    def decision_function(
        self, X: Any, parameter: ArrayLike | None = None, *, extrapolate: bool = False
    ) -> NDArray[np.float64]:
        """The log-odds at θ."""
        values = self._with_parameter(X, parameter, extrapolate)
        return self.estimator_.decision_function(self._frame(values))

    def auc_vs_parameter(
        self, X: Any, y: Any, sample_weight: Any = None, *, values: ArrayLike | None = None
    ) -> pd.DataFrame:
        """:func:`auc_vs_parameter` of this model."""
        return auc_vs_parameter(self, X, y, sample_weight, values=values)

    def plot_auc_vs_parameter(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        values: ArrayLike | None = None,
        reference: Any = None,
        ax: Any = None,
    ) -> Any:
        """Plot the AUC against θ (:func:`analysis_lib.evaluation.plots.plot_auc_vs_parameter`).

        ``reference`` (e.g. the Bayes-optimal AUC per θ, or dedicated models' AUCs) is
        passed through. Returns what the plotting function returns (the axes).
        """
        from analysis_lib.evaluation.plots import plot_auc_vs_parameter

        table = self.auc_vs_parameter(X, y, sample_weight, values=values)
        return plot_auc_vs_parameter(
            table["parameter"].to_numpy(), table["auc"].to_numpy(), reference=reference, ax=ax
        )


def _default_estimator() -> Any:
    from .keras_classifier import KerasClassifier

    return KerasClassifier()


def _split_parameter(
    model: ParameterisedClassifier, X: Any, y: Any, sample_weight: Any
) -> tuple[NDArray, list[str] | None, NDArray, NDArray, int]:
    values, names = inputs.feature_matrix(X)
    y_arr = inputs.labels(y, values.shape[0])
    w = inputs.sample_weights(sample_weight, values.shape[0])
    index = model._parameter_index(names, values.shape[1])
    return values, names, y_arr, w, index


def auc_vs_parameter(
    model: ParameterisedClassifier,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    values: ArrayLike | None = None,
) -> pd.DataFrame:
    """Weighted ROC AUC of a parameterised model at each θ.

    At each θ the signal events generated at that θ (θ column equal to it) are compared
    with all background events, every event evaluated at that θ.

    Parameters
    ----------
    model : ParameterisedClassifier
        Fitted.
    X, y, sample_weight
        Evaluation events; the θ column of the signal says where each was generated (the
        background's θ column is ignored).
    values : array_like, optional
        The θ to evaluate at; default: every distinct signal θ in X.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter``, ``auc``, ``n_signal``, ``n_background``.

    Examples
    --------
    >>> from analysis_lib.datasets.toys import make_pnn_toy
    >>> from analysis_lib.training import XGBoostClassifier
    >>> X, y, _ = make_pnn_toy(200, seed=0)
    >>> pnn = ParameterisedClassifier(XGBoostClassifier(n_estimators=20), parameter=1)
    >>> table = auc_vs_parameter(pnn.fit(X, y), *make_pnn_toy(200, [0.0, 1.0], seed=1)[:2])
    >>> table["parameter"].tolist(), bool((table["auc"] > 0.85).all())
    ([0.0, 1.0], True)
    """
    data, names, y_arr, w, index = _split_parameter(model, X, y, sample_weight)
    signal = y_arr == 1
    thetas = np.unique(data[signal, index]) if values is None else np.atleast_1d(values)
    background = ~signal
    rows = []
    for theta in np.asarray(thetas, dtype=np.float64):
        sig_at = signal & np.isclose(data[:, index], theta)
        if not sig_at.any():
            raise UnknownParameterError(
                f"no signal events at {model.parameter_name_!r} = {theta!r} in X"
            )
        keep = sig_at | background
        sub = data[keep]
        frame = pd.DataFrame(sub, columns=names) if names is not None else sub
        score = model.predict_proba(frame, parameter=float(theta))[:, 1]
        rows.append(
            {
                "parameter": float(theta),
                "auc": weighted_auc(y_arr[keep], score, w[keep]),
                "n_signal": int(sig_at.sum()),
                "n_background": int(background.sum()),
            }
        )
    return pd.DataFrame(rows, columns=["parameter", "auc", "n_signal", "n_background"])


def leave_one_parameter_out(
    model: ParameterisedClassifier,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    values: ArrayLike | None = None,
    test: tuple[Any, Any] | tuple[Any, Any, Any] | None = None,
) -> pd.DataFrame:
    """Interpolation check: for each θ, train without its signal and evaluate there.

    For every θ in ``values`` (default: each distinct signal θ that is not the smallest or
    largest, since those would be extrapolation) a clone of ``model`` is trained on all
    events except the signal at θ (background θ drawn from the remaining signal values),
    then its AUC at θ is computed on ``test`` (or, without it, on the left-out signal
    against the training background, which is slightly optimistic).

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter``, ``auc``, ``n_signal``, ``n_background``, one row per θ.

    Examples
    --------
    >>> from analysis_lib.datasets.toys import make_pnn_toy
    >>> from analysis_lib.training import XGBoostClassifier
    >>> X, y, _ = make_pnn_toy(100, [-1.0, 0.0, 1.0], seed=0)
    >>> model = ParameterisedClassifier(XGBoostClassifier(n_estimators=5), parameter=1)
    >>> leave_one_parameter_out(model, X, y)["parameter"].tolist()
    [0.0]
    """
    data, names, y_arr, w, index = _split_parameter(model, X, y, sample_weight)
    signal = y_arr == 1
    all_thetas = np.unique(data[signal, index])
    if values is None:
        thetas = all_thetas[1:-1]
        if thetas.size == 0:
            raise TrainingInputError(
                "leave-one-out needs at least three signal θ values (the outer two stay in)"
            )
    else:
        thetas = np.atleast_1d(np.asarray(values, dtype=np.float64))
    rows = []
    for theta in thetas:
        held = signal & np.isclose(data[:, index], theta)
        if not held.any():
            raise UnknownParameterError(f"no signal events at parameter = {theta!r} in X")
        train = ~held
        sub = data[train]
        frame = pd.DataFrame(sub, columns=names) if names is not None else sub
        fitted = clone(model).fit(frame, y_arr[train], w[train])
        if test is None:
            keep = held | ~signal
            ev = data[keep]
            ev_frame = pd.DataFrame(ev, columns=names) if names is not None else ev
            table = auc_vs_parameter(fitted, ev_frame, y_arr[keep], w[keep], values=[theta])
        else:
            table = auc_vs_parameter(fitted, *test, values=[theta])
        rows.append(table.iloc[0].to_dict())
    out = pd.DataFrame(rows, columns=["parameter", "auc", "n_signal", "n_background"])
    return out.astype({"n_signal": int, "n_background": int})
