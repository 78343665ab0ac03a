"""analysis_lib.scan on a real local Dask cluster (2 worker processes, 1 thread each).

Executions are counted through side-effect files that the objective writes, one per
execution, so "recomputes 0 trials" and "each grid point once" are observed, not assumed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

from analysis_lib.scan import (
    Categorical,
    Float,
    Int,
    NoMatchingWorkerWarning,
    SchedulerLostError,
    StoreMismatchError,
    TqdmProgress,
    TrialPruned,
    WidgetProgress,
    fit_remote,
    fit_xgboost_dask,
    load_scan,
    scan,
)
from analysis_lib.scan.shipping import load_count


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env={"OMP_NUM_THREADS": "1"},
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def counted(params, data, trial):
    """Writes one file per execution into data['log'], returns a quadratic."""
    log = Path(data["log"])
    name = "_".join(f"{k}={params[k]}" for k in sorted(params))
    (log / f"{name}__{uuid.uuid4().hex}").write_text(json.dumps(params))
    time.sleep(data.get("sleep", 0.0))
    if params.get("kind") == "bad":
        raise ZeroDivisionError("the objective itself failed")
    return (params["x"] - 0.3) ** 2 + params.get("n", 0)


def executions(log: Path) -> list[str]:
    return sorted(p.name.split("__")[0] for p in log.iterdir())


SPACE = {"x": Float(-1.0, 1.0), "n": Int(0, 3)}


def run(tmp_path, client, *, store="store", **kwargs):
    log = tmp_path / "log"
    log.mkdir(exist_ok=True)
    kwargs.setdefault("space", SPACE)
    kwargs.setdefault("n_trials", 8)
    kwargs.setdefault("seed", 7)
    kwargs.setdefault("progress", False)
    result = scan(
        counted,
        kwargs.pop("space"),
        store=tmp_path / store,
        client=client,
        data={"log": str(log), **kwargs.pop("data", {})},
        **kwargs,
    )
    return result, log


def test_resume_recomputes_no_finished_trial(tmp_path, client):
    first, log = run(tmp_path, client, sampler="tpe", n_trials=12)
    assert first.executed == 12
    assert len(executions(log)) == 12
    again, _ = run(tmp_path, client, sampler="tpe", n_trials=12)
    assert again.executed == 0
    with pytest.raises(FileNotFoundError, match="an objective function returns none"):
        again.best_model()
    assert len(executions(log)) == 12  # no new execution
    pd_first = first.to_dataframe()
    pd_again = load_scan(tmp_path / "store").to_dataframe()
    assert pd_again["trial_id"].tolist() == pd_first["trial_id"].tolist()
    # extending the scan runs only the new trials
    more, _ = run(tmp_path, client, sampler="tpe", n_trials=14)
    assert more.executed == 2 and len(executions(log)) == 14
    df = more.to_dataframe()
    assert df["number"].tolist() == list(range(14))
    assert df["trial_id"].is_unique and (df["state"] == "done").all()
    assert (df["attempts"] == 1).all()


def test_resume_after_partial_store(tmp_path, client):
    """Records deleted from the store (an interrupted run) are the only ones rerun."""
    full, log = run(tmp_path, client, sampler="random", n_trials=6)
    trials = sorted((tmp_path / "store" / "trials").glob("*.json"))
    for path in trials[:2]:
        path.unlink()
    again, _ = run(tmp_path, client, sampler="random", n_trials=6)
    assert again.executed == 2
    assert len(executions(log)) == 8
    assert sorted(again.to_dataframe()["trial_id"]) == sorted(full.to_dataframe()["trial_id"])


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_same_seed_same_proposals(tmp_path, client, sampler):
    a, _ = run(tmp_path, client, store="a", sampler=sampler, n_trials=12, seed=3)
    b, _ = run(tmp_path, client, store="b", sampler=sampler, n_trials=12, seed=3)
    c, _ = run(tmp_path, client, store="c", sampler=sampler, n_trials=12, seed=4)
    params = [r["params"] for r in a.records]
    assert params == [r["params"] for r in b.records]
    assert params != [r["params"] for r in c.records]
    assert len({json.dumps(p, sort_keys=True) for p in params}) == 12


def test_grid_each_point_once(tmp_path, client):
    space = {"x": Float(0.0, 1.0, step=0.5), "n": Int(0, 1), "kind": Categorical(["a", "b"])}
    result, log = run(tmp_path, client, sampler="grid", space=space, n_trials=100)
    expected = sorted(
        f"kind={k}_n={n}_x={x}" for k in "ab" for n in (0, 1) for x in (0.0, 0.5, 1.0)
    )
    assert executions(log) == expected  # 12 points, each executed exactly once
    assert len(result.to_dataframe()) == 12
    assert result.best_params == {"x": 0.5, "n": 0, "kind": "a"} or result.best_params == {
        "x": 0.5,
        "n": 0,
        "kind": "b",
    }


def test_small_finite_space_never_repeats(tmp_path, client):
    """TPE over 4 points asked for 10 trials: 4 distinct trials, then it stops."""
    space = {"x": Categorical([0.0, 0.25]), "n": Categorical([0, 1])}
    with pytest.warns(RuntimeWarning, match="only known points"):
        result, log = run(tmp_path, client, sampler="tpe", space=space, n_trials=10)
    assert len(executions(log)) == 4 == len(set(executions(log)))
    assert len(result.to_dataframe()) == 4


def test_failing_trial_recorded_with_traceback(tmp_path, client):
    space = {"x": Float(0.0, 1.0, step=0.5), "kind": Categorical(["ok", "bad"])}
    result, log = run(tmp_path, client, sampler="grid", space=space, n_trials=6)
    df = result.to_dataframe()
    bad = df[df["param_kind"] == "bad"]
    assert len(bad) == 3 and (bad["state"] == "failed").all()
    assert bad["traceback"].str.contains("ZeroDivisionError: the objective itself failed").all()
    assert (bad["attempts"] == 1).all()
    assert (df[df["param_kind"] == "ok"]["state"] == "done").all()
    assert len(executions(log)) == 6  # each failing trial ran exactly once
    # a rerun does not retry recorded failures
    again, _ = run(tmp_path, client, sampler="grid", space=space, n_trials=6)
    assert again.executed == 0 and len(executions(log)) == 6


def test_data_shipped_once_per_worker(tmp_path, client):
    big = np.arange(200_000, dtype=np.float64)  # 1.6 MB: above Dask's "large argument" size

    def uses_data(params, data):
        return float(data["big"][params["i"]])

    from analysis_lib.scan.shipping import data_token

    data = {"big": big}
    result = scan(
        uses_data,
        {"i": Int(0, 15)},
        n_trials=16,
        sampler="grid",
        seed=0,
        store=tmp_path / "s",
        client=client,
        data=data,
        progress=False,
    )
    assert sorted(result.to_dataframe()["value"]) == [float(i) for i in range(16)]
    loads = client.run(load_count, data_token(data))
    assert sorted(loads.values()) == [1, 1], loads
    workers = set(result.to_dataframe()["worker"])
    assert workers <= set(loads)


def slow_learner(params, trial):
    """Reports a curve; bad learning rates give high (worse) values early."""
    value = 1.0
    for step in range(6):
        value = params["lr"] * (6 - step) / 6 + 0.1
        trial.report(value, step)
        if trial.should_prune():
            raise TrialPruned()
        time.sleep(0.02)
    return value


def _leftover_decisions(dask_scheduler):
    return [n for n in dask_scheduler.extensions["variables"].variables if "-decision-" in n]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_median_pruning_on_remote_workers(tmp_path, client):
    # the "distributed" logger does not propagate: listen to it directly
    collect = _Collect()
    logging.getLogger("distributed").addHandler(collect)
    try:
        result = _pruned_scan(
            tmp_path,
            client,
            slow_learner,
            {"lr": Float(0.0, 1.0, step=0.1)},
            n_trials=11,
            sampler="grid",
            seed=0,
            pruner="median",
        )
    finally:
        logging.getLogger("distributed").removeHandler(collect)
    df = result.to_dataframe()
    assert len(df) == 11
    pruned = df[df["state"] == "pruned"]
    assert len(pruned) >= 1, df[["param_lr", "state", "n_reports"]]
    # pruned trials stopped at the latest after their last report (a trial that starts before
    # the pruner has enough finished trials to compare with may be pruned only at its last
    # step); trials started later are compared at once and stop early
    assert (pruned["n_reports"] <= 6).all()
    assert (pruned["n_reports"] < 6).any(), df[["param_lr", "state", "n_reports"]]
    assert pruned["param_lr"].min() > df[df["state"] == "done"]["param_lr"].min()
    assert result.best_params == {"lr": 0.0}
    # reports travel as events and decisions are waited for, not polled: the scheduler
    # logs no failed (timed out) requests, and no decision is left behind
    assert collect.messages == []
    assert client.run_on_scheduler(_leftover_decisions) == []


def _pruned_scan(tmp_path, client, objective, space, *, n_trials, sampler, seed, pruner):
    return scan(
        objective,
        space,
        n_trials=n_trials,
        sampler=sampler,
        seed=seed,
        store=tmp_path / pruner,
        client=client,
        pruner=pruner,
        progress=False,
    )


def reports_without_asking(params, trial):
    for step in range(30):
        trial.report(params["x"] * step, step)
    return params["x"]


def test_reports_alone_leave_nothing_on_the_scheduler(tmp_path, client):
    result = _pruned_scan(
        tmp_path,
        client,
        reports_without_asking,
        {"x": Float(0.0, 1.0)},
        n_trials=4,
        sampler="random",
        seed=3,
        pruner="median",
    )
    assert result.counts()["done"] == 4
    assert (result.to_dataframe()["n_reports"] == 30).all()
    # only questions (should_prune) get an answer variable: none here
    assert client.run_on_scheduler(_leftover_decisions) == []


def test_successive_halving_pruner_runs(tmp_path, client):
    result = _pruned_scan(
        tmp_path,
        client,
        slow_learner,
        {"lr": Float(0.0, 1.0)},
        n_trials=8,
        sampler="random",
        seed=1,
        pruner="successive_halving",
    )
    counts = result.counts()
    assert counts["done"] + counts["pruned"] == 8 and counts["failed"] == 0
    assert counts["pruned"] >= 1


def test_estimator_scan_and_best_model(tmp_path, client):
    from sklearn.metrics import roc_auc_score
    from xgboost import XGBClassifier

    from analysis_lib.scan import reuse
    from analysis_lib.scan.objective import as_objective

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=600) > 0).astype(int)
    before = client.run(reuse.counts)
    result = scan(
        XGBClassifier(n_estimators=20, n_jobs=1, tree_method="hist"),
        {"max_depth": Int(1, 4), "learning_rate": Float(0.05, 0.5, log=True)},
        n_trials=6,
        sampler="random",
        seed=2,
        store=tmp_path / "est",
        client=client,
        data=(X, y),
        scoring="roc_auc",
        progress=False,
    )
    assert result.direction == "maximize"
    df = result.to_dataframe()
    assert (df["state"] == "done").all() and len(df) == 6
    model = result.best_model()
    assert isinstance(model, XGBClassifier)
    assert model.get_params()["max_depth"] == result.best_params["max_depth"]
    assert roc_auc_score(y, model.predict_proba(X)[:, 1]) > 0.8
    assert result.best_value == df["value"].max()
    # each worker split the data and binned the training part once (its first trial), and
    # every trial scored exactly what a plain fit of the same parameters scores here
    after = client.run(reuse.counts)
    hits = sum(after[w]["matrix_hits"] - before[w]["matrix_hits"] for w in after)
    misses = sum(after[w]["matrix_misses"] - before[w]["matrix_misses"] for w in after)
    assert hits + misses == 6 and misses == df["worker"].nunique()
    assert all(c["kept"] == 0 for c in after.values())  # cleared when the scan ended
    plain = as_objective(
        XGBClassifier(n_estimators=20, n_jobs=1, tree_method="hist"),
        scoring="roc_auc",
        seed=2,
        reuse=False,
    )
    for record in result.records:
        assert record["value"] == plain(dict(record["params"]), (X, y), None)[0]


def test_estimator_scan_cv(tmp_path, client):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    result = scan(
        LogisticRegression(),
        {"C": Float(1e-3, 10.0, log=True)},
        n_trials=3,
        sampler="random",
        seed=0,
        store=tmp_path / "cv",
        client=client,
        data={"X": X, "y": y},
        cv=3,
        scoring="accuracy",
        progress=False,
    )
    assert len(result.to_dataframe()) == 3
    assert result.best_value > 0.9
    assert pytest.approx(result.best_params["C"]) == result.best_model().C


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"space": {}}, ValueError, "search space is empty"),
        ({"sampler": "annealing"}, ValueError, "unknown sampler 'annealing'"),
        ({"n_trials": 0}, ValueError, "n_trials must be a positive int, got 0"),
        ({"n_trials": -3}, ValueError, "got -3"),
        ({"sampler": "grid"}, ValueError, "parameter 'x' is continuous"),
        ({"pruner": "hyperband"}, ValueError, "unknown pruner 'hyperband'"),
        ({"direction": "up"}, ValueError, "direction must be"),
        ({"space": {"x": "abc"}}, TypeError, "parameter 'x' must be Int"),
        ({"space": {"x": (0.0, 1.0)}}, TypeError, r"write Float\(0\.0, 1\.0\) or Int"),
        ({"resources": {"GPU": -1}}, ValueError, "resources must map"),
        # these once claimed the store first, so the corrected call met a mismatch
        ({"seed": "1"}, ValueError, "seed must be a whole number >= 0 or None, got '1'"),
        ({"seed": -1}, ValueError, "seed must be a whole number >= 0 or None, got -1"),
        # a negative lag spun forever; a string failed in arithmetic
        ({"history_lag": -3}, ValueError, "history_lag must be a whole number >= 0"),
        ({"history_lag": "4"}, ValueError, "history_lag must be a whole number >= 0"),
    ],
)
def test_bad_input(tmp_path, client, kwargs, error, match):
    with pytest.raises(error, match=match):
        run(tmp_path, client, **kwargs)
    assert not (tmp_path / "store").exists()  # nothing written before validation


def test_an_unseeded_scan_resumes_too(tmp_path, client):
    """Without a seed the sampler's seed is drawn once and kept: the same call again runs
    nothing (it used to run n_trials new trials, numbered 0, 0, 1, 1, ...)."""
    first, log = run(tmp_path, client, sampler="tpe", n_trials=4, seed=None)
    again, _ = run(tmp_path, client, sampler="tpe", n_trials=4, seed=None)
    assert first.executed == 4 and again.executed == 0 and len(executions(log)) == 4
    more, _ = run(tmp_path, client, sampler="tpe", n_trials=5, seed=None)
    assert more.executed == 1
    assert more.to_dataframe()["number"].tolist() == list(range(5))
    assert run(tmp_path, client, store="np", sampler="random", n_trials=1, seed=np.int64(3))[0]


def test_an_edited_objective_is_another_scan(tmp_path, client):
    """Functions of one name with other bodies or closures reused each other's results."""

    def make(shift):
        return lambda params: (params["x"] - shift) ** 2

    space = {"x": Float(-1.0, 1.0)}
    common = {"n_trials": 2, "seed": 1, "client": client, "progress": False}
    scan(make(0.0), space, store=tmp_path / "s", **common)
    with pytest.raises(StoreMismatchError, match="objective_code"):
        scan(make(0.5), space, store=tmp_path / "s", **common)
    with pytest.raises(StoreMismatchError, match="objective_code"):
        scan(lambda params: -params["x"], space, store=tmp_path / "s", **common)
    assert scan(make(0.0), space, store=tmp_path / "s", **common).executed == 0


