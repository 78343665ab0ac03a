"""Environment parity: a worker started from a different environment is refused, clearly.

The "different environment" is the session's interpreter with a site directory in front of
its own (``PYTHONPATH``) that holds another installed version of ``toolz``: a copy of the
package with a ``.dist-info`` saying 0.10.0, the way pip would have installed it. Python,
``importlib.metadata`` and Dask on that worker all see toolz 0.10.0; the client sees its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from importlib.metadata import distribution, version
from pathlib import Path

import pytest

from analysis_lib.compute import (
    EnvironmentSkewError,
    connect,
    make_cluster,
    refusals,
    wait_for_workers,
)
from analysis_lib.compute.parity import environment_versions

SKEWED = "0.10.0"


@pytest.fixture(scope="module")
def skewed_site(tmp_path_factory) -> Path:
    """A site directory shadowing toolz with version 0.10.0."""
    site = tmp_path_factory.mktemp("skewed-site")
    installed = distribution("toolz")
    package = Path(installed.locate_file("toolz"))
    shutil.copytree(package, site / "toolz")
    info = site / f"toolz-{SKEWED}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: toolz\nVersion: {SKEWED}\n")
    (info / "INSTALLER").write_text("pip\n")
    return site


def _worker(address: str, extra_path: Path | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            address,
            "--nthreads",
            "1",
            "--no-dashboard",
            "--memory-limit",
            "500MB",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_skewed_site_really_changes_the_version(skewed_site):
    code = "import importlib.metadata as m; print(m.version('toolz'))"
    env = {**os.environ, "PYTHONPATH": str(skewed_site)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == SKEWED != version("toolz")


def test_worker_with_other_package_version_is_refused(skewed_site):
    ours = version("toolz")
    cluster = make_cluster("local", environ={}, n_workers=0, cores=1, memory="1GiB")
    skewed = good = None
    try:
        with connect(cluster) as client:
            skewed = _worker(cluster.scheduler_address, skewed_site)
            with pytest.raises(EnvironmentSkewError) as caught:
                wait_for_workers(client, 1, timeout=60)
            message = str(caught.value)
            assert f"toolz {ours} on the client but {SKEWED} on the worker" in message
            assert "start them from the session's environment" in message
            assert len(refusals(client)) == 1
            # The refused worker is told to close: its process exits, it gets no task.
            assert skewed.wait(timeout=30) is not None
            assert client.scheduler_info(n_workers=-1)["workers"] == {}

            good = _worker(cluster.scheduler_address, None)
            wait_for_workers(client, 1, timeout=60)
            assert client.submit(abs, -3).result(timeout=30) == 3
            assert len(refusals(client)) == 1
    finally:
        for proc in (skewed, good):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        cluster.close()


def test_a_held_worker_never_runs_before_its_check(skewed_site):
    # right after registering, a worker reports itself running; the hold must outlast that
    cluster = make_cluster("local", environ={}, n_workers=0, cores=1, memory="1GiB")
    skewed = None
    try:
        with connect(cluster) as client:
            skewed = _worker(cluster.scheduler_address, skewed_site)
            seen: set[str] = set()
            deadline = time.monotonic() + 60
            while not refusals(client) and time.monotonic() < deadline:
                info = client.scheduler_info(n_workers=-1)["workers"].values()
                seen |= {w.get("status") for w in info}
                time.sleep(0.005)
            assert refusals(client), "the skewed worker was not refused"
            assert "running" not in seen, seen
            # every status change the scheduler made (polling can miss a short hold): held
            # at once, then refused, never running in between
            changes = [
                event["status"]
                for events in client.get_events().values()
                for _, event in events
                if isinstance(event, dict) and event.get("action") == "worker-status-change"
            ]
            assert changes[:2] == ["paused", "closing_gracefully"], changes
            assert "running" not in changes, changes
    finally:
        if skewed is not None and skewed.poll() is None:
            skewed.terminate()
            skewed.wait(timeout=30)
        cluster.close()


def test_warn_mode_keeps_the_worker_and_reports(skewed_site):
    cluster = make_cluster("local", environ={}, n_workers=0, parity="warn", memory="1GiB")
    proc = None
    try:
        with connect(cluster) as client:
            proc = _worker(cluster.scheduler_address, skewed_site)
            wait_for_workers(client, 1, timeout=60)
            deadline = time.monotonic() + 20
            events = []
            while not events and time.monotonic() < deadline:
                events = client.get_events("hepml-parity")
                time.sleep(0.1)
            assert events and "toolz" in events[0][1]["message"]
            assert refusals(client) == []
            assert client.submit(abs, -4).result(timeout=30) == 4
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        cluster.close()


def test_reference_versions_are_the_clients():
    versions = environment_versions(["toolz", "hepml-hub", "no-such-distribution-xyz"])
    assert versions["toolz"] == version("toolz")
    assert versions["python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert versions["no-such-distribution-xyz"] is None
