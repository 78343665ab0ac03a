"""The local backend: sized from the session, GPU workers by resource, optional TLS."""

from __future__ import annotations

import os
import signal
import time

import pytest

from analysis_lib.compute import (
    ComputeConfigError,
    LocalCluster,
    connect,
    local_cluster,
    make_cluster,
)
from analysis_lib.compute.gpus import visible_gpus


def test_session_choices_size_the_local_cluster():
    env = {"HEPML_DASK_BACKEND": "local", "HEPML_CORES": "2", "HEPML_MEMORY": "2G"}
    with connect(environ=env) as client:
        client.wait_for_workers(2, timeout=60)
        workers = list(client.scheduler_info(n_workers=-1)["workers"].values())
        assert len(workers) == 2
        assert {w["nthreads"] for w in workers} == {1}
        assert {w["memory_limit"] for w in workers} == {2**30}
        assert client.submit(sum, [1, 2]).result(timeout=30) == 3
        cluster = client.owned_cluster
    assert cluster.status.name == "closed"


def test_local_cluster_of_library_calls():
    # what run_columnar and scan start when given no client: inside a hub session its
    # cores and memory, outside one this machine's, and the site's Dask settings in both
    import psutil

    with local_cluster(environ={"HEPML_CORES": "1", "HEPML_MEMORY": "1G"}) as cluster:
        assert [w.memory_manager.memory_limit for w in cluster.workers.values()] == [2**30]
        assert cluster.dask_config, "the site's Dask settings"
    outside = local_cluster(environ={})
    try:
        workers = list(outside.workers.values())
        assert len(workers) == (os.cpu_count() or 1)
        total = psutil.virtual_memory().total
        assert {w.memory_manager.memory_limit for w in workers} == {total // len(workers)}
    finally:
        outside.close()
    with local_cluster(3, environ={"HEPML_CORES": "1", "HEPML_MEMORY": "3G"}) as cluster:
        assert [w.memory_manager.memory_limit for w in cluster.workers.values()] == [2**30] * 3


@pytest.mark.parametrize("workers", [0, -2, 1.5])
def test_local_cluster_refuses_a_bad_worker_count(workers):
    # 0 used to mean the default without a word
    with pytest.raises(
        ValueError, match=f"workers must be a positive integer or None, not {workers}"
    ):
        local_cluster(workers, environ={})


def test_ctrl_c_for_the_client_leaves_the_workers_and_their_data():
    # a terminal's Ctrl-C and JupyterLab's "Interrupt kernel" reach the whole process group,
    # the worker processes included: they used to die of it (their nanny started new, empty
    # ones), so an interrupted cell lost what the workers held
    before = signal.getsignal(signal.SIGINT)
    # the worker processes start with Python's own SIGINT handling (KeyboardInterrupt), even
    # where the tests run with SIGINT ignored, which new processes would inherit
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with (
            LocalCluster(
                1, threads_per_worker=1, memory_limit="1GiB", dashboard_address=None
            ) as cluster,
            connect(cluster) as client,
        ):
            client.wait_for_workers(1, timeout=60)
            data = client.scatter(list(range(1000)))
            ((address, pid),) = client.run(os.getpid).items()
            os.kill(pid, signal.SIGINT)
            time.sleep(3)  # a worker that died of it is back (a new one) within this
            assert client.run(os.getpid) == {address: pid}
            assert client.submit(sum, data).result(timeout=30) == sum(range(1000))
        # the client's own handling is left alone
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def _visible_devices() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")


def test_gpu_tasks_land_only_on_the_gpu_worker():
    """Scheduling by the GPU resource; the device id given to the worker is a label here."""
    with (
        LocalCluster(
            2, gpu_ids=["3"], threads_per_worker=1, memory_limit="1GiB", dashboard_address=None
        ) as cluster,
        connect(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        resources = {
            w["name"]: w["resources"]
            for w in client.scheduler_info(n_workers=-1)["workers"].values()
        }
        assert sorted(resources.values(), key=len) == [{}, {"GPU": 1}]
        futures = [
            client.submit(_visible_devices, resources={"GPU": 1}, pure=False) for _ in range(6)
        ]
        assert set(client.gather(futures)) == {"3"}
        cpu_only = client.run(_visible_devices)
        assert sorted(cpu_only.values()) == ["", "3"]


def test_more_gpus_than_visible_is_refused():
    with pytest.raises(ComputeConfigError) as caught:
        make_cluster("local", environ={"CUDA_VISIBLE_DEVICES": ""}, gpus=1)
    assert caught.value.field == "gpus" and "visible" in str(caught.value)


def _nvml_devices() -> int:
    from analysis_lib.compute.gpus import nvml_gpu_count

    return nvml_gpu_count()


@pytest.mark.gpu
def test_real_gpu_worker_from_the_session():
    """On a GPU machine: the session's GPU goes to one worker, GPU tasks run there."""
    env = {"HEPML_GPUS": "1", "HEPML_CORES": "2", "HEPML_MEMORY": "4G"}
    assert visible_gpus(os.environ) >= 1
    with connect("local", environ={**os.environ, **env}) as client:
        client.wait_for_workers(2, timeout=60)
        future = client.submit(_visible_devices, resources={"GPU": 1}, pure=False)
        assert future.result(timeout=30) not in ("", "<unset>")
        assert client.submit(_nvml_devices, resources={"GPU": 1}).result(timeout=30) >= 1


def test_local_tls_when_asked():
    cluster = make_cluster("local", environ={}, n_workers=1, tls=True, memory="1GiB")
    directory = cluster.tls.directory
    try:
        with connect(cluster) as client:
            client.wait_for_workers(1, timeout=60)
            assert cluster.scheduler_address.startswith("tls://")
            assert all(a.startswith("tls://") for a in client.scheduler_info()["workers"])
            assert client.submit(abs, -1).result(timeout=30) == 1
    finally:
        cluster.close()
    assert not directory.exists()


def _tick(dask_scheduler=None):
    return dask_scheduler._tick_interval


def _worker_settings():
    import dask

    keys = ("distributed.admin.tick.interval", "distributed.worker.profile.interval")
    return tuple(dask.config.get(k) for k in keys)


def _allocator():
    """The worker's allocator variables, and its page faults over 100 fresh 1 MiB arrays.

    The variables as the process started with them (``/proc/self/environ``), which is what
    glibc reads, not ``os.environ``, which a nanny also updates after the start.
    """
    import resource
    from pathlib import Path

    import numpy as np

    names = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")
    started = dict(
        item.split("=", 1)
        for item in Path("/proc/self/environ").read_bytes().decode().split("\0")
        if "=" in item
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        block = np.ones(2**17)  # 1 MiB, written: its pages are faulted in unless reused
        del block
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return tuple(started.get(n) for n in names), faults


def test_servers_get_the_configured_dask_settings(monkeypatch):
    import dask

    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)  # as in a fresh session
    # Dask's defaults: its MALLOC_TRIM_THRESHOLD_ alone (which fixes glibc's mmap threshold
    # at 128 KiB; outside pytest each 1 MiB array then costs its 256 page faults anew)
    with connect("local", environ={}, n_workers=1, memory="1GiB", dask_config={}) as client:
        client.wait_for_workers(1, timeout=60)
        assert client.run_on_scheduler(_tick) == 0.02
        assert set(client.run(_worker_settings).values()) == {("20ms", "10ms")}
        assert {env for env, _ in client.run(_allocator).values()} == {("65536", None)}

    # the packaged settings, with Dask's variable left in this process's environment (as
    # Dask's nannies leave it), which a nanny prefers to its configuration: they must win
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    before = dask.config.get("distributed.admin.tick.interval")
    cluster = make_cluster("local", environ={}, n_workers=2, cores=2, memory="2GiB")
    try:
        with connect(cluster) as client:
            client.wait_for_workers(2, timeout=60)
            assert client.run_on_scheduler(_tick) == 1.0
            assert set(client.run(_worker_settings).values()) == {("1s", "100ms")}
            # glibc's thresholds reach the worker processes, and the blocks are reused
            for env, faults in client.run(_allocator).values():
                assert env == ("16777216", "16777216")
                assert faults < 2_000, faults
            # the nannies' own event loop checks (private attribute of distributed's Server)
            assert {n._tick_interval for n in cluster.workers.values()} == {1.0}
            # a worker added later gets the settings from its nanny
            cluster.scale(3)
            client.wait_for_workers(3, timeout=60)
            assert set(client.run(_worker_settings).values()) == {("1s", "100ms")}
            envs = {env for env, _ in client.run(_allocator).values()}
            assert envs == {("16777216", "16777216")}
    finally:
        cluster.close()
    # the session's own configuration is left as it was
    assert dask.config.get("distributed.admin.tick.interval") == before