def test_settings_are_recorded_without_memory_addresses(tmp_path, client):
    """A partial objective or an Optuna pruner object made the store unusable in a new
    session: their repr held a memory address."""
    import functools

    import optuna

    run(tmp_path, client, sampler="random", n_trials=2, pruner=optuna.pruners.MedianPruner())
    meta = json.loads((tmp_path / "store" / "scan.json").read_text())
    assert "0x" not in meta["pruner"] and "MedianPruner" in meta["pruner"]
    from analysis_lib.scan.objective import FunctionObjective

    described = FunctionObjective(functools.partial(counted, trial=None)).describe()
    assert "0x" not in described and "counted" in described


def test_bad_parameters():
    with pytest.raises(ValueError, match="low=3 is above high=1"):
        Int(3, 1)
    with pytest.raises(ValueError, match="log=True needs low > 0"):
        Float(0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="at least one choice"):
        Categorical([])
    with pytest.raises(TypeError, match=r"Int low must be an int, got 1\.5"):
        Int(1.5, 3)


def test_store_of_another_scan_refused(tmp_path, client):
    run(tmp_path, client, sampler="random", n_trials=2)
    with pytest.raises(StoreMismatchError, match="space: stored"):
        run(tmp_path, client, sampler="random", n_trials=2, space={"x": Float(0.0, 2.0)})
    with pytest.raises(StoreMismatchError, match="seed: stored 7, given 8"):
        run(tmp_path, client, sampler="random", n_trials=2, seed=8)
    with pytest.raises(StoreMismatchError, match="sampler: stored 'random', given 'tpe'"):
        run(tmp_path, client, sampler="tpe", n_trials=2)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        run(tmp_path, client, store="file", n_trials=2)
    # other training data is another scan (the data's token is in the store)
    with pytest.raises(StoreMismatchError, match=r"data: stored \{'token': '[0-9a-f]+'\}, given"):
        run(tmp_path, client, sampler="random", n_trials=2, data={"table": [1, 2, 3]})
    # a store written before the data were recorded still resumes
    meta_path = tmp_path / "store" / "scan.json"
    meta = json.loads(meta_path.read_text())
    del meta["data"], meta["objective_settings"]
    meta_path.write_text(json.dumps(meta))
    again, _ = run(tmp_path, client, sampler="random", n_trials=2)
    assert again.executed == 0


