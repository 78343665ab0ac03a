"""The measuring helpers of ``benchmarks/scan.py``: what they count is what they say."""

from __future__ import annotations

import contextlib
import os

import pytest

from benchmarks import scan as bench


def test_queue_ceiling_runs_every_trial_once_in_two_processes():
    data = bench.make_table(2_000, 5)
    params = [{"learning_rate": 0.05 + 0.01 * i} for i in range(5)]
    seconds = bench.run_processes_dynamic(data, params, trees=3, seed=0, repeats=2)
    # one sample per repeat; each asserts inside that the processes ran 5 trials in all
    assert len(seconds) == 2
    assert all(0.0 < s < 60.0 for s in seconds)


@pytest.mark.slow
def test_idle_cpu_counts_the_client_process_once():
    """A local cluster's nannies live in the client process: their CPU is in
    ``client_and_scheduler_s`` and must not be added again (it once was, twice)."""
    from distributed import Client

    from analysis_lib.compute import make_cluster

    @contextlib.contextmanager
    def factory():
        with (
            make_cluster(
                "local",
                environ={},
                n_workers=2,
                cores=2,
                memory="2GiB",
                threads_per_worker=1,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client

    out = bench.idle_cpu(factory(), 1.0)
    assert out["nanny_processes"] == 0
    assert out["nannies_s"] == 0
    total = out["client_and_scheduler_s"] + out["workers_s"]
    assert out["total_fraction"] == pytest.approx(total / (1.0 * (os.cpu_count() or 1)))
    assert 0.0 <= out["total_fraction"] < 1.0


def test_ideal_schedule_hands_each_trial_to_the_first_free_worker():
    # the second worker's first trial also makes its split and matrix
    assert bench.ideal_schedule([1.0, 1.0, 1.0, 1.0], setup_s=0.5) == 2.5
    # a long last trial leaves the other worker idle: the tail counts
    assert bench.ideal_schedule([1.0, 1.0, 1.0, 3.0], setup_s=0.0) == 4.0
    # one worker: the loop itself, setup included once
    assert bench.ideal_schedule([2.0, 1.0], setup_s=9.0, workers=1) == 3.0


def test_sequential_reports_each_trial_and_setup_is_what_a_cold_trial_adds():
    data = bench.make_table(2_000, 5)
    params = [{"learning_rate": 0.05 + 0.01 * i} for i in range(3)]
    trials: dict = {}
    total = bench.run_sequential(data, params, trees=3, seed=0, trials=trials)
    assert len(trials["seconds"]) == 3
    assert 0.0 < sum(trials["seconds"]) <= total
    setup = bench.setup_seconds(data, trees=3, seed=0)
    assert 0.0 <= setup < total


def test_machine_noise_flags_spread_loops_and_ceilings_above_the_cores():
    quiet = bench.machine_noise([9.6, 9.7, 9.9], [1.92, 1.96])
    assert quiet["quiet"] and quiet["impossible_ceilings"] == 0
    assert quiet["sequential_spread"] == pytest.approx(9.9 / 9.6 - 1)
    # a ceiling above 2.0x on two workers: its sequential loops were slowed
    assert not bench.machine_noise([9.6, 9.7], [2.04])["quiet"]
    # sequential loops 21 % apart
    assert not bench.machine_noise([9.7, 11.76], [1.9])["quiet"]


def test_parallel_capacity_brackets_each_parallel_run_with_lone_runs():
    from benchmarks.report import parallel_capacity

    one = parallel_capacity(workers=1, seconds=0.3, pairs=2)
    # one process against the mean of the lone runs around it: the same work, so about 1
    assert len(one["samples"]) == 2 and len(one["single_rounds"]) == 3
    assert all(0.5 < s < 2.0 for s in one["samples"]), one
    assert one["single_spread"] == max(one["single_rounds"]) / min(one["single_rounds"]) - 1
    two = parallel_capacity(workers=2, seconds=0.3, pairs=1)
    bracket = 0.5 * (two["single_rounds"][0] + two["single_rounds"][1])
    assert two["samples"][0] == pytest.approx(two["parallel_rounds"][0] / bracket)
    assert two["median"] == two["samples"][0] > 0
