"""Hyperparameter scans: ``analysis_lib.scan`` against a sequential loop and Optuna+Dask.

Sixteen XGBoost trials (``--rows`` x ``--features`` synthetic table, default 50 000 x 20,
``n_estimators=100``, ``max_depth=6``, ``n_jobs=1``, TPE over four regularisation
parameters; fit on 75 %, ROC AUC on 25 %) are run, interleaved ``--repeats`` times, as:

``scan``
    :func:`analysis_lib.scan.scan` on a 2-worker local cluster as a session makes it
    (:func:`analysis_lib.compute.make_cluster`: worker processes with one thread each and
    the Dask server settings of ``hepml.compute.dask-config``), a fresh trial store each
    time, models kept (the default); the table sent to the workers once for all scans
    (:func:`analysis_lib.scan.ship`, timed apart: ``ship_ms``), as Optuna's is scattered
    once;
``sequential``
    the very same 16 parameter sets (those the scan proposed) evaluated one after the
    other in this process by the same objective;
``optuna_dask``
    Optuna with ``optuna_integration.DaskStorage`` on the same cluster: one study, two
    ``study.optimize(n_trials=8)`` tasks, the table broadcast-scattered, running the very
    same 16 parameter sets (enqueued as waiting trials before the clock starts; the
    trials' costs depend on their parameters, by up to +-25 % here);
``optuna_dask_tpe``
    the same, but Optuna's TPE sampler proposes its own 16 points (other parameters, so
    other costs: for information, ``vs_optuna_own_points``);
``sequential_plain``, ``optuna_dask_plain``
    the same two with ``reuse=False``: every trial splits the table and bins XGBoost's
    training matrix again, as a loop or an Optuna objective of plain ``fit`` calls does
    (``scan``, ``sequential`` and ``optuna_dask`` make them once per worker thread,
    :mod:`analysis_lib.scan.reuse`). Every arm starts without a kept split or matrix, as
    a user's first scan of the data does.

Ratios from the medians: ``speedup = sequential / scan`` (target >= 1.9 on 2 cores),
``vs_optuna = optuna_dask / scan`` (target >= 1.0); both compare the same objective, so
they measure the orchestration. Other jobs on the machine only ever slow a sample down, and
a burst during one arm moves the ratio of the medians either way (a burst over the sequential
loops once gave 2.01x, more than two cores allow), so the ratio of the fastest samples
(``speedup_best``) and the median of the per-repeat ratios (``speedup_paired``, the two arms
run back to back) are recorded too. For information, against plain fits:
``speedup_vs_plain_loop = sequential_plain / scan``, ``vs_optuna_plain = optuna_dask_plain
/ scan``, and ``reuse_gain_sequential = sequential_plain / sequential``; and
``vs_optuna_own_points = optuna_dask_tpe / scan``.

Orchestration overhead per trial (target <= 20 ms): for each worker, the time from the
scan's start to the end of its last trial minus the time its trials spent inside the
objective, summed over workers and divided by the trials (``overhead_ms_per_trial``): the
time workers that still had work spent outside trial code. Also recorded:
``overhead_incl_tail_ms_per_trial`` = ``(scan wall - sum of in-trial time / workers) /
trials``, which adds the tail where one worker waits for the other's last trial;
``overhead_vs_sequential_ms_per_trial`` = ``(scan - sequential / workers) / trials``; and
``trivial_ms_per_trial``, the wall time per trial of ``--trivial`` trials of a trivial
objective on the 2 workers. The space varies learning rate, L2, min child weight and gamma
at a fixed depth of 6, so that the trials cost about the same (within +-25 %).

``ceiling_ideal_schedule`` is the speedup of a scan that cost nothing on a machine where
two trials at once run as fast as one alone: each repeat's sequential trial times, handed
in order to whichever of two workers is free first, the second worker's first trial also
making its own split and matrix (``setup_ms``: a trial run cold minus the same trial
run again at once, median of three pairs) — what the trials' uneven costs and that second
setup leave of 2.0x. ``ceiling_two_processes`` is the speedup of two plain spawned
processes (no Dask) running half of the same trials each over the sequential loop,
measured back to back;
``ceiling_two_processes_queue`` the same with the two processes taking the trials one at a
time from a queue (each making its split and matrix once, as a scan worker does), over the
median of three sequential loops around them: what this machine allows any 2-worker scan,
the scan's orchestration costing nothing. ``machine_capacity`` is the same question
without XGBoost: two processes of a pure arithmetic loop against one alone, bracketed by
lone runs (:func:`benchmarks.report.parallel_capacity`), and how far one core's own speed
moved meanwhile (``single_spread``). For comparison, the scan and the sequential loop are
repeated on a cluster with Dask's
default server settings (``dask_defaults``: also Dask's ``MALLOC_TRIM_THRESHOLD_`` alone in
the workers, see ``hepml-compute.yaml``), and ``idle_cpu`` records the CPU an idle
2-worker cluster uses with either settings (this process, which holds the client, the
scheduler and the local nannies, and the workers; as a fraction of the machine): Dask's
own background work.

``--faults`` adds the failure to beat: a 16-point grid run by Optuna+DaskStorage (two
``optimize`` tasks of 8) and by ``scan``, each with one worker SIGKILLed after 3 finished
trials; recorded: trials per state, grid points never evaluated and evaluated more than once.

Results go to ``benchmarks/results/scan.json`` (atomically) with every sample. Other
processes on the machine skew the numbers; run it on a quiet machine::

    .venv/bin/python -m benchmarks.scan
    .venv/bin/python -m benchmarks.scan --repeats 3 --faults
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine_info, parallel_capacity, write_report  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scan.json"
SPEEDUP_TARGET = 1.9
OVERHEAD_TARGET_MS = 20.0
VS_OPTUNA_TARGET = 1.0


def make_table(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    w = rng.normal(size=features)
    logit = X @ w / np.sqrt(features) + 0.5 * X[:, 0] * X[:, 1]
    y = (logit + rng.logistic(size=rows) > 0).astype(np.int32)
    return X, y


def space() -> dict[str, Any]:
    """Parameters that barely change the cost of a fit (depth is fixed at 6), so that the
    16 trials cost about the same, as in the runbook's plain-Dask measurement."""
    from analysis_lib.scan import Float

    return {
        "learning_rate": Float(0.03, 0.3, log=True),
        "reg_lambda": Float(0.1, 10.0, log=True),
        "min_child_weight": Float(0.5, 10.0, log=True),
        "gamma": Float(0.0, 1.0),
    }


