"""A Slurm-backed cluster against the real single-node Slurm: jobs, TLS, scancel, cleanup."""

from __future__ import annotations

import os
import stat
import sys
import time

import pytest
from distributed import Client

from analysis_lib.compute import SLURMCluster, connect, make_cluster, wait_for_workers

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _square(x: int) -> int:
    return x * x


def _interpreter() -> str:
    return sys.executable


def _allocator_variables() -> tuple[str | None, str | None]:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("MALLOC_MMAP_THRESHOLD_")


def _running_workers(client: Client) -> int:
    return len(client.scheduler_info(n_workers=-1)["workers"])


def test_two_jobs_run_tasks_over_tls_and_scancel_is_noticed(slurm, tmp_path, monkeypatch):
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)  # the jobs inherit this environment
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
    tls_dir = cluster.tls.directory
    try:
        assert isinstance(cluster, SLURMCluster)
        assert cluster.scheduler_address.startswith("tls://")
        assert cluster.security.require_encryption
        for name in ("ca.pem", "cert.pem", "key.pem"):
            assert stat.S_IMODE(os.stat(tls_dir / name).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(tls_dir).st_mode) == 0o700
        script = cluster.job_script()
        assert f"--tls-key {tls_dir / 'key.pem'}" in script
        assert f"{slurm.python} -m distributed.cli.dask_worker" in script

        cluster.scale(jobs=2)
        with connect(cluster) as client:
            wait_for_workers(client, 2, timeout=90)
            workers = client.scheduler_info(n_workers=-1)["workers"]
            assert len(workers) == 2
            assert all(address.startswith("tls://") for address in workers)
            assert client.gather(client.map(_square, range(20))) == [x * x for x in range(20)]
            assert set(client.run(_interpreter).values()) == {slurm.python}
            # the worker environment of the packaged settings, through the job's variables
            assert set(client.run(_allocator_variables).values()) == {("16777216", "16777216")}

            jobs = [job.job_id for job in cluster.workers.values()]
            assert len(jobs) == 2 and set(jobs) <= set(slurm.job_ids())
            slurm.run("scancel", jobs[0])
            deadline = time.monotonic() + 30
            while _running_workers(client) != 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _running_workers(client) == 1
            assert client.submit(_square, 7).result(timeout=30) == 49
    finally:
        cluster.close()
    assert not tls_dir.exists()
    assert slurm.wait_until_no_jobs(jobs), slurm.job_ids()
