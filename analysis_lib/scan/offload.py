"""Training one model away from the notebook: on a (GPU) worker, or across the cluster.

:func:`fit_remote` runs ``clone(estimator).fit(X, y)`` as one Dask task, optionally on a
worker with given resources (e.g. ``{"GPU": 1}``), and returns the fitted estimator.
:func:`fit_xgboost_dask` trains one XGBoost model with :mod:`xgboost.dask` on Dask arrays
or data frames spread over all workers (for data larger than one worker's memory) and
returns a plain :class:`xgboost.XGBClassifier` / :class:`xgboost.XGBRegressor`.

Examples
--------
>>> import numpy as np
>>> from distributed import Client, LocalCluster
>>> from sklearn.linear_model import LogisticRegression
>>> X = np.r_[np.zeros((10, 1)), np.ones((10, 1))]; y = np.r_[np.zeros(10), np.ones(10)]
>>> with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster, \\
...         Client(cluster) as client:
...     model = fit_remote(LogisticRegression(), X, y, client=client)
>>> model.predict([[0.0], [1.0]]).tolist()
[0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .objective import is_estimator
from .placement import warn_if_unplaceable

__all__ = ["fit_remote", "fit_xgboost_dask"]


def _fit(estimator: Any, X: Any, y: Any, sample_weight: Any) -> Any:
    from sklearn.base import clone

    model = clone(estimator)
    if sample_weight is None:
        return model.fit(X, y)
    return model.fit(X, y, sample_weight=sample_weight)


def fit_remote(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    client: Any = None,
    sample_weight: Any = None,
    resources: Mapping[str, float] | None = None,
) -> Any:
    """Fit a clone of ``estimator`` on one Dask worker and return it fitted.

    Parameters
    ----------
    estimator : estimator
        scikit-learn style, picklable.
    X, y, sample_weight : array-like
        Training data (scattered to the chosen worker, not embedded in the task).
    client : distributed.Client, optional
        Default: the current client.
    resources : dict, optional
        Worker resources the task needs, e.g. ``{"GPU": 1}``; warns
        (:class:`~analysis_lib.scan.placement.NoMatchingWorkerWarning`) when no worker
        offers them yet, then waits for one.
    """
    from distributed import get_client

    client = client if client is not None else get_client()
    if resources is not None and not isinstance(resources, Mapping):
        raise TypeError(f"resources must be a dict such as {{'GPU': 1}}, got {resources!r}")
    if not is_estimator(estimator):
        raise TypeError(
            f"fit_remote needs a scikit-learn style estimator (fit, get_params, set_params), "
            f"got {estimator!r}"
        )
    warn_if_unplaceable(client, resources, "the fit")
    parts = client.scatter([X, y, sample_weight], hash=False)
    future = client.submit(_fit, estimator, *parts, pure=False, resources=resources)
    try:
        return future.result()
    finally:
        future.release()
        for part in parts:
            part.release()


def fit_xgboost_dask(
    X: Any,
    y: Any,
    *,
    client: Any = None,
    sample_weight: Any = None,
    task: str = "classification",
    **params: Any,
) -> Any:
    """Train one XGBoost model over all workers with :mod:`xgboost.dask`.

    Parameters
    ----------
    X, y, sample_weight : dask array or dask data frame
        Partitioned data; each worker trains on its own partitions.
    client : distributed.Client, optional
        Default: the current client.
    task : {"classification", "regression"}
        Which estimator to train.
    **params
        XGBoost parameters (``n_estimators``, ``max_depth``, ``device="cuda"`` on GPUs...).

    Returns
    -------
    xgboost.XGBClassifier or xgboost.XGBRegressor
        A local model, usable on in-memory data.
    """
    import xgboost
    from dask import is_dask_collection
    from distributed import get_client
    from xgboost import dask as dxgb

    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    for name, value in (("X", X), ("y", y), ("sample_weight", sample_weight)):
        if value is not None and not is_dask_collection(value):
            raise TypeError(
                f"{name} must be a dask array or data frame (partitions train on their "
                f"workers), got {type(value).__name__}: wrap in-memory data with "
                "dask.array.from_array(...) or dask.dataframe.from_pandas(...), or fit it on "
                "one worker with fit_remote"
            )
    client = client if client is not None else get_client()
    cls = dxgb.DaskXGBClassifier if task == "classification" else dxgb.DaskXGBRegressor
    model = cls(**params)
    model.client = client
    model.fit(X, y, sample_weight=sample_weight)
    local_cls = xgboost.XGBClassifier if task == "classification" else xgboost.XGBRegressor
    local = local_cls(**params)
    local.load_model(model.get_booster().save_raw(raw_format="ubj"))
    return local