def estimator(trees: int) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=trees, max_depth=6, n_jobs=1, tree_method="hist")


def run_scan(
    client: Any, data: Any, n: int, trees: int, seed: int, *, keep_models: bool = True
) -> tuple[float, Any]:
    from analysis_lib.scan import scan

    with tempfile.TemporaryDirectory(prefix="bench-scan-") as store:
        started = time.time()
        tic = time.perf_counter()
        result = scan(
            estimator(trees),
            space(),
            n_trials=n,
            sampler="tpe",
            seed=seed,
            store=store,
            client=client,
            data=data,
            scoring="roc_auc",
            keep_models=keep_models,
            progress=False,
        )
        wall = time.perf_counter() - tic
        df = result.to_dataframe()
    assert (df["state"] == "done").all() and len(df) == n, df
    df.attrs["started"] = started
    return wall, df


def idle_per_trial(df: Any) -> float:
    """Seconds per trial that workers with work left spent outside the objective.

    For each worker: time from the scan's start to its last trial's end, minus the time its
    trials spent in the objective. The idle tail of a worker that has no trial left while
    the other finishes the last one is not counted (it is not orchestration).
    """
    import pandas as pd

    started = df.attrs["started"]
    end = pd.to_datetime(df["finished_at"]).map(lambda t: t.timestamp())
    idle = 0.0
    for _, group in df.assign(end=end).groupby("worker"):
        idle += (group["end"].max() - started) - group["duration_s"].sum()
    return idle / len(df)


def cold(client: Any) -> None:
    """Every arm starts as a user's first scan of its data: no split or binned matrix kept
    from an earlier arm (:mod:`analysis_lib.scan.reuse`) on the workers."""
    from analysis_lib.scan import reuse as scan_reuse

    client.run(scan_reuse.clear, True)


def run_sequential(
    data: Any,
    params: list[dict[str, Any]],
    trees: int,
    seed: int,
    *,
    reuse: bool = True,
    trials: dict[str, Any] | None = None,
) -> float:
    """Seconds for the trials one after the other in this process, cold.

    ``trials``, when given, receives each trial's seconds under ``"seconds"``.
    """
    from analysis_lib.scan import reuse as scan_reuse
    from analysis_lib.scan.objective import as_objective

    scan_reuse.clear(all_threads=True)  # cold, as every arm (see cold)
    objective = as_objective(estimator(trees), scoring="roc_auc", seed=seed, reuse=reuse)
    seconds = []
    tic = time.perf_counter()
    for p in params:
        start = time.perf_counter()
        objective(p, data, None)
        seconds.append(time.perf_counter() - start)
    total = time.perf_counter() - tic
    if trials is not None:
        trials["seconds"] = seconds
    return total


