"""What a trial evaluates: a plain objective function, or an estimator with a score.

:func:`as_objective` turns the first argument of :func:`~analysis_lib.scan.scan` into a
callable ``(params, data, trial) -> (value, model)``:

* a function ``f(params, *, data=None, trial=None) -> float`` (``data`` and ``trial`` are
  passed only if the function accepts them), the model being ``None``;
* a scikit-learn style estimator: cloned, given ``params`` with ``set_params``, fitted on the
  scan's data and scored on a validation split (or by cross-validation); the model is the
  fitted estimator.

Examples
--------
>>> from sklearn.linear_model import LogisticRegression
>>> import numpy as np
>>> X = np.r_[np.zeros((20, 1)), np.ones((20, 1))]; y = np.r_[np.zeros(20), np.ones(20)]
>>> objective = as_objective(LogisticRegression(), scoring="accuracy", seed=0)
>>> value, model = objective({"C": 1.0}, (X, y), None)
>>> value, model.C
(1.0, 1.0)
>>> as_objective(lambda params: params["x"] ** 2)({"x": 3}, None, None)
(9, None)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .reuse import reuse_matrices, reuses_data, split_once, trial_scope
from .trial import TrialContext

__all__ = ["EstimatorObjective", "FunctionObjective", "as_objective", "is_estimator"]


def is_estimator(obj: Any) -> bool:
    """Whether ``obj`` follows the scikit-learn estimator contract (fit, get/set_params)."""
    return all(callable(getattr(obj, m, None)) for m in ("fit", "get_params", "set_params"))


#: Estimator parameters that choose where and how a model trains, not what it learns.
EXECUTION_PARAMS = frozenset({"n_jobs", "nthread", "device", "verbosity", "verbose"})


def describe_value(value: Any) -> Any:
    """``value`` as JSON keeps it, stable across sessions (no memory addresses).

    >>> describe_value(3), describe_value([1, "a"]), describe_value(len)
    (3, [1, 'a'], 'builtins.len')
    >>> describe_value(object()), describe_value(float("nan"))
    ('<object object>', 'nan')
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON's NaN is not equal to itself
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [describe_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): describe_value(v) for k, v in value.items()}
    if inspect.isroutine(value) or inspect.isclass(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', value)}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def code_digest(fn: Any) -> str | None:
    """A short hash of what a function computes: its byte code and constants, its default
    arguments, the values it closes over, and the same of the functions ``functools.partial``
    wraps or a callable object's ``__call__`` (with the object's attributes).

    Two functions of the same name with other bodies or closures differ (a lambda edited in
    a notebook, ``make(0)`` and ``make(3)`` of one factory); the functions it calls are not
    looked into. None for something without Python code (a builtin).

    Examples
    --------
    >>> code_digest(lambda p: p["x"] ** 2) == code_digest(lambda p: p["x"] ** 2)
    True
    >>> code_digest(lambda p: p["x"] ** 2) == code_digest(lambda p: -p["x"] ** 2)
    False
    """
    h = hashlib.sha256()

    def feed_code(code: types.CodeType) -> None:
        h.update(code.co_code)
        h.update(repr(code.co_names).encode())
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                feed_code(const)
            else:
                h.update(repr(describe_value(const)).encode())

    def feed(obj: Any, depth: int) -> bool:
        if depth > 4:
            return False
        if isinstance(obj, functools.partial):
            h.update(repr(describe_value([list(obj.args), obj.keywords])).encode())
            return feed(obj.func, depth + 1)
        if isinstance(obj, types.MethodType):
            h.update(
                repr(
                    describe_value(
                        vars(obj.__self__) if hasattr(obj.__self__, "__dict__") else None
                    )
                ).encode()
            )
            return feed(obj.__func__, depth + 1)
        code = getattr(obj, "__code__", None)
        if code is None:
            call = vars(type(obj)).get("__call__")  # a callable object's own method
            if isinstance(call, types.FunctionType):
                h.update(repr(describe_value(getattr(obj, "__dict__", None))).encode())
                return feed(call, depth + 1)
            return False
        feed_code(code)
        h.update(repr(describe_value([obj.__defaults__, obj.__kwdefaults__])).encode())
        for cell in obj.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if not (callable(value) and feed(value, depth + 1)):
                h.update(repr(describe_value(value)).encode())
        return True

    return h.hexdigest()[:16] if feed(fn, 0) else None


class FunctionObjective:
    """Wraps ``fn(params, *, data=None, trial=None)`` returning a number.

    With ``reuse``, the call is a trial scope (:func:`~analysis_lib.scan.reuse.trial_scope`):
    the library's XGBoost estimators built inside reuse their binned matrices.
    """

    def __init__(self, fn: Callable[..., Any], *, reuse: bool = True) -> None:
        if not callable(fn):
            raise TypeError(f"the objective must be a function or an estimator, got {fn!r}")
        self.fn = fn
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins
            sig = None
        params = sig.parameters if sig else {}
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self.pass_data = var_kw or "data" in params
        self.pass_trial = var_kw or "trial" in params
        self.reuse = reuse

    def __call__(
        self, params: dict[str, Any], data: Any, trial: TrialContext | None
    ) -> tuple[Any, Any]:
        kwargs = {}
        if self.pass_data:
            kwargs["data"] = data
        if self.pass_trial:
            kwargs["trial"] = trial
        with trial_scope(self.reuse):
            return self.fn(params, **kwargs), None

    def describe(self) -> str:
        """The function's name (its module and qualified name), no memory addresses."""
        fn = self.fn
        if inspect.isroutine(fn):
            return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        return str(describe_value(fn))

    def code(self) -> str | None:
        """:func:`code_digest` of the function: another body is another scan."""
        return code_digest(self.fn)

    def settings(self, searched: Iterable[str]) -> dict[str, Any]:
        """What else fixes a trial's result besides its parameters: nothing known here."""
        return {}


class EstimatorObjective:
    """Fit a clone of ``estimator`` with the trial's parameters and score it.

    Parameters
    ----------
    estimator : estimator
        Anything with ``fit``, ``get_params`` and ``set_params``.
    scoring : str or callable, optional
        A scikit-learn scorer name or ``scorer(estimator, X, y)``; default: the
        estimator's own ``score``. Greater is better.
    cv : int or splitter, optional
        Cross-validate (mean test score) instead of a single validation split; the kept
        model is then refitted on all the data.
    validation_fraction : float
        Share of the data held out for scoring when the data have no ``X_val``/``y_val``.
    seed : int, optional
        Seed of the validation split.
    keep_model : bool
        Return the fitted estimator (stored with the trial).
    reuse : bool
        For XGBoost's scikit-learn models and the library's
        :class:`~analysis_lib.training.XGBoostClassifier`, make the validation split (with
        a ``seed``; once per worker process) and the binned training matrix (once per worker
        thread) and reuse them in later trials (:mod:`~analysis_lib.scan.reuse`); the
        fitted models are the same.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        scoring: str | Callable[..., float] | None = None,
        cv: Any = None,
        validation_fraction: float = 0.25,
        seed: int | None = None,
        keep_model: bool = True,
        reuse: bool = True,
    ) -> None:
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        self.estimator = estimator
        self.scoring = scoring
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.keep_model = keep_model
        self.reuse = reuse

    def describe(self) -> str:
        cls = type(self.estimator)
        return f"{cls.__module__}.{cls.__qualname__}"

    def code(self) -> str | None:
        """None: an estimator is described by its class and parameters (:meth:`settings`)."""
        return None

    def settings(self, searched: Iterable[str]) -> dict[str, Any]:
        """The estimator's parameters the scan does not vary, and the validation share.

        A scan resumed with another fixed parameter (``n_estimators=200`` instead of 100)
        is another scan; the trial store compares these. Where and how verbosely a model
        trains (:data:`EXECUTION_PARAMS`) is left out: a scan may resume on other workers.

        >>> from sklearn.linear_model import LogisticRegression
        >>> fixed = EstimatorObjective(LogisticRegression(max_iter=50)).settings(["C"])
        >>> fixed["params"]["max_iter"], "C" in fixed["params"]
        (50, False)
        """
        skip = set(searched) | EXECUTION_PARAMS
        fixed = {
            name: describe_value(value)
            for name, value in sorted(self.estimator.get_params(deep=False).items())
            if name not in skip
        }
        return {"params": fixed, "validation_fraction": self.validation_fraction}

    def __call__(
        self, params: dict[str, Any], data: Any, trial: TrialContext | None
    ) -> tuple[float, Any]:
        from sklearn.base import clone, is_classifier
        from sklearn.metrics import check_scoring
        from sklearn.model_selection import cross_validate

        parts = split_data(data)
        X, y, w = parts["X"], parts["y"], parts.get("sample_weight")
        model = clone(self.estimator).set_params(**params)
        scorer = check_scoring(model, scoring=self.scoring)
        # XGBoost: the split and the binned training matrix are made once per worker
        reuse = self.reuse and reuses_data(model)
        if self.cv is not None:
            fit_params = {} if w is None else {"sample_weight": w}
            res = cross_validate(model, X, y, cv=self.cv, scoring=scorer, params=fit_params)
            value = float(res["test_score"].mean())
            if self.keep_model:
                _fit(model, X, y, w, reuse)
            return value, (model if self.keep_model else None)
        if "X_val" in parts:
            X_val, y_val, w_val = parts["X_val"], parts["y_val"], parts.get("sample_weight_val")
        else:
            split = split_once(
                [X, y] + ([w] if w is not None else []),
                test_size=self.validation_fraction,
                seed=self.seed,
                stratify=is_classifier(model),
                cache=reuse,
            )
            X, X_val, y, y_val = split[:4]
            w, w_val = (split[4], split[5]) if w is not None else (None, None)
        _fit(model, X, y, w, reuse)
        if w_val is None:
            value = float(scorer(model, X_val, y_val))
        else:
            value = float(scorer(model, X_val, y_val, sample_weight=w_val))
        return value, (model if self.keep_model else None)


def _fit(model: Any, X: Any, y: Any, w: Any, reuse: bool) -> None:
    with trial_scope(reuse), reuse_matrices(model) if reuse else contextlib.nullcontext():
        if w is None:
            model.fit(X, y)
        else:
            model.fit(X, y, sample_weight=w)


def split_data(data: Any) -> dict[str, Any]:
    """``(X, y)``, ``(X, y, sample_weight)`` or a dict with ``X``, ``y``, ... as a dict."""
    if isinstance(data, Mapping):
        parts = dict(data)
    elif isinstance(data, tuple | list) and len(data) in (2, 3):
        parts = dict(zip(("X", "y", "sample_weight")[: len(data)], data, strict=True))
    else:
        raise TypeError(
            "an estimator scan needs data=(X, y), (X, y, sample_weight) or a dict with 'X' "
            f"and 'y' (optionally 'sample_weight', 'X_val', 'y_val'), got {type(data).__name__}"
        )
    missing = [k for k in ("X", "y") if k not in parts]
    if missing or (("X_val" in parts) != ("y_val" in parts)):
        raise ValueError(
            f"estimator scan data lack {missing or ['X_val/y_val pair']}; keys: {sorted(parts)}"
        )
    return parts


def as_objective(
    objective: Any,
    *,
    scoring: Any = None,
    cv: Any = None,
    validation_fraction: float = 0.25,
    seed: int | None = None,
    keep_model: bool = True,
    reuse: bool = True,
) -> FunctionObjective | EstimatorObjective:
    """Wrap a function or an estimator as the callable a trial runs (``reuse``: see
    :class:`EstimatorObjective`)."""
    if is_estimator(objective):
        return EstimatorObjective(
            objective,
            scoring=scoring,
            cv=cv,
            validation_fraction=validation_fraction,
            seed=seed,
            keep_model=keep_model,
            reuse=reuse,
        )
    if scoring is not None or cv is not None:
        raise ValueError("scoring= and cv= apply to estimator scans, not to objective functions")
    return FunctionObjective(objective, reuse=reuse)
