"""A scan on a Slurm-backed cluster of two jobs; one job is cancelled mid-scan (real Slurm).

The objective writes one file per execution next to the store (the test machine's file
system is shared by the jobs), so lost, repeated and duplicated trials are seen on disk.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from analysis_lib.compute import connect, make_cluster, wait_for_workers
from analysis_lib.scan import Int, load_scan, scan

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

N_TRIALS = 10


def counted(params, data):
    """One side-effect file per execution; slow enough that a cancel lands mid-scan."""
    (Path(data["log"]) / f"{params['i']}__{uuid.uuid4().hex}").write_text(str(os.getpid()))
    time.sleep(1.0)
    return float(params["i"] ** 2)


def run_scan(client, store, log, callbacks=()):
    return scan(
        counted,
        {"i": Int(0, N_TRIALS - 1)},
        n_trials=N_TRIALS,
        sampler="grid",
        seed=3,
        store=store,
        client=client,
        data={"log": str(log)},
        progress=False,
        callbacks=list(callbacks),
    )


def test_scan_survives_scancel_of_a_worker_job(slurm, tmp_path):
    log = tmp_path / "executions"
    log.mkdir()
    store = tmp_path / "store"
    cluster = make_cluster(
        "slurm",
        environ={},
        cores=1,
        memory="1GiB",
        queue=slurm.partition,
        walltime="00:10:00",
        python=slurm.python,
        job_script_prologue=slurm.prologue,
        log_directory=str(tmp_path / "logs"),
    )
    cancelled: list[str] = []
    lock = threading.Lock()
    jobs: list[str] = []
    try:
        cluster.scale(jobs=2)
        with connect(cluster) as client:
            wait_for_workers(client, 2, timeout=90)
            jobs = [job.job_id for job in cluster.workers.values()]
            assert len(jobs) == 2

            timer: list[threading.Timer] = []

            def cancel_one(record):
                # after the first finished trial, cancel the job of one worker half a trial
                # later: mid-trial. (The two workers finish their 1 s trials together, so a
                # cancel at once could also catch the other worker's just-finished trial
                # before the client has fetched its result; Dask then runs it again: more
                # than one re-run, still none recorded twice.)
                with lock:
                    if cancelled or len(list(log.iterdir())) < 2:
                        return
                    cancelled.append(jobs[0])
                    timer.append(threading.Timer(0.5, slurm.run, ("scancel", jobs[0])))
                    timer[0].start()

            result = run_scan(client, store, log, callbacks=[cancel_one])
            for t in timer:
                t.join()
            assert cancelled, "the job was never cancelled: the scan ended too early"
            assert jobs[0] not in slurm.job_ids()

            frame = result.to_dataframe()
            assert len(frame) == N_TRIALS
            assert set(frame["state"]) == {"done"}
            points = sorted(int(i) for i in frame["param_i"])
            assert points == list(range(N_TRIALS)), "a point was lost or recorded twice"
            assert sorted(frame["value"]) == sorted(float(i * i) for i in range(N_TRIALS))
            executed = sorted(int(p.name.split("__")[0]) for p in log.iterdir())
            assert set(executed) == set(range(N_TRIALS))
            # only a trial running on the cancelled job may have run twice
            assert len(executed) - N_TRIALS <= 1, executed

            # the store on disk says the same, and a re-run computes nothing
            assert len(load_scan(store).to_dataframe()) == N_TRIALS
            before = len(list(log.iterdir()))
            again = run_scan(client, store, log)
            assert len(list(log.iterdir())) == before
            assert again.executed == 0
    finally:
        cluster.close()
    assert slurm.wait_until_no_jobs(jobs), slurm.job_ids()