def setup_seconds(data: Any, trees: int, seed: int, pairs: int = 3) -> float:
    """What a worker's first trial spends making its split and training matrix.

    The median over ``pairs`` of one trial run cold (nothing kept) minus the same trial
    run again at once (the split and matrix kept, :mod:`analysis_lib.scan.reuse`), each
    pair a :func:`run_sequential` of the trial twice.
    """
    params = {"learning_rate": 0.1}
    diffs = []
    for _ in range(pairs):
        trials: dict[str, Any] = {}
        run_sequential(data, [params, params], trees, seed, trials=trials)
        cold_s, warm_s = trials["seconds"]
        diffs.append(cold_s - warm_s)
    return max(0.0, statistics.median(diffs))


def ideal_schedule(seconds: list[float], setup_s: float, workers: int = 2) -> float:
    """Wall seconds of the trials on ``workers`` workers that cost nothing to run them.

    Each trial goes, in order, to the worker that is free first (as a scan hands them
    out) and takes as long as it took alone in the sequential loop; the first trial of
    every worker but the first also makes its own split and matrix (``setup_s``; the
    loop's first trial already includes them). ``sum(seconds) / ideal_schedule(...)`` is
    the speedup a scan would reach if its orchestration cost nothing and two trials at
    once ran as fast as one alone.

    Examples
    --------
    >>> ideal_schedule([1.0, 1.0, 1.0, 1.0], setup_s=0.5)
    2.5
    """
    free = [0.0] * workers
    for i, s in enumerate(seconds):
        w = min(range(workers), key=free.__getitem__)
        free[w] += s + (setup_s if 0 < i < workers else 0.0)
    return max(free)


_POOL_DATA: Any = None


def _set_pool_data(data: Any) -> None:
    global _POOL_DATA
    _POOL_DATA = data


def _pool_half(args: tuple[list[dict[str, Any]], int, int]) -> float:
    params, trees, seed = args
    return run_sequential(_POOL_DATA, params, trees, seed)