def test_estimator_scan_with_other_fixed_parameters_refused(tmp_path, client):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    data = {"X": X, "y": (X[:, 0] > 0).astype(int)}

    def go(estimator, **kwargs):
        return scan(
            estimator,
            {"C": Float(1e-3, 10.0, log=True)},
            n_trials=2,
            sampler="random",
            seed=0,
            store=tmp_path / "lr",
            client=client,
            data=data,
            progress=False,
            **kwargs,
        )

    assert go(LogisticRegression(max_iter=100, C=5.0)).executed == 2
    # the searched C and where it runs (n_jobs) do not matter: the same scan resumes
    assert go(LogisticRegression(max_iter=100, C=0.1, n_jobs=2)).executed == 0
    with pytest.raises(StoreMismatchError, match=r"objective_settings: stored .*'max_iter': 100"):
        go(LogisticRegression(max_iter=300))
    with pytest.raises(StoreMismatchError, match=r"'validation_fraction': 0\.25"):
        go(LogisticRegression(max_iter=100), validation_fraction=0.5)


def test_estimator_without_data_refused(tmp_path, client):
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ValueError, match="needs data"):
        scan(LogisticRegression(), {"C": Float(0.1, 1)}, n_trials=1, store=tmp_path / "x",
             client=client)  # fmt: skip


