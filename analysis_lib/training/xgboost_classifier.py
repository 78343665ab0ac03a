"""A boosted-decision-tree binary classifier (XGBoost) with the scikit-learn contract.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(400, 2)); y = (X[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(int)
>>> clf = XGBoostClassifier(n_estimators=20, validation_fraction=0.25).fit(X, y)
>>> clf.device_, clf.predict_proba(X).shape, bool((clf.predict(X) == y).mean() > 0.85)
('cpu', (400, 2), True)
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .base import BinaryClassifierBase
from .device import resolve_xgboost_device
from .errors import TrainingInputError
from .split import check_fraction, validation_split


class XGBoostClassifier(BinaryClassifierBase):
    """Gradient-boosted trees for signal vs background, weighted, with early stopping.

    Parameters
    ----------
    n_estimators : int, default 200
        Maximum number of boosting rounds.
    max_depth : int, default 4
    learning_rate : float, default 0.1
    subsample, colsample_bytree : float, default 1.0
    min_child_weight : float, default 1.0
    reg_lambda : float, default 1.0
    early_stopping_rounds : int or None, default 10
        Stop when the weighted log-loss on the validation part has not improved for this
        many rounds; the best round is kept (``best_iteration_``). Needs
        ``validation_fraction > 0``.
    validation_fraction : float, default 0.2
        Share of each class held out for early stopping (stratified, seeded with
        ``random_state``); 0 trains on everything for ``n_estimators`` rounds.
    negative_weights : {"abs", "zero", "error", "keep"}, default "abs"
        Policy for negative event weights (:mod:`analysis_lib.training.weights`). XGBoost
        itself refuses negative weights, so ``"keep"`` raises if any remain.
    class_balance : bool, default False
        Scale the weights so signal and background carry the same total.
    allow_nan : bool, default False
        Let NaN features through as XGBoost "missing" values (branches that could not be
        computed); by default NaN is an error. Infinities are always an error.
    device : str, default "auto"
        ``"auto"`` (a GPU if NVML sees one and XGBoost has CUDA), ``"cpu"``, ``"cuda"``,
        ``"cuda:<i>"``; resolved at fit time into ``device_``.
    n_jobs : int, default 1
        CPU threads.
    random_state : int, default 0
        Seed of the validation split and of XGBoost's sampling.
    xgb_params : dict, optional
        Further :class:`xgboost.XGBClassifier` arguments (e.g. ``{"gamma": 1.0}``).

    Attributes
    ----------
    model_ : xgboost.XGBClassifier
        The trained model (predictions use its best iteration).
    device_ : str
        Where it trained.
    best_iteration_ : int or None
        Best boosting round with early stopping.
    evals_result_ : dict
        Validation log-loss per round (empty without validation).
    n_features_in_, feature_names_in_, classes_
        As in scikit-learn.
    """

    _allow_nan_param = True
    #: In a scan trial, reuse the split and the binned matrices (:mod:`analysis_lib.scan.reuse`).
    reuses_trial_data = True

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int = 4,
        learning_rate: float = 0.1,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        early_stopping_rounds: int | None = 10,
        validation_fraction: float = 0.2,
        negative_weights: str = "abs",
        class_balance: bool = False,
        allow_nan: bool = False,
        device: str = "auto",
        n_jobs: int = 1,
        random_state: int = 0,
        xgb_params: dict[str, Any] | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.negative_weights = negative_weights
        self.class_balance = class_balance
        self.allow_nan = allow_nan
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.xgb_params = xgb_params

    def _fit_arrays(self, X: NDArray, y: NDArray, w: NDArray) -> None:
        import xgboost

        if (w < 0).any():
            raise TrainingInputError(
                "XGBoost refuses negative event weights and negative_weights='keep' keeps "
                f"{int((w < 0).sum())} of them; use negative_weights='abs' or 'zero'"
            )
        self.device_ = resolve_xgboost_device(self.device)
        fraction = check_fraction(self.validation_fraction)
        train, val = validation_split(y, fraction, seed=self.random_state)
        w = w / w[train].mean()  # the scale of min_child_weight is "events"
        stopping = self.early_stopping_rounds if val.size else None
        params = dict(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda,
            objective="binary:logistic",
            eval_metric="logloss",
            tree_method="hist",
            early_stopping_rounds=stopping,
            device=self.device_,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            missing=np.nan,
        )
        params.update(self.xgb_params or {})
        model = xgboost.XGBClassifier(**params)
        fit_kwargs: dict[str, Any] = {"sample_weight": w[train], "verbose": False}
        if val.size:
            fit_kwargs["eval_set"] = [(X[val], y[val])]
            fit_kwargs["sample_weight_eval_set"] = [w[val]]
        # in a scan trial the matrices of the same data come from the worker's cache (the
        # module is imported by then; outside a scan it need not be)
        reuse = sys.modules.get("analysis_lib.scan.reuse")
        scoped = reuse is not None and reuse.in_trial_scope()
        with reuse.reuse_matrices(model) if scoped else contextlib.nullcontext():
            model.fit(X[train], y[train], **fit_kwargs)
        self.model_ = model
        self.best_iteration_ = int(model.best_iteration) if stopping else None
        self.evals_result_ = model.evals_result() if val.size else {}

    def _score(self, X: NDArray) -> NDArray[np.float64]:
        return self.model_.predict_proba(X)[:, 1].astype(np.float64)

    def booster(self):
        """The trained :class:`xgboost.Booster`, cut at the best iteration if early-stopped."""
        booster = self.model_.get_booster()
        if self.best_iteration_ is not None:
            booster = booster[: self.best_iteration_ + 1]
        return booster