def run_processes(data: Any, params: list[dict[str, Any]], trees: int, seed: int) -> float:
    """Seconds for two plain processes (no Dask) running half of the trials each.

    The ceiling of any 2-worker scan on this machine: the same trials, split in two
    before starting, in two fresh processes that share nothing but the machine (spawned:
    a fork of this process, which holds a Dask client's threads, can inherit a held lock).
    """
    import multiprocessing

    halves = [(params[0::2], trees, seed), (params[1::2], trees, seed)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(2, initializer=_set_pool_data, initargs=(data,)) as pool:
        pool.map(_pool_half, [([params[0]], trees, seed)] * 2)  # warm up both processes
        tic = time.perf_counter()
        pool.map(_pool_half, halves, chunksize=1)
        return time.perf_counter() - tic


def _queue_worker(tasks: Any, done: Any, rounds: Any, trees: int, data: Any) -> None:
    """A plain process of :func:`run_processes_dynamic`: per round, a cold objective (its
    own split and matrix made by its first trial, as a scan worker's), then the trials it
    takes from ``tasks`` until that queue hands it None."""
    from analysis_lib.scan import reuse as scan_reuse
    from analysis_lib.scan.objective import as_objective

    _set_pool_data(data)
    while (job := rounds.get()) is not None:
        params, seed = job
        scan_reuse.clear(all_threads=True)
        objective = as_objective(estimator(trees), scoring="roc_auc", seed=seed, reuse=True)
        ran = 0
        while (index := tasks.get()) is not None:
            objective(params[index], _POOL_DATA, None)
            ran += 1
        done.put(ran)


def run_processes_dynamic(
    data: Any, params: list[dict[str, Any]], trees: int, seed: int, repeats: int
) -> list[float]:
    """Seconds for two plain processes (no Dask) taking the trials from one queue.

    Each process takes the next trial when it is free, as a scan's workers do, with nothing
    between them but a pipe: the best any 2-worker scheduler can do on this machine (the
    trials' costs differ, so a fixed split in halves waits for the slower half). One
    sample per repeat, the processes warmed up once.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # not fork: see run_processes
    tasks, done = context.Queue(), context.Queue()
    rounds = [context.Queue() for _ in range(2)]
    procs = [
        context.Process(target=_queue_worker, args=(tasks, done, r, trees, data), daemon=True)
        for r in rounds
    ]
    for proc in procs:
        proc.start()

    def one(work: list[dict[str, Any]]) -> float:
        for r in rounds:
            r.put((work, seed))
        tic = time.perf_counter()
        for index in range(len(work)):
            tasks.put(index)
        for _ in procs:
            tasks.put(None)
        ran = sum(done.get(timeout=600) for _ in procs)
        elapsed = time.perf_counter() - tic
        assert ran == len(work), (ran, len(work))
        return elapsed

    try:
        one(params[:2])  # warm up both processes
        return [one(params) for _ in range(repeats)]
    finally:
        for r in rounds:
            r.put(None)
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def _quiet_optuna() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _optuna_task(study: Any, n: int, data: Any, trees: int, seed: int, reuse: bool) -> int:
    _quiet_optuna()
    from analysis_lib.scan.objective import as_objective

    objective = as_objective(
        estimator(trees), scoring="roc_auc", seed=seed, keep_model=False, reuse=reuse
    )
    names = list(space())

    def optuna_objective(trial: Any) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 10.0, log=True),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 10.0, log=True),
            "gamma": trial.suggest_float("gamma", 0.0, 1.0),
        }
        assert list(params) == names
        return objective(params, data, None)[0]

    study.optimize(optuna_objective, n_trials=n)
    return n


def run_optuna(
    client: Any,
    data_future: Any,
    n: int,
    trees: int,
    seed: int,
    *,
    reuse: bool = True,
    params: list[dict[str, float]] | None = None,
) -> float:
    """Seconds for Optuna+DaskStorage to run ``n`` trials in two ``optimize`` tasks.

    With ``params``, the study first gets exactly those parameter sets as waiting trials
    (``enqueue_trial``, before the clock starts), so it runs the very trials another arm
    ran; without, its TPE sampler proposes its own.
    """
    import optuna
    from optuna_integration import DaskStorage

    def new_study() -> Any:
        return optuna.create_study(
            storage=DaskStorage(client=client),
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
        )

    if params is not None:
        if len(params) != n:
            raise ValueError(f"{len(params)} parameter sets for {n} trials")
        study = new_study()
        for p in params:
            study.enqueue_trial(p)
        tic = time.perf_counter()
    else:
        tic = time.perf_counter()
        study = new_study()
    futures = [
        client.submit(_optuna_task, study, n // 2, data_future, trees, seed, reuse, pure=False)
        for _ in range(2)
    ]
    client.gather(futures)
    wall = time.perf_counter() - tic
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert len(done) == n, len(done)
    if params is not None:  # the enqueued points, each run once
        key = sorted(tuple(sorted(p.items())) for p in params)
        assert sorted(tuple(sorted(t.params.items())) for t in done) == key
    return wall


def ship_once(client: Any, data: tuple[np.ndarray, np.ndarray]) -> tuple[Any, float]:
    """``data`` shipped to the workers for every scan, and the milliseconds that took.

    Timed after a tiny ship, which pays the workers' first imports.
    """
    from analysis_lib.scan import ship

    X, y = data
    ship((X[:10], y[:10]), client=client).release()
    tic = time.perf_counter()
    shipped = ship(data, client=client)
    return shipped, 1e3 * (time.perf_counter() - tic)


def run_trivial(client: Any, n: int) -> float:
    from analysis_lib.scan import Float, scan

    with tempfile.TemporaryDirectory(prefix="bench-scan-trivial-") as store:
        tic = time.perf_counter()
        scan(
            lambda p: p["x"],
            {"x": Float(0.0, 1.0)},
            n_trials=n,
            sampler="random",
            seed=0,
            store=store,
            client=client,
            progress=False,
        )
        return time.perf_counter() - tic


# --- the failure to beat ---------------------------------------------------------------------


def _grid_task(study: Any, n: int, log_dir: str) -> int:
    _quiet_optuna()

    def objective(trial: Any) -> float:
        i = trial.suggest_int("i", 0, 15)
        Path(log_dir, f"{i}-{trial.number}-{os.getpid()}").write_text("")
        time.sleep(0.5)
        return float(i)

    study.optimize(objective, n_trials=n)
    return n


def _grid_objective(params: dict[str, Any], data: Any) -> float:
    Path(data, f"{params['i']}-{os.getpid()}-{time.monotonic_ns()}").write_text("")
    time.sleep(0.5)
    return float(params["i"])


def _kill_after(log_dir: Path, client: Any, finished: int, done: threading.Event) -> None:
    """SIGKILL one worker once ``finished`` evaluations have started and some are done."""
    pids = client.run(os.getpid)
    while not done.is_set() and len(list(log_dir.iterdir())) < finished:
        time.sleep(0.02)
    if not done.is_set():
        os.kill(pids[sorted(pids)[0]], signal.SIGKILL)


def faults(client_factory: Any) -> dict[str, Any]:
    import optuna
    from optuna_integration import DaskStorage

    from analysis_lib.scan import Int, scan

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scan-faults-") as tmp:
        log = Path(tmp, "optuna")
        log.mkdir()
        with client_factory() as client:
            study = optuna.create_study(
                storage=DaskStorage(client=client),
                sampler=optuna.samplers.GridSampler({"i": list(range(16))}, seed=0),
            )
            done = threading.Event()
            killer = threading.Thread(target=_kill_after, args=(log, client, 4, done))
            killer.start()
            futures = [client.submit(_grid_task, study, 8, str(log), pure=False) for _ in range(2)]
            deadline = time.monotonic() + 120
            errors = []
            for f in futures:
                try:
                    f.result(timeout=max(1.0, deadline - time.monotonic()))
                except Exception as exc:  # the repro records what went wrong
                    errors.append(repr(exc))
            done.set()
            killer.join()
            trials = study.get_trials()
        evaluated = Counter(int(p.name.split("-")[0]) for p in log.iterdir())
        out["optuna_dask"] = {
            "states": dict(Counter(t.state.name for t in trials)),
            "never_evaluated": sorted(set(range(16)) - set(evaluated)),
            "evaluated_more_than_once": {i: c for i, c in sorted(evaluated.items()) if c > 1},
            "task_errors": errors,
        }

        log = Path(tmp, "scan")
        log.mkdir()
        with client_factory() as client:
            done = threading.Event()
            killer = threading.Thread(target=_kill_after, args=(log, client, 4, done))
            killer.start()
            result = scan(
                _grid_objective,
                {"i": Int(0, 15)},
                n_trials=16,
                sampler="grid",
                seed=0,
                store=Path(tmp, "store"),
                client=client,
                data=str(log),
                progress=False,
            )
            done.set()
            killer.join()
        evaluated = Counter(int(p.name.split("-")[0]) for p in log.iterdir())
        df = result.to_dataframe()
        out["scan"] = {
            "states": dict(Counter(df["state"])),
            "records": len(df),
            "distinct_points_recorded": int(df["param_i"].nunique()),
            "never_evaluated": sorted(set(range(16)) - set(evaluated)),
            "evaluated_more_than_once": {i: c for i, c in sorted(evaluated.items()) if c > 1},
            "errors": dict(Counter(r.get("error") for r in result.records if r.get("error"))),
        }
    return out


def machine_noise(
    sequential: list[float], ceilings: list[float], workers: int = 2, spread_max: float = 0.05
) -> dict[str, Any]:
    """Whether other load disturbed the run, from its own samples.

    The sequential loop runs the same kind of trials every repeat, so its samples should
    agree within a few percent (``sequential_spread``: slowest over fastest, minus one);
    and no ceiling sample can exceed ``workers`` unless its sequential loops were slowed
    (``impossible_ceilings``). ``quiet`` is both within bounds: only then do the ratios
    measure the scan rather than the machine.

    Examples
    --------
    >>> machine_noise([9.6, 9.7, 9.9], [1.9, 1.95])["quiet"]
    True
    >>> machine_noise([9.7, 11.8], [2.09])
    {'sequential_spread': 0.216..., 'impossible_ceilings': 1, 'quiet': False}
    """
    spread = max(sequential) / min(sequential) - 1.0
    impossible = sum(c > workers for c in ceilings)
    return {
        "sequential_spread": spread,
        "impossible_ceilings": impossible,
        "quiet": spread <= spread_max and impossible == 0,
    }


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trivial", type=int, default=200)
    parser.add_argument("--faults", action="store_true", help="also run the failure repro")
    parser.add_argument("--idle-seconds", type=float, default=6.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import logging

    from distributed import Client

    logging.getLogger("distributed").setLevel(logging.ERROR)
    _quiet_optuna()
    workers = 2

    def client_factory(dask_config: dict[str, Any] | None = None) -> Any:
        # the product's local cluster (analysis_lib.compute), with its Dask server settings
        # (hepml.compute.dask-config) unless dask_config is given ({}: Dask's defaults)
        from analysis_lib.compute import make_cluster

        extra = {} if dask_config is None else {"dask_config": dask_config}
        if dask_config == {}:
            # a nanny takes these from this process's environment before its configuration,
            # and the product's clusters made earlier in this run left theirs there
            for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
                os.environ.pop(name, None)
        cluster = make_cluster(
            "local",
            environ={},
            n_workers=workers,
            cores=workers,
            memory="8GiB",
            threads_per_worker=1,
            dashboard_address=":0",
            env={"OMP_NUM_THREADS": "1"},
            **extra,
        )
        client = Client(cluster)

        class Closing:
            def __enter__(self) -> Any:
                return client

            def __exit__(self, *exc: Any) -> None:
                client.close()
                cluster.close()

        return Closing()

    X, y = make_table(args.rows, args.features)
    data = (X, y)
    samples: dict[str, list[float]] = {
        "scan": [],
        "scan_no_models": [],
        "sequential": [],
        "optuna_dask": [],
        "sequential_plain": [],
        "optuna_dask_plain": [],
        "optuna_dask_tpe": [],
    }
    overhead_ms: list[float] = []
    overhead_vs_seq_ms: list[float] = []
    overhead_compute_ms: list[float] = []
    trivial_ms: list[float] = []
    ship_ms: list[float] = []
    ideal: list[float] = []
    with client_factory() as client:
        data_future = client.scatter(data, broadcast=True)
        # the table placed on the workers once, for every scan (as Optuna's is scattered)
        shipped, ms = ship_once(client, data)
        ship_ms.append(ms)
        # warm up: imports on the workers and here, the first XGBoost fit
        run_scan(client, shipped, 2, args.trees, seed=99)
        run_optuna(client, data_future, 2, args.trees, seed=99)
        run_sequential(data, [{"learning_rate": 0.1}], args.trees, seed=99)
        setup = setup_seconds(data, args.trees, seed=99)
        for r in range(args.repeats):
            seed = 1000 + r
            cold(client)
            wall, df = run_scan(client, shipped, args.trials, args.trees, seed)
            params = [
                {k[len("param_") :]: v for k, v in row.items() if k.startswith("param_")}
                for row in df.to_dict("records")
            ]
            trials: dict[str, Any] = {}
            seq = run_sequential(data, params, args.trees, seed, trials=trials)
            ideal.append(sum(trials["seconds"]) / ideal_schedule(trials["seconds"], setup))
            cold(client)
            opt = run_optuna(client, data_future, args.trials, args.trees, seed, params=params)
            # like for like with Optuna, which keeps no fitted models
            cold(client)
            bare, _ = run_scan(client, shipped, args.trials, args.trees, seed, keep_models=False)
            # what a loop or an Optuna objective of plain fits does: split and bin every trial
            samples["sequential_plain"].append(
                run_sequential(data, params, args.trees, seed, reuse=False)
            )
            cold(client)
            samples["optuna_dask_plain"].append(
                run_optuna(
                    client, data_future, args.trials, args.trees, seed, reuse=False, params=params
                )
            )
            # Optuna proposing its own points: other parameters, so other costs per trial
            cold(client)
            samples["optuna_dask_tpe"].append(
                run_optuna(client, data_future, args.trials, args.trees, seed)
            )
            samples["scan"].append(wall)
            samples["scan_no_models"].append(bare)
            samples["sequential"].append(seq)
            samples["optuna_dask"].append(opt)
            overhead_ms.append(1e3 * idle_per_trial(df))
            overhead_compute_ms.append(
                1e3 * (wall - df["duration_s"].sum() / workers) / args.trials
            )
            overhead_vs_seq_ms.append(1e3 * (wall - seq / workers) / args.trials)
            trivial_ms.append(1e3 * run_trivial(client, args.trivial) / args.trivial)
            print(
                f"repeat {r}: scan {wall:.2f} s, sequential {seq:.2f} s, optuna+dask "
                f"{opt:.2f} s, scan without models {bare:.2f} s, plain fits: sequential "
                f"{samples['sequential_plain'][-1]:.2f} s, optuna+dask "
                f"{samples['optuna_dask_plain'][-1]:.2f} s, optuna+dask with its own TPE "
                f"points {samples['optuna_dask_tpe'][-1]:.2f} s, "
                f"overhead {overhead_ms[-1]:.1f} ms/trial (with tail "
                f"{overhead_compute_ms[-1]:.1f}, vs sequential {overhead_vs_seq_ms[-1]:.1f}), "
                f"trivial {trivial_ms[-1]:.1f} ms/trial",
                flush=True,
            )
        shipped.release()
    # the machine's ceiling: the last repeat's trials in two plain processes, no Dask
    ceiling = [
        (seq_last := run_sequential(data, params, args.trees, 1000))
        / run_processes(data, params, args.trees, 1000)
        for _ in range(args.repeats)
    ]
    print(f"two plain processes vs sequential: {ceiling}", flush=True)
    sequential_again = [run_sequential(data, params, args.trees, 1000) for _ in range(2)]
    dynamic_s = run_processes_dynamic(data, params, args.trees, 1000, args.repeats)
    sequential_again.append(run_sequential(data, params, args.trees, 1000))
    ceiling_dynamic = [statistics.median(sequential_again) / t for t in dynamic_s]
    print(f"two plain processes, one queue, vs sequential: {ceiling_dynamic}", flush=True)
    # the same scans on a cluster with Dask's default server settings, for comparison
    defaults_scan: list[float] = []
    defaults_seq: list[float] = []
    with client_factory({}) as client:
        shipped, ms = ship_once(client, data)
        ship_ms.append(ms)
        run_scan(client, shipped, 2, args.trees, seed=99)
        for r in range(args.repeats):
            cold(client)
            wall, df = run_scan(client, shipped, args.trials, args.trees, 1000 + r)
            params = [
                {k[len("param_") :]: v for k, v in row.items() if k.startswith("param_")}
                for row in df.to_dict("records")
            ]
            defaults_scan.append(wall)
            defaults_seq.append(run_sequential(data, params, args.trees, 1000 + r))
            print(
                f"Dask defaults, repeat {r}: scan {wall:.2f} s, sequential "
                f"{defaults_seq[-1]:.2f} s",
                flush=True,
            )
        shipped.release()
    idle = {
        "hepml": idle_cpu(client_factory(None), args.idle_seconds),
        "dask_defaults": idle_cpu(client_factory({}), args.idle_seconds),
    }
    print("idle cluster CPU (fraction of the machine):", idle, flush=True)
    capacity = parallel_capacity(workers, seconds=3.0, pairs=args.repeats)
    print(
        f"two busy loops vs one: {capacity['samples']} (one core's own speed moved "
        f"{100 * capacity['single_spread']:.0f} % meanwhile)",
        flush=True,
    )
    med = {k: statistics.median(v) for k, v in samples.items()}
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": {
            "rows": args.rows,
            "features": args.features,
            "trees": args.trees,
            "trials": args.trials,
            "repeats": args.repeats,
            "workers": workers,
            "threads_per_worker": 1,
            "trivial_trials": args.trivial,
        },
        "samples_s": samples,
        "summary_s": {k: _summary(v) for k, v in samples.items()},
        "speedup": med["sequential"] / med["scan"],
        "speedup_best": min(samples["sequential"]) / min(samples["scan"]),
        "speedup_paired": statistics.median(
            q / s for q, s in zip(samples["sequential"], samples["scan"], strict=True)
        ),
        "speedup_target": SPEEDUP_TARGET,
        "vs_optuna": med["optuna_dask"] / med["scan"],
        "vs_optuna_no_models": med["optuna_dask"] / med["scan_no_models"],
        "speedup_no_models": med["sequential"] / med["scan_no_models"],
        "speedup_vs_plain_loop": med["sequential_plain"] / med["scan"],
        "vs_optuna_plain": med["optuna_dask_plain"] / med["scan"],
        "vs_optuna_own_points": med["optuna_dask_tpe"] / med["scan"],
        "reuse_gain_sequential": med["sequential_plain"] / med["sequential"],
        "vs_optuna_target": VS_OPTUNA_TARGET,
        "overhead_ms_per_trial": statistics.median(overhead_ms),
        "overhead_ms_per_trial_samples": overhead_ms,
        "overhead_target_ms": OVERHEAD_TARGET_MS,
        "overhead_incl_tail_ms_per_trial": statistics.median(overhead_compute_ms),
        "overhead_incl_tail_ms_per_trial_samples": overhead_compute_ms,
        "overhead_vs_sequential_ms_per_trial": statistics.median(overhead_vs_seq_ms),
        "overhead_vs_sequential_ms_per_trial_samples": overhead_vs_seq_ms,
        "trivial_ms_per_trial": statistics.median(trivial_ms),
        "trivial_ms_per_trial_samples": trivial_ms,
        "ship_ms": ship_ms,
        "dask_defaults": {
            "scan_s": defaults_scan,
            "sequential_s": defaults_seq,
            "speedup": statistics.median(defaults_seq) / statistics.median(defaults_scan),
        },
        "idle_cpu": idle,
        "ceiling_ideal_schedule": {
            "samples": ideal,
            "median": statistics.median(ideal),
            "setup_ms": 1e3 * setup,
        },
        "ceiling_two_processes": {
            "samples": ceiling,
            "median": statistics.median(ceiling),
            "last_sequential_s": seq_last,
        },
        "ceiling_two_processes_queue": {
            "samples": ceiling_dynamic,
            "median": statistics.median(ceiling_dynamic),
            "seconds": dynamic_s,
            "sequential_s": sequential_again,
        },
        "machine_capacity": capacity,
        "noise": machine_noise(samples["sequential"], ceiling + ceiling_dynamic, workers),
        "machine": machine_info("dask", "distributed", "optuna", "xgboost", "numpy"),
        "caveat": "other jobs on the machine skew the numbers: run it on a quiet machine",
    }
    if args.faults:
        report["faults"] = faults(client_factory)
        print("faults:", report["faults"], flush=True)
    write_report(args.output, report)
    print(
        f"speedup {report['speedup']:.2f}x (target >= {SPEEDUP_TARGET}; fastest samples "
        f"{report['speedup_best']:.2f}x, paired {report['speedup_paired']:.2f}x), vs optuna+dask "
        f"{report['vs_optuna']:.2f}x (target >= {VS_OPTUNA_TARGET}; without keeping models "
        f"{report['vs_optuna_no_models']:.2f}x, speedup {report['speedup_no_models']:.2f}x), "
        "overhead "
        f"{report['overhead_ms_per_trial']:.1f} ms/trial (target <= {OVERHEAD_TARGET_MS}), "
        f"trivial {report['trivial_ms_per_trial']:.1f} ms/trial; with Dask's default server "
        f"settings: speedup {report['dask_defaults']['speedup']:.2f}x; ideal schedule "
        f"{report['ceiling_ideal_schedule']['median']:.2f}x, two plain processes "
        f"{report['ceiling_two_processes']['median']:.2f}x, taking trials from one queue "
        f"{report['ceiling_two_processes_queue']['median']:.2f}x; two busy loops "
        f"{capacity['median']:.2f}x"
    )
    if not report["noise"]["quiet"]:
        print(
            "the machine was not quiet (sequential samples "
            f"{100 * report['noise']['sequential_spread']:.0f} % apart, "
            f"{report['noise']['impossible_ceilings']} ceiling samples above {workers}x): "
            "the ratios are unreliable"
        )
    return 0


def idle_cpu(factory: Any, seconds: float) -> dict[str, float]:
    """CPU seconds an idle 2-worker cluster's processes use in ``seconds``, by process kind.

    ``client_and_scheduler_s`` is this process, which holds the client, the scheduler and,
    for a local cluster, the nannies too (they start the worker processes from here);
    ``nannies_s`` counts only nannies in processes of their own (0 for a local cluster).
    ``total_fraction`` is the sum as a fraction of the machine (all cores) over the window.
    """
    import resource

    import psutil

    def own() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    with factory as client:
        client.wait_for_workers(2, timeout=60)
        time.sleep(1.0)
        workers = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
        parents = {w.ppid() for w in workers} - {os.getpid()}
        nannies = [psutil.Process(pid) for pid in sorted(parents)]
        procs = workers + nannies

        def cpu() -> list[float]:
            return [sum(p.cpu_times()[:2]) for p in procs]

        before, main_before = cpu(), own()
        time.sleep(seconds)
        after, main_after = cpu(), own()
    used = [a - b for a, b in zip(after, before, strict=True)]
    out = {
        "client_and_scheduler_s": main_after - main_before,
        "workers_s": sum(used[: len(workers)]),
        "nannies_s": sum(used[len(workers) :]),
        "nanny_processes": len(nannies),
        "seconds": seconds,
    }
    total = out["client_and_scheduler_s"] + out["workers_s"] + out["nannies_s"]
    out["total_fraction"] = total / (seconds * (os.cpu_count() or 1))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
