"""Hyperparameter scans on Dask: resumable, fault-tolerant, reproducible, with live progress.

- :func:`scan` -- run an objective function or a scikit-learn style estimator over a
  search space (:class:`Int`, :class:`Float`, :class:`Categorical`) with Optuna's TPE,
  random or grid sampler, optional pruning, on any :class:`distributed.Client`;
- :func:`load_scan` / :class:`ScanResult` -- the trial store as a table, the best trial and
  its fitted model;
- :func:`ship` -- send a training table to every worker once for several scans;
- :func:`fit_remote` -- fit one estimator on a (GPU) worker; :func:`fit_xgboost_dask` --
  one XGBoost model trained across the cluster.

Examples
--------
>>> import tempfile
>>> from distributed import Client, LocalCluster
>>> from analysis_lib.scan import Float, scan
>>> def objective(params, trial):
...     for step in range(3):
...         trial.report(params["x"] * step, step)
...     return params["x"] ** 2
>>> with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
...                   dashboard_address=":0") as cluster, Client(cluster) as client:
...     with tempfile.TemporaryDirectory() as store:
...         result = scan(objective, {"x": Float(-1, 1)}, n_trials=4, sampler="random",
...                       seed=1, store=store, client=client, progress=False)
...         df = result.to_dataframe()
>>> len(df), set(df["state"]), df["n_reports"].tolist()
(4, {'done'}, [3, 3, 3, 3])
"""

from .offload import fit_remote, fit_xgboost_dask
from .placement import NoMatchingWorkerWarning
from .progress import Progress, TqdmProgress, WidgetProgress
from .result import ScanResult, load_scan
from .runner import SchedulerLostError, scan
from .shipping import SharedPath, ShippedData, ship
from .space import Categorical, Float, Int, SearchSpace
from .store import StoreMismatchError, TrialStore
from .trial import TrialContext, TrialPruned

__all__ = [
    "Categorical",
    "Float",
    "Int",
    "NoMatchingWorkerWarning",
    "Progress",
    "ScanResult",
    "SchedulerLostError",
    "SearchSpace",
    "SharedPath",
    "ShippedData",
    "StoreMismatchError",
    "TqdmProgress",
    "TrialContext",
    "TrialPruned",
    "TrialStore",
    "WidgetProgress",
    "fit_remote",
    "fit_xgboost_dask",
    "load_scan",
    "scan",
    "ship",
]