def test_progress_displays(tmp_path, client):
    widget = WidgetProgress(redraw_s=0)
    result, _ = run(tmp_path, client, sampler="random", n_trials=5, progress=widget)
    best = result.best_trial
    assert "done 5/5" in widget.label.value and "running 0" in widget.label.value
    assert f"best {best['value']:.6g} (trial {best['number']})" in widget.label.value
    assert len(widget.points("done")) == 5
    assert widget.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    lines = widget.axes.get_lines()
    assert sorted(lines[0].get_ydata()) == sorted(result.to_dataframe()["value"])

    bar = TqdmProgress(file=open(os.devnull, "w"))  # noqa: SIM115 - closed with the bar
    run(tmp_path, client, store="t", sampler="random", n_trials=3, progress=bar)
    assert bar.bar.n == 3 and bar.bar.total == 3


def test_fit_remote_returns_fitted_estimator(client):
    from sklearn.linear_model import LogisticRegression

    X = np.r_[np.zeros((20, 1)), np.ones((20, 1))]
    y = np.r_[np.zeros(20), np.ones(20)]
    unfitted = LogisticRegression(C=2.0)
    model = fit_remote(unfitted, X, y, client=client)
    assert model is not unfitted and not hasattr(unfitted, "coef_")
    assert model.predict([[0.0], [1.0]]).tolist() == [0.0, 1.0]
    # a resource no worker has: the task would wait forever; the check is on the type only
    with pytest.raises(TypeError, match="resources must be a dict"):
        fit_remote(unfitted, X, y, client=client, resources="GPU")
    with pytest.raises(TypeError, match=r"needs a scikit-learn style estimator .* got 'lr'"):
        fit_remote("lr", X, y, client=client)


