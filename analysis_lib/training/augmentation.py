"""Data augmentation with systematic variations: train one classifier on all of them.

The classifier sees the nominal events and their systematically varied copies
(``jes_up``, ``jer_down``, ``btag_sf_up``, ...) as one training set, so it cannot rely on
features whose meaning a systematic shifts; its output is then more robust (flatter) across
the variations, at some cost in nominal performance.

Mixing says how much each variation counts:

* ``mixing`` -- ``{variation: share}``; shares are normalised to sum 1; variations not
  named get no share and are left out; default: every given variation equally;
* ``mixing_mode="weight"`` -- all events of every variation are used, each variation's
  weights scaled so its total weight is its share of the whole (the signal/background
  ratio inside a variation is kept);
* ``mixing_mode="sample"`` -- each variation contributes a seeded random subset of events
  in proportion to its share (``share x`` the size of the largest table, drawn without
  replacement where possible), weights as they are; cheaper when there are many
  variations.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from analysis_lib.training import XGBoostClassifier
>>> rng = np.random.default_rng(0)
>>> def table(shift):
...     x = np.r_[rng.normal(1 + shift, 1, 300), rng.normal(-1, 1, 300)]
...     return pd.DataFrame({"x": x, "label": np.r_[np.ones(300), np.zeros(300)],
...                          "weight": 1.0})
>>> tables = {"nominal": table(0.0), "jes_up": table(0.3), "jes_down": table(-0.3)}
>>> clf = VariationAugmentedClassifier(XGBoostClassifier(n_estimators=10),
...                                    mixing={"nominal": 2, "jes_up": 1, "jes_down": 1})
>>> clf = clf.fit(tables)
>>> clf.mixing_
{'nominal': 0.5, 'jes_up': 0.25, 'jes_down': 0.25}
>>> sorted(clf.score_tables(tables)), clf.predict_proba(tables["nominal"]).shape
(['jes_down', 'jes_up', 'nominal'], (600, 2))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from . import inputs
from .errors import TrainingInputError, UnknownVariationError
from .tables import (
    check_tables,
    feature_columns,
    labels_and_weights,
    select_features,
    variations_named,
)

MIXING_MODES = ("weight", "sample")


def normalise_mixing(mixing: Mapping[str, float] | None, available: Sequence[str]) -> dict:
    """Mixing shares normalised to sum 1, checked against the available variations.

    Examples
    --------
    >>> normalise_mixing({"nominal": 3, "jes_up": 1}, ["nominal", "jes_up", "jes_down"])
    {'nominal': 0.75, 'jes_up': 0.25}
    >>> normalise_mixing({"jes_sideways": 1}, ["nominal"])
    Traceback (most recent call last):
    ...
    analysis_lib.training.errors.UnknownVariationError: unknown variation 'jes_sideways' in mixing; the tables have: nominal
    """  # noqa: E501
    if mixing is None:
        return {name: 1.0 / len(available) for name in available}
    unknown = [k for k in mixing if k not in available]
    if unknown:
        raise UnknownVariationError(
            f"unknown {variations_named(unknown)} in mixing; the tables have: "
            f"{', '.join(available)}"
        )
    shares = {}
    for name, value in mixing.items():
        share = inputs.number_or_nan(value)
        if not np.isfinite(share) or share < 0:
            raise TrainingInputError(f"mixing share of {name!r} must be >= 0, got {value!r}")
        if share > 0:
            shares[name] = share
    total = sum(shares.values())
    if total <= 0:
        raise TrainingInputError("mixing gives every variation a zero share")
    return {name: share / total for name, share in shares.items()}


class VariationAugmentedClassifier(ClassifierMixin, BaseEstimator):
    """Train a classifier on the union of systematic-variation tables.

    Parameters
    ----------
    estimator : estimator, optional
        Binary classifier to train (cloned); default
        :class:`~analysis_lib.training.XGBoostClassifier` ``()``.
    features : sequence of str, optional
        Feature columns; default: every column except ``label_column`` and
        ``weight_column``.
    label_column : str, default "label"
    weight_column : str or None, default "weight"
        Event weights column; every table must have it. None: unit weights.
    mixing : dict of str -> float, optional
        Share of each variation (see the module notes); default equal shares.
    mixing_mode : {"weight", "sample"}, default "weight"
    random_state : int, default 0
        Seed of ``mixing_mode="sample"``.

    Attributes
    ----------
    estimator_ : estimator
    variations_ : list of str
        The variations trained on.
    mixing_ : dict
        The normalised shares.
    n_training_events_ : dict
        Events used from each variation.
    n_features_in_, feature_names_in_, classes_
    """

    def __init__(
        self,
        estimator: Any = None,
        features: Sequence[str] | None = None,
        label_column: str = "label",
        weight_column: str | None = "weight",
        mixing: Mapping[str, float] | None = None,
        mixing_mode: str = "weight",
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.features = features
        self.label_column = label_column
        self.weight_column = weight_column
        self.mixing = mixing
        self.mixing_mode = mixing_mode
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> VariationAugmentedClassifier:
        """Train on ``X``, a mapping ``{variation: table}`` (e.g. :func:`label_tables`).

        ``y`` and ``sample_weight`` default to the label and weight columns; otherwise
        they are mappings ``{variation: array}``.
        """
        if self.mixing_mode not in MIXING_MODES:
            raise TrainingInputError(
                f"mixing_mode must be one of {MIXING_MODES}, got {self.mixing_mode!r}"
            )
        frames = check_tables(X)
        exclude = [self.label_column, self.weight_column]
        cols = feature_columns(frames, self.features, exclude)
        mixing = normalise_mixing(self.mixing, list(frames))
        ys, ws = labels_and_weights(frames, y, sample_weight, self.label_column, self.weight_column)
        parts_x, parts_y, parts_w, counts = [], [], [], {}
        rng = np.random.default_rng(self.random_state)
        target = max(len(frames[name]) for name in mixing)
        for name, share in mixing.items():
            values, _ = inputs.feature_matrix(frames[name][cols], name=f"table {name!r}")
            yv, wv = ys[name], ws[name]
            if self.mixing_mode == "weight":
                total = wv.sum()
                if not total > 0:
                    raise TrainingInputError(f"table {name!r} has total weight {total!r} <= 0")
                wv = wv * share / total
            else:
                n = max(1, round(share * target))
                rows = rng.choice(len(yv), size=n, replace=n > len(yv))
                values, yv, wv = values[rows], yv[rows], wv[rows]
            parts_x.append(values)
            parts_y.append(yv)
            parts_w.append(wv)
            counts[name] = len(yv)
        Xall = pd.DataFrame(np.concatenate(parts_x), columns=cols)
        yall = np.concatenate(parts_y)
        inputs.labels(yall, len(yall))  # both classes present overall
        base = self.estimator if self.estimator is not None else _default_estimator()
        self.estimator_ = clone(base).fit(Xall, yall, sample_weight=np.concatenate(parts_w))
        self.variations_ = list(mixing)
        self.mixing_ = mixing
        self.n_training_events_ = counts
        self.feature_names_in_ = np.asarray(cols, dtype=object)
        self.n_features_in_ = len(cols)
        self.classes_ = np.array([0, 1])
        return self

    def _features(self, X: Any) -> Any:
        check_is_fitted(self, "estimator_")
        return select_features(X, list(self.feature_names_in_), owner=type(self).__name__)

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Class probabilities; a table's extra columns (label, weight, ...) are ignored."""
        features = self._features(X)  # first: NotFittedError before fit
        return self.estimator_.predict_proba(features)

    def predict(self, X: Any) -> NDArray[np.int64]:
        """1 where the signal probability is at least 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def decision_function(self, X: Any) -> NDArray[np.float64]:
        """The log-odds."""
        features = self._features(X)
        return self.estimator_.decision_function(features)

    def score_tables(self, tables: Mapping[str, Any]) -> dict[str, NDArray[np.float64]]:
        """Signal probability for every row of every variation table."""
        frames = check_tables(tables)
        return {name: self.predict_proba(frame)[:, 1] for name, frame in frames.items()}


def _default_estimator() -> Any:
    from .xgboost_classifier import XGBoostClassifier

    return XGBoostClassifier()
