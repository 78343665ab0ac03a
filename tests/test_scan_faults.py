"""Worker deaths during a scan: SIGKILL of real worker processes on a local cluster.

Each test gets its own 2-worker cluster (processes, nannies restart killed workers). The
objective writes one file per execution, so lost, repeated and duplicated trials are
observed on disk, next to the trial store.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster

from analysis_lib.scan import Float, Int, scan
from analysis_lib.scan.shipping import data_token, load_count

N_TRIALS = 16


def _cluster(**config):
    with dask.config.set(config):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env={"OMP_NUM_THREADS": "1"},
        )
    return cluster


@pytest.fixture(scope="module")
def shared_client():
    with _cluster() as cluster, Client(cluster) as c:
        yield c


@pytest.fixture
def client(shared_client):
    """The module's cluster with both workers up (a previous test killed some)."""
    wait_for_workers(shared_client, 2)
    return shared_client


def trained(params, data):
    """Needs the shipped table; one side-effect file per execution."""
    (Path(data["log"]) / f"{params['i']}__{uuid.uuid4().hex}").write_text(str(os.getpid()))
    time.sleep(0.25)
    return float(data["table"][params["i"]].sum())


def executions(log: Path) -> list[int]:
    return sorted(int(p.name.split("__")[0]) for p in log.iterdir())


def pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def wait_for_workers(client, n, timeout=60):
    deadline = time.monotonic() + timeout
    while len(client.nthreads()) < n:
        assert time.monotonic() < deadline, "workers did not come back"
        time.sleep(0.1)


def wait_for_new_worker(client, known, timeout=60):
    deadline = time.monotonic() + timeout
    while not set(client.nthreads()) - set(known):
        assert time.monotonic() < deadline, "no restarted worker joined"
        time.sleep(0.05)


def test_sigkill_twice_every_trial_once(tmp_path, client):
    """Kill one worker, then (once its restarted successor has run trials) the other one.

    After the second kill the only workers alive are restarted ones, which must have been
    given the training table again for the remaining trials to succeed.
    """
    log = tmp_path / "log"
    log.mkdir()
    table = np.arange(N_TRIALS * 1000, dtype=np.float64).reshape(N_TRIALS, 1000)
    data = {"log": str(log), "table": table}
    original = pids(client)
    first_victim, second_victim = sorted(original)
    kills: list[str] = []

    def killer(record):
        if not kills and len(list(log.iterdir())) >= 3:
            os.kill(original[first_victim], signal.SIGKILL)
            kills.append(first_victim)
            # once the nanny has restarted it, kill the last worker that was there from the start
            wait_for_new_worker(client, original)
            os.kill(original[second_victim], signal.SIGKILL)
            kills.append(second_victim)

    result = scan(
        trained,
        {"i": Int(0, N_TRIALS - 1)},
        n_trials=N_TRIALS,
        sampler="grid",
        seed=0,
        store=tmp_path / "store",
        client=client,
        data=data,
        callbacks=[killer],
        progress=False,
    )
    assert kills == [first_victim, second_victim]
    df = result.to_dataframe()
    # none lost, none recorded twice, every value right
    assert len(df) == N_TRIALS and df["trial_id"].is_unique
    assert (df["state"] == "done").all(), df[["number", "state", "error"]]
    assert sorted(df["param_i"]) == list(range(N_TRIALS))
    assert df.set_index("param_i")["value"].to_dict() == {
        i: float(table[i].sum()) for i in range(N_TRIALS)
    }
    assert len(list((tmp_path / "store" / "trials").glob("*.json"))) == N_TRIALS
    # every trial executed at least once; the killed ones possibly again
    assert set(executions(log)) == set(range(N_TRIALS))
    # trials that were on a killed worker count an extra attempt (each worker had some)
    assert df["attempts"].max() >= 2 and (df["attempts"] >= 1).all()
    # trials finished on restarted workers after the second kill
    survivors = set(df["worker"]) - set(original)
    assert survivors, df["worker"]
    # the restarted workers received the table exactly once each
    wait_for_workers(client, 2)
    loads = client.run(load_count, data_token(data))
    assert set(loads).isdisjoint(original) and sorted(loads.values()) == [1, 1], loads

    # re-running the finished scan recomputes nothing
    before = len(list(log.iterdir()))
    again = scan(
        trained,
        {"i": Int(0, N_TRIALS - 1)},
        n_trials=N_TRIALS,
        sampler="grid",
        seed=0,
        store=tmp_path / "store",
        client=client,
        data=data,
        progress=False,
    )
    assert again.executed == 0 and len(list(log.iterdir())) == before


def suicidal(params, data):
    """Trial 3 kills its own worker process every time it runs; the others are quick."""
    (Path(data["log"]) / f"{params['i']}__{uuid.uuid4().hex}").write_text("")
    if params["i"] == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return float(params["i"])


def test_trial_that_kills_its_worker_is_not_retried_forever(tmp_path):
    """With Dask's allowed-failures at 0, each death is a KilledWorker; 1 retry, then failed.

    ``worker-saturation: 1.0`` keeps other trials from waiting on the dying worker (they
    would share its KilledWorker fate with allowed-failures at 0).
    """
    log = tmp_path / "log"
    log.mkdir()
    with (
        _cluster(
            **{
                "distributed.scheduler.allowed-failures": 0,
                "distributed.scheduler.worker-saturation": 1.0,
            }
        ) as cluster,
        Client(cluster) as client,
    ):
        result = scan(
            suicidal,
            {"i": Int(0, 7)},
            n_trials=8,
            sampler="grid",
            seed=0,
            store=tmp_path / "store",
            client=client,
            data={"log": str(log)},
            max_retries=1,
            progress=False,
        )
    df = result.to_dataframe().set_index("param_i")
    assert df.loc[3, "state"] == "failed"
    assert df.loc[3, "attempts"] == 2
    assert "gave up after 2 attempts: KilledWorker" in df.loc[3, "error"]
    assert executions(log).count(3) == 2
    others = df.drop(index=3)
    assert (others["state"] == "done").all() and len(others) == 7


def test_float_space_scan_survives_kill_with_tpe(tmp_path, client):
    """TPE proposals under a kill: still exactly n distinct trials, each recorded once."""
    log = tmp_path / "log"
    log.mkdir()
    original = pids(client)
    victim = sorted(original)[0]
    killed = []

    def killer(record):
        if not killed and record["number"] >= 2:
            os.kill(original[victim], signal.SIGKILL)
            killed.append(victim)

    def objective(params, data):
        (Path(data["log"]) / f"0__{uuid.uuid4().hex}").write_text("")
        time.sleep(0.2)
        return (params["x"] - 0.5) ** 2

    result = scan(
        objective,
        {"x": Float(0.0, 1.0)},
        n_trials=10,
        sampler="tpe",
        seed=11,
        store=tmp_path / "store",
        client=client,
        data={"log": str(log)},
        callbacks=[killer],
        progress=False,
    )
    df = result.to_dataframe()
    assert killed and len(df) == 10 and df["trial_id"].is_unique
    assert (df["state"] == "done").all()
    assert df["param_x"].is_unique
    assert len(executions(log)) >= 10
