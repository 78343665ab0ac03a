"""Nuisance-parameterised classifiers: the systematic shift as an input feature.

Each variation table is labelled with the value nu of the nuisance parameter it represents
(``jes_down`` = -1, ``nominal`` = 0, ``jes_up`` = +1 by default: shifts in units of the
uncertainty), and nu becomes one more input column. Signal and background are both varied,
so nu is a true property of every event (nothing is resampled, unlike the physics parameter
of :class:`~analysis_lib.training.ParameterisedClassifier`). The trained model is a family
of classifiers, one per nu, continuous in between. How to evaluate it:

* **nominal** -- ``predict_proba(X)`` or ``nuisance="nominal"``: at the nominal value (0),
  the best classifier if the nuisance is at its nominal value;
* **any value** -- ``nuisance=0.5`` (scalar or one per event);
* **profiled** -- ``nuisance="profiled"``: at ``profiled_nuisance_``, the value nu_hat that
  :meth:`NuisanceParameterisedClassifier.profile` found: the nu at which the model best
  describes a labelled sample (smallest weighted binary cross-entropy on a grid of nu, e.g.
  on a control region or on Asimov/pseudo data with known composition) -- the per-sample
  analogue of profiling nu in the likelihood fit, where the fitted nu_hat is plugged back in;
* **envelope** -- :meth:`NuisanceParameterisedClassifier.score_envelope`: the per-event
  minimum and maximum signal probability over a range of nu (a conservative band).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from analysis_lib.training import XGBoostClassifier
>>> rng = np.random.default_rng(0)
>>> def table(shift):
...     x = np.r_[rng.normal(1 + shift, 1, 300), rng.normal(-1, 1, 300)]
...     return pd.DataFrame({"x": x, "label": np.r_[np.ones(300), np.zeros(300)]})
>>> tables = {"nominal": table(0.0), "jes_up": table(0.5), "jes_down": table(-0.5)}
>>> clf = NuisanceParameterisedClassifier(XGBoostClassifier(n_estimators=10), nuisance="jes",
...                                        weight_column=None)  # the tables have no weights
>>> clf = clf.fit(tables)
>>> clf.nuisance_values_
{'jes_down': -1.0, 'nominal': 0.0, 'jes_up': 1.0}
>>> clf.predict_proba(tables["nominal"], nuisance="nominal").shape
(600, 2)
>>> round(clf.profile(tables["jes_up"], grid=[-1.0, 0.0, 1.0]).profiled_nuisance_, 1)
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from . import inputs
from .errors import (
    FeatureMismatchError,
    TrainingInputError,
    UnknownParameterError,
    UnknownVariationError,
)
from .tables import (
    as_frame,
    check_tables,
    feature_columns,
    labels_and_weights,
    select_features,
    variations_named,
)


def default_nuisance_values(nuisance: str) -> dict[str, float]:
    """``{<nuisance>_down: -1, nominal: 0, <nuisance>_up: +1}``.

    Examples
    --------
    >>> default_nuisance_values("jes")
    {'jes_down': -1.0, 'nominal': 0.0, 'jes_up': 1.0}
    """
    return {f"{nuisance}_down": -1.0, "nominal": 0.0, f"{nuisance}_up": 1.0}


class NuisanceParameterisedClassifier(ClassifierMixin, BaseEstimator):
    """A classifier with the nuisance value nu as an extra input, trained across variations.

    Parameters
    ----------
    estimator : estimator, optional
        Binary classifier (cloned); default
        :class:`~analysis_lib.training.KerasClassifier` ``()`` (a network interpolates
        smoothly in nu; trees step).
    nuisance : str, default "jes"
        The nuisance's name; also the name of the nu input column.
    variations : dict of str -> float, optional
        Variation name -> nu; default :func:`default_nuisance_values` (``nominal`` must be
        there, or give ``nominal_value``).
    features, label_column, weight_column
        As in :class:`~analysis_lib.training.VariationAugmentedClassifier`.
    nominal_value : float, optional
        nu at nominal; default the value of the ``nominal`` variation (0).

    Attributes
    ----------
    estimator_ : estimator
        Takes the features and then nu (column ``nuisance``).
    nuisance_name_ : str
    nuisance_values_ : dict
        Variation -> nu used.
    nuisance_range_ : tuple of float
    nominal_nuisance_ : float
    variations_ : list of str
    profiled_nuisance_ : float
        Set by :meth:`profile`.
    n_features_in_, feature_names_in_ (features without nu), classes_
    """

    def __init__(
        self,
        estimator: Any = None,
        nuisance: str = "jes",
        variations: Mapping[str, float] | None = None,
        features: Sequence[str] | None = None,
        label_column: str = "label",
        weight_column: str | None = "weight",
        nominal_value: float | None = None,
    ) -> None:
        self.estimator = estimator
        self.nuisance = nuisance
        self.variations = variations
        self.features = features
        self.label_column = label_column
        self.weight_column = weight_column
        self.nominal_value = nominal_value

    def fit(
        self, X: Any, y: Any = None, sample_weight: Any = None
    ) -> NuisanceParameterisedClassifier:
        """Train on ``X``, a mapping ``{variation: table}``; tables not in ``variations``
        are ignored, variations missing from ``X`` raise."""
        frames = check_tables(X)
        mapping = dict(self.variations or default_nuisance_values(self.nuisance))
        missing = [v for v in mapping if v not in frames]
        if missing:
            raise UnknownVariationError(
                f"{variations_named(missing)} of nuisance {self.nuisance!r} not in X; "
                f"X has: {', '.join(frames)}"
            )
        values = {}
        for name, value in mapping.items():
            values[name] = inputs.number_or_nan(value)
            if not np.isfinite(values[name]):
                raise TrainingInputError(
                    f"nuisance value of {name!r} must be finite, got {value!r}"
                )
        if self.nominal_value is not None:
            nominal = inputs.number_or_nan(self.nominal_value)
            lo, hi = min(values.values()), max(values.values())
            if not lo <= nominal <= hi:  # NaN too
                raise TrainingInputError(
                    f"nominal_value must be a number within the variations' values "
                    f"[{lo!r}, {hi!r}], got {self.nominal_value!r}"
                )
        elif "nominal" in values:
            nominal = values["nominal"]
        else:
            raise TrainingInputError(
                "no 'nominal' variation among the nuisance values; give nominal_value"
            )
        frames = {k: frames[k] for k in mapping}
        cols = feature_columns(frames, self.features, [self.label_column, self.weight_column])
        if self.nuisance in cols:
            raise TrainingInputError(
                f"the nuisance name {self.nuisance!r} is also a feature column; rename one"
            )
        ys, ws = labels_and_weights(frames, y, sample_weight, self.label_column, self.weight_column)
        parts = []
        for name in mapping:
            feats, _ = inputs.feature_matrix(frames[name][cols], name=f"table {name!r}")
            parts.append(np.column_stack([feats, np.full(len(feats), values[name])]))
        Xall = pd.DataFrame(np.concatenate(parts), columns=[*cols, self.nuisance])
        yall = np.concatenate([ys[k] for k in mapping])
        wall = np.concatenate([ws[k] for k in mapping])
        base = self.estimator if self.estimator is not None else _default_estimator()
        self.estimator_ = clone(base).fit(Xall, yall, sample_weight=wall)
        self.nuisance_name_ = self.nuisance
        self.nuisance_values_ = values
        self.nuisance_range_ = (min(values.values()), max(values.values()))
        self.nominal_nuisance_ = nominal
        self.variations_ = list(mapping)
        self.feature_names_in_ = np.asarray(cols, dtype=object)
        self.n_features_in_ = len(cols)
        self.classes_ = np.array([0, 1])
        return self

    # -- evaluation ------------------------------------------------------------------------
    def _resolve(self, nuisance: Any, n: int, extrapolate: bool) -> NDArray[np.float64]:
        if isinstance(nuisance, str):
            if nuisance == "nominal":
                nu = np.full(n, self.nominal_nuisance_)
            elif nuisance == "profiled":
                if not hasattr(self, "profiled_nuisance_"):
                    raise UnknownParameterError(
                        "nuisance='profiled' needs profile(X, y) to be called first"
                    )
                nu = np.full(n, self.profiled_nuisance_)
            elif nuisance in self.nuisance_values_:
                nu = np.full(n, self.nuisance_values_[nuisance])
            else:
                raise UnknownParameterError(
                    f"unknown nuisance setting {nuisance!r}: use 'nominal', 'profiled', a "
                    f"variation ({', '.join(self.nuisance_values_)}) or a number"
                )
        else:
            nu = np.asarray(nuisance, dtype=np.float64)
            if nu.ndim > 1 or (nu.ndim == 1 and nu.shape[0] != n):
                raise TrainingInputError(
                    f"nuisance must be a scalar or one value per event ({n}), got shape {nu.shape}"
                )
            nu = np.broadcast_to(nu, (n,)).astype(np.float64)
        lo, hi = self.nuisance_range_
        bad = ~np.isfinite(nu) | (((nu < lo) | (nu > hi)) & (not extrapolate))
        if bad.any():
            raise UnknownParameterError(
                f"nuisance {self.nuisance_name_!r} = {float(nu[bad][0])!r} is outside the trained "
                f"range [{lo}, {hi}]; pass extrapolate=True to evaluate there anyway"
            )
        return nu

    def _matrix(self, X: Any) -> NDArray[np.float64]:
        check_is_fitted(self, "estimator_")
        cols = list(self.feature_names_in_)
        values, _ = inputs.feature_matrix(select_features(X, cols, owner=type(self).__name__))
        if values.shape[1] != len(cols):
            raise FeatureMismatchError(
                f"X has {values.shape[1]} features but the {type(self).__name__} was trained "
                f"on {len(cols)} ({', '.join(cols)}), the nuisance {self.nuisance_name_!r} "
                "not counted"
            )
        return values

    def _frame(self, values: NDArray, nu: NDArray) -> pd.DataFrame:
        return pd.DataFrame(
            np.column_stack([values, nu]), columns=[*self.feature_names_in_, self.nuisance_name_]
        )

    def predict_proba(
        self, X: Any, nuisance: Any = "nominal", *, extrapolate: bool = False
    ) -> NDArray[np.float64]:
        """Class probabilities at ``nuisance``: "nominal" (default), "profiled", a
        variation name, or a value (scalar or per event)."""
        values = self._matrix(X)
        nu = self._resolve(nuisance, values.shape[0], extrapolate)
        return self.estimator_.predict_proba(self._frame(values, nu))

    def predict(
        self, X: Any, nuisance: Any = "nominal", *, extrapolate: bool = False
    ) -> NDArray[np.int64]:
        """1 where the signal probability at ``nuisance`` is at least 0.5."""
        proba = self.predict_proba(X, nuisance, extrapolate=extrapolate)
        return (proba[:, 1] >= 0.5).astype(np.int64)

    def decision_function(
        self, X: Any, nuisance: Any = "nominal", *, extrapolate: bool = False
    ) -> NDArray[np.float64]:
        """The log-odds at ``nuisance``."""
        values = self._matrix(X)
        nu = self._resolve(nuisance, values.shape[0], extrapolate)
        return self.estimator_.decision_function(self._frame(values, nu))

    def _grid(self, grid: ArrayLike | None) -> NDArray[np.float64]:
        if grid is None:
            lo, hi = self.nuisance_range_
            return np.linspace(lo, hi, 21)
        g = np.atleast_1d(np.asarray(grid, dtype=np.float64))
        if g.ndim != 1 or g.size == 0:
            raise TrainingInputError(f"grid must be a non-empty list of values, got {grid!r}")
        return g

    def profile(
        self,
        X: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        grid: ArrayLike | None = None,
    ) -> NuisanceParameterisedClassifier:
        """Find nu_hat: the grid value where the model's weighted cross-entropy on a labelled
        sample is smallest; sets ``profiled_nuisance_`` and ``profile_curve_``.

        Parameters
        ----------
        X : DataFrame
            Labelled events (e.g. a control region, or a variation table); ``y`` and
            ``sample_weight`` default to its label and weight columns.
        grid : array_like, optional
            nu values to try; default 21 points over the trained range.

        Returns
        -------
        self
        """
        frame = X if isinstance(X, pd.DataFrame) or not hasattr(X, "to_pandas") else as_frame(X)
        values = self._matrix(frame)
        n = values.shape[0]
        if y is None:
            if not isinstance(frame, pd.DataFrame) or self.label_column not in frame.columns:
                raise TrainingInputError(
                    f"profile needs labels: pass y or a table with {self.label_column!r}"
                )
            y = frame[self.label_column].to_numpy()
        y_arr = inputs.labels(y, n)
        if (
            sample_weight is None
            and isinstance(frame, pd.DataFrame)
            and (self.weight_column is not None and self.weight_column in frame.columns)
        ):
            sample_weight = frame[self.weight_column].to_numpy()
        w = inputs.sample_weights(sample_weight, n)
        if not w.sum() > 0:
            raise TrainingInputError(
                f"profile needs events of positive total weight, got {float(w.sum())!r}"
            )
        g = self._grid(grid)
        losses = []
        for nu in g:
            p = self.estimator_.predict_proba(
                self._frame(values, self._resolve(float(nu), n, False))
            )[:, 1]
            p = np.clip(p, 1e-7, 1 - 1e-7)
            losses.append(-np.sum(w * (y_arr * np.log(p) + (1 - y_arr) * np.log1p(-p))) / w.sum())
        self.profile_curve_ = {"nuisance": g.tolist(), "loss": [float(v) for v in losses]}
        self.profiled_nuisance_ = float(g[int(np.argmin(losses))])
        return self

    def score_envelope(
        self, X: Any, *, grid: ArrayLike | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-event minimum and maximum signal probability over nu in ``grid`` (default:
        21 points over the trained range)."""
        values = self._matrix(X)
        n = values.shape[0]
        scores = np.stack(
            [
                self.estimator_.predict_proba(
                    self._frame(values, self._resolve(float(nu), n, False))
                )[:, 1]
                for nu in self._grid(grid)
            ]
        )
        return scores.min(axis=0), scores.max(axis=0)


def _default_estimator() -> Any:
    from .keras_classifier import KerasClassifier

    return KerasClassifier()