def test_fit_xgboost_dask_over_partitions(client):
    import dask.array as da
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    X = rng.normal(size=(4000, 5))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    dX = da.from_array(X, chunks=(1000, 5))
    dy = da.from_array(y, chunks=1000)
    model = fit_xgboost_dask(dX, dy, client=client, n_estimators=20, max_depth=3, nthread=1)
    assert roc_auc_score(y, model.predict_proba(X)[:, 1]) > 0.95
    assert model.n_classes_ == 2
    # in-memory data: told how to partition it (xgboost.dask's own error names no argument)
    with pytest.raises(TypeError, match=r"^X must be a dask array .* got ndarray"):
        fit_xgboost_dask(X, dy, client=client)
    with pytest.raises(TypeError, match=r"^y must be a dask array .* got ndarray"):
        fit_xgboost_dask(dX, y, client=client)


@contextlib.contextmanager
def spec_cluster(**workers):
    """A cluster of in-process workers given by their options, and its client."""
    from distributed import Scheduler, SpecCluster, Worker

    specs = {name: {"cls": Worker, "options": options} for name, options in workers.items()}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    with SpecCluster(workers=specs, scheduler=scheduler) as cluster, Client(cluster) as c:
        c.wait_for_workers(len(specs))
        yield cluster, c


def gpu_workers(client) -> set[str]:
    info = client.scheduler_info()["workers"]
    return {a for a, w in info.items() if w.get("resources", {}).get("GPU")}


def grid_scan_on_gpus(client, store, n):
    """Trials 0..n-1, each asking for one GPU; their values are the trial's x."""
    return scan(
        lambda params: params["x"],
        {"x": Int(0, n - 1)},
        n_trials=n,
        sampler="grid",
        seed=0,
        store=store,
        client=client,
        resources={"GPU": 1},
        progress=False,
    )


def test_resources_put_trials_on_matching_workers(tmp_path):
    """``resources={"GPU": 1}``: every trial runs on the one worker that advertises a GPU."""
    one_gpu = {"nthreads": 1, "resources": {"GPU": 1}}
    with spec_cluster(cpu={"nthreads": 1}, gpu=one_gpu) as (_, c):
        gpu = gpu_workers(c)
        assert len(gpu) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error", NoMatchingWorkerWarning)  # a GPU worker is there
            result = grid_scan_on_gpus(c, tmp_path / "gpu", 6)
        assert set(result.to_dataframe()["worker"]) == gpu


