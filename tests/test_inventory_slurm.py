"""The clusters inventory against the test Slurm: pending reasons, leftovers, shutting down.

The Dask panel's cluster is made by dask-labextension's own manager through our factory
(``hepml_hub.session.labcluster``), exactly as the panel's "+ NEW" button does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import dask.config
import pytest

from hepml_hub.session import inventory
from hepml_hub.session.labcluster import install_defaults

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def slurm_kwargs(slurm, tmp_path, *directives: str) -> dict:
    return {
        "backend": "slurm",
        "cores": 1,
        "memory": "1GiB",
        "queue": slurm.partition,
        "walltime": "00:10:00",
        "python": slurm.python,
        "job_script_prologue": slurm.prologue,
        "log_directory": str(tmp_path / "logs"),
        "job_extra_directives": list(directives),
    }


def wait_for(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    return predicate()


def by_id(entries) -> dict[str, inventory.InventoryEntry]:
    return {e.id: e for e in entries}


def test_panel_cluster_with_a_pending_job_shows_the_slurm_reason(slurm, tmp_path):
    # dask_labextension.manager builds a module-level manager on import, which needs an event
    # loop in this thread; an earlier test's asyncio.run() may have left none set
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    from dask_labextension.manager import DaskClusterManager

    async def session():
        manager = DaskClusterManager()
        await manager.initialized
        kwargs = slurm_kwargs(slurm, tmp_path, "--begin=now+1hour")
        with dask.config.set({"labextension.factory.kwargs": kwargs}):
            assert install_defaults()
            model = await manager.start_cluster(configuration={"workers": 1})
        cluster = manager._clusters[model["id"]]
        for _ in range(300):  # scale() submits in the background
            jobs = [getattr(w, "job_id", None) for w in cluster.workers.values()]
            if jobs and all(jobs):
                break
            await asyncio.sleep(0.1)
        [job] = jobs
        entries = await asyncio.to_thread(wait_for, lambda: by_id(inventory.collect(manager)))
        panel, batch = entries[f"dask:{model['id']}"], entries.get(f"slurm:{job}")
        assert panel.kind == "dask" and panel.detail["cluster"] == "SLURMCluster"
        assert panel.detail["workers"] == 0  # its only worker waits in the queue
        assert batch is not None, entries
        assert (batch.state, batch.reason, batch.session) == ("pending", "BeginTime", "current")

        await inventory.shut_down(f"dask:{model['id']}", manager)
        assert manager.list_clusters() == []
        return job

    job = asyncio.run(session())
    assert slurm.wait_until_no_jobs([job]), slurm.job_ids()


EARLIER_SESSION = """
import sys, time
from analysis_lib.compute import make_cluster
cluster = make_cluster(**eval(sys.argv[1]))
cluster.scale(jobs=1)
while not [w for w in cluster.workers.values() if getattr(w, "job_id", None)]:
    time.sleep(0.1)
print(next(iter(cluster.workers.values())).job_id, flush=True)
time.sleep(600)
"""


def test_leftover_job_of_a_killed_session_is_listed_and_cancelled(slurm, tmp_path):
    kwargs = slurm_kwargs(slurm, tmp_path, "--hold")
    backend = kwargs.pop("backend")
    session = subprocess.Popen(
        [
            sys.executable,
            "-c",
            EARLIER_SESSION,
            repr({"backend": backend, "environ": {}, **kwargs}),
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        job = session.stdout.readline().strip()
        assert job.isdigit(), f"the earlier session printed {job!r}"
    finally:
        os.killpg(session.pid, signal.SIGKILL)  # killed: no cluster.close(), no scancel
        session.wait(timeout=30)
    try:
        assert job in slurm.job_ids()

        class FreshSession:  # a new server: dask-labextension's manager holds nothing
            def list_clusters(self):
                return []

        entry = by_id(inventory.collect(FreshSession())).get(f"slurm:{job}")
        assert entry is not None
        assert entry.name.startswith("dask-worker")
        assert (entry.state, entry.reason, entry.session) == ("pending", "JobHeldUser", "earlier")

        asyncio.run(inventory.shut_down(f"slurm:{job}"))
        assert slurm.wait_until_no_jobs([job]), slurm.job_ids()
        assert f"slurm:{job}" not in by_id(inventory.collect(FreshSession()))
    finally:
        subprocess.run(["scancel", job], check=False, capture_output=True)


def test_shut_down_refuses_malformed_and_unknown_ids(slurm):
    with pytest.raises(inventory.UnknownEntry, match="slurm:1;rm"):
        asyncio.run(inventory.shut_down("slurm:1;rm"))
    with pytest.raises(inventory.UnknownEntry, match="not a Dask worker job"):
        asyncio.run(inventory.shut_down("slurm:999999999"))