def test_unplaceable_resources_are_named(client):
    from analysis_lib.scan.placement import warn_if_unplaceable

    with pytest.warns(NoMatchingWorkerWarning, match=r"2 worker\(s\), offering no resources"):
        assert warn_if_unplaceable(client, {"GPU": 1}, "the fit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_unplaceable(client, None, "the fit")


def test_trials_needing_a_gpu_warn_and_wait_for_a_gpu_worker(tmp_path):
    """No worker offers ``GPU``: the scan says so, then its trials run on the GPU worker
    that joins later (a separate ``dask worker`` process, as a batch job would start)."""
    with spec_cluster(cpu={"nthreads": 1}) as (cluster, c):
        command = [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address]
        command += ["--nthreads", "1", "--no-nanny", "--resources", "GPU=1"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        late = threading.Timer(1.0, lambda: started.append(subprocess.Popen(command, env=env)))
        started: list[subprocess.Popen] = []
        late.start()
        try:
            with pytest.warns(NoMatchingWorkerWarning, match=r"offers \{'GPU': 1\} \(1 worker"):
                result = grid_scan_on_gpus(c, tmp_path / "wait", 4)
            gpu = gpu_workers(c)
            assert len(gpu) == 1
            assert set(result.to_dataframe()["worker"]) == gpu
            assert sorted(result.to_dataframe()["value"]) == [0.0, 1.0, 2.0, 3.0]
        finally:
            late.join()
            for proc in started:
                proc.terminate()
                proc.wait(timeout=30)


def test_shared_path_read_once_per_worker(tmp_path, client):
    import pandas as pd

    from analysis_lib.scan import SharedPath
    from analysis_lib.scan.shipping import data_token

    path = tmp_path / "table.parquet"
    pd.DataFrame({"a": np.arange(100.0)}).to_parquet(path)
    shared = SharedPath(str(path))

    def total(params, data):
        return float(data["a"].iloc[params["i"]])

    result = scan(
        total,
        {"i": Int(0, 9)},
        n_trials=10,
        sampler="grid",
        seed=0,
        store=tmp_path / "s",
        client=client,
        data=shared,
        progress=False,
    )
    assert sorted(result.to_dataframe()["value"]) == [float(i) for i in range(10)]
    loads = client.run(load_count, data_token(shared))
    used = set(result.to_dataframe()["worker"])
    assert all(loads[w] == 1 for w in used) and all(v <= 1 for v in loads.values()), loads
    missing = SharedPath(str(tmp_path / "moved.parquet"))
    with pytest.raises(FileNotFoundError, match=r"SharedPath '.*moved\.parquet': no such file"):
        scan(total, {"i": Int(0, 9)}, n_trials=1, store=tmp_path / "m", client=client,
             data=missing, progress=False)  # fmt: skip
    assert not (tmp_path / "m").exists()  # refused before the store was claimed


def test_tpe_resume_after_interruption_replays_model_based_proposals(tmp_path, client):
    """history_lag=2: trials 12+ come from TPE's model; losing them re-proposes the same."""
    full, log = run(tmp_path, client, sampler="tpe", n_trials=14, history_lag=2)
    df = full.to_dataframe()
    store = tmp_path / "store"
    for tid in df[df["number"] >= 11]["trial_id"]:
        (store / "trials" / f"{tid}.json").unlink()
        (store / "models" / f"{tid}.pkl").unlink(missing_ok=True)
    again, _ = run(tmp_path, client, sampler="tpe", n_trials=14, history_lag=2)
    assert again.executed == 3 and len(executions(log)) == 17
    assert again.to_dataframe()["trial_id"].tolist() == df["trial_id"].tolist()
    with pytest.raises(StoreMismatchError, match="history_lag: stored 2, given 3"):
        run(tmp_path, client, sampler="tpe", n_trials=14, history_lag=3)


def test_two_scans_at_once_with_the_same_data(tmp_path, client):
    """Each scan ships the data under its own plugin; the first to end leaves them in place."""
    from concurrent.futures import ThreadPoolExecutor

    from analysis_lib.scan.shipping import data_token, has_data

    data = {"log": str(tmp_path / "log"), "sleep": 0.05}
    (tmp_path / "log").mkdir()

    def one(name, n):
        return scan(counted, SPACE, n_trials=n, sampler="random", seed=len(name),
                    store=tmp_path / name, client=client, data=data, progress=False)  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        short, long = pool.submit(one, "a", 3), pool.submit(one, "bb", 12)
        results = short.result(), long.result()
    assert [r.counts()["done"] for r in results] == [3, 12]
    assert len(executions(tmp_path / "log")) == 15
    # both plugins gone: the workers dropped the data
    assert not any(client.run(has_data, data_token(data)).values())


def test_shipped_data_serve_several_scans(tmp_path, client):
    """ship() once: scans use the workers' copy (each worker process receives it once, a
    restarted worker again), it outlives the scans and goes with release()."""
    import os
    import pickle

    from analysis_lib.scan import ship
    from analysis_lib.scan.shipping import has_data

    def uses_data(params, data):
        return float(data["big"][params["i"]])

    def grid(name, **kwargs):
        return scan(uses_data, {"i": Int(0, 7)}, n_trials=8, sampler="grid", seed=0,
                    store=tmp_path / name, progress=False, **kwargs)  # fmt: skip

    data = {"big": np.arange(200_000, dtype=np.float64) * 2.0, "kind": "shipped"}
    expected = [2.0 * i for i in range(8)]
    shipped = ship(data, client=client)
    try:
        assert not shipped.released and shipped.token in repr(shipped)
        first = grid("first", data=shipped)  # the client comes from the handle
        assert sorted(first.to_dataframe()["value"]) == expected
        assert sorted(client.run(load_count, shipped.token).values()) == [1, 1]
        assert all(client.run(has_data, shipped.token).values())  # still there

        pids = client.run(os.getpid)
        restarted = sorted(pids)[0]
        client.restart_workers([restarted])
        client.wait_for_workers(2, timeout=60)
        new_pids = client.run(os.getpid)
        assert set(new_pids.values()) != set(pids.values())
        second = grid("second", data=shipped, client=client)
        assert sorted(second.to_dataframe()["value"]) == expected
        assert second.executed == 8
        # every worker process (the new one too) got the data exactly once
        assert sorted(client.run(load_count, shipped.token).values()) == [1, 1]

        with (
            LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as other,
            Client(other, set_as_default=False) as other_client,
            pytest.raises(ValueError, match="shipped to the cluster at"),
        ):
            grid("other", data=shipped, client=other_client)
        with pytest.raises(ValueError, match="already shipped"):
            ship(shipped, client=client)
        with pytest.raises(TypeError, match="handle"):
            pickle.dumps(shipped)
    finally:
        shipped.release()
    assert shipped.released
    assert not any(client.run(has_data, shipped.token).values())
    with pytest.raises(ValueError, match="released"):
        grid("late", data=shipped, client=client)
    with pytest.raises(ValueError, match="data is None"):
        ship(None, client=client)


def test_a_lost_scheduler_ends_the_scan_and_keeps_the_finished_trials(tmp_path):
    """The scan waited forever once its client had given up reconnecting."""

    def slow(params):
        time.sleep(0.3)
        return params["x"]

    cluster = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    client = Client(cluster, timeout=2)
    stop = threading.Timer(1.5, cluster.close)
    stop.start()
    started = time.monotonic()
    try:
        with pytest.raises(
            SchedulerLostError, match=r"lost the Dask scheduler .* kept in the store"
        ):
            scan(slow, {"x": Float(0, 1)}, n_trials=100, seed=1, store=tmp_path / "s",
                 client=client, progress=False)  # fmt: skip
    finally:
        stop.cancel()
        client.close()
        cluster.close()
    assert time.monotonic() - started < 60
    assert load_scan(tmp_path / "s").counts()["done"] >= 1


def test_a_damaged_record_is_set_aside_and_its_trial_run_again(tmp_path, client):
    """One empty trials/*.json (a crash mid-write on a network file system) made the store
    unreadable, naming no file."""
    first, log = run(tmp_path, client, sampler="random", n_trials=4)
    damaged = sorted((tmp_path / "store" / "trials").glob("*.json"))[0]
    damaged.write_text("")
    with pytest.warns(RuntimeWarning, match=f"damaged trial record .*{damaged.name}"):
        assert len(load_scan(tmp_path / "store").records) == 3
    assert damaged.with_suffix(".damaged").exists() and not damaged.exists()
    other = sorted((tmp_path / "store" / "trials").glob("*.json"))[0]
    other.write_text('{"trial_id": ')  # found by the resume itself
    with pytest.warns(RuntimeWarning, match=f"damaged trial record .*{other.name}"):
        again, _ = run(tmp_path, client, sampler="random", n_trials=4)
    assert again.executed == 2 and len(executions(log)) == 6
    assert sorted(r["trial_id"] for r in again.records) == sorted(
        r["trial_id"] for r in first.records
    )


def returns_what_it_is_told(params):
    return {"none": None, "text": "0.5", "bool": True, "numpy": np.float32(0.25)}[params["kind"]]


def test_an_objective_must_return_a_number(tmp_path, client):
    """None was recorded as a float() TypeError; "0.5" and True were taken as values."""
    result = scan(
        returns_what_it_is_told,
        {"kind": ["none", "text", "bool", "numpy"]},
        n_trials=4,
        sampler="grid",
        store=tmp_path / "s",
        client=client,
        progress=False,
    )
    by_kind = {r["params"]["kind"]: r for r in result.records}
    for kind, shown in (("none", "None"), ("text", "'0.5'"), ("bool", "True")):
        assert by_kind[kind]["state"] == "failed"
        assert f"the objective returned {shown}, not a number" in by_kind[kind]["error"]
    assert by_kind["numpy"]["state"] == "done" and by_kind["numpy"]["value"] == 0.25


def test_an_objective_that_cannot_reach_the_workers_is_named_up_front(tmp_path, client):
    lock = threading.Lock()

    def locked(params):
        with lock:
            return params["x"]

    with pytest.raises(TypeError, match=r"objective .*locked cannot be sent to the Dask workers"):
        scan(locked, {"x": Float(0, 1)}, n_trials=2, seed=1, store=tmp_path / "s",
             client=client, progress=False)  # fmt: skip
    assert not (tmp_path / "s").exists()  # nothing written


def test_a_failing_callback_is_named(tmp_path, client):
    def bookkeeping(record):
        raise KeyError("best")

    with pytest.raises(RuntimeError, match=r"callback .*bookkeeping failed on trial \d+: KeyErr"):
        run(tmp_path, client, sampler="random", n_trials=3, callbacks=[bookkeeping])
    assert load_scan(tmp_path / "store").counts()["done"] >= 1  # what finished is kept


def fails_while_marked(params, data):
    if Path(data["marker"]).exists():
        raise MemoryError("a transient failure")
    return params["x"]


def test_failed_trials_run_again_on_resume_when_asked_and_given_up_ones_always(tmp_path, client):
    """A failure that was not the trial's fault (or one fixed since) stayed failed forever:
    a resume never ran those trials again."""
    marker = tmp_path / "marker"
    marker.touch()
    common = {"n_trials": 3, "seed": 2, "store": tmp_path / "s", "client": client,
              "data": {"marker": str(marker)}, "progress": False}  # fmt: skip
    space = {"x": Float(0, 1)}
    assert scan(fails_while_marked, space, **common).counts()["failed"] == 3
    marker.unlink()
    assert scan(fails_while_marked, space, **common).executed == 0  # the default keeps them
    again = scan(fails_while_marked, space, retry_failed=True, **common)
    assert again.executed == 3 and again.counts()["done"] == 3
    # a trial the scan gave up on (workers lost max_retries times) runs again on resume
    path = sorted((tmp_path / "s" / "trials").glob("*.json"))[0]
    record = json.loads(path.read_text())
    record.update(state="failed", value=None, infrastructure=True,
                  error="gave up after 4 attempts: KilledWorker(...)")  # fmt: skip
    path.write_text(json.dumps(record))
    resumed = scan(fails_while_marked, space, **common)
    assert resumed.executed == 1 and resumed.counts()["done"] == 3


def test_keeping_models_on_resume_fits_the_trials_that_kept_none(tmp_path, client):
    """A scan run with keep_models=False and resumed with True left best_model() failing:
    the done trials were never fitted again."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    common = {"n_trials": 3, "sampler": "random", "seed": 4, "store": tmp_path / "s",
              "client": client, "data": (X, y), "progress": False}  # fmt: skip
    space = {"C": Float(0.01, 10, log=True)}
    first = scan(LogisticRegression(), space, keep_models=False, **common)
    assert first.executed == 3
    with pytest.raises(FileNotFoundError, match="no model kept"):
        first.best_model()
    assert scan(LogisticRegression(), space, keep_models=False, **common).executed == 0
    again = scan(LogisticRegression(), space, keep_models=True, **common)
    assert again.executed == 3 and again.counts() == {"done": 3, "failed": 0, "pruned": 0}
    assert pytest.approx(again.best_params["C"]) == again.best_model().C
    assert len(list((tmp_path / "s" / "models").glob("*.pkl"))) == 3
    assert scan(LogisticRegression(), space, keep_models=True, **common).executed == 0


def test_data_that_cannot_reach_the_workers_are_named_up_front(tmp_path, client):
    data = {"x": np.arange(3.0), "lock": threading.Lock()}
    with pytest.raises(TypeError, match=r"data of type dict cannot be sent to the Dask workers"):
        scan(lambda p, data: p["x"], {"x": Float(0, 1)}, n_trials=2, seed=1,
             store=tmp_path / "s", client=client, data=data, progress=False)  # fmt: skip
    assert not (tmp_path / "s").exists()  # nothing written
    # what only cloudpickle sends still goes
    result = scan(lambda p, data: data["f"](p["x"]), {"x": Float(0, 1)}, n_trials=2, seed=1,
                  store=tmp_path / "t", client=client, data={"f": lambda v: v * 2},
                  progress=False)  # fmt: skip
    assert result.counts()["done"] == 2
