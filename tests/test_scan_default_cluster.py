"""``scan`` given no Dask client starts the session's local cluster, and closes it at the end."""

from __future__ import annotations

import os

import dask
import pytest
from distributed import get_client

from analysis_lib.compute.config import CONFIG_KEY
from analysis_lib.scan import Float, scan


def trim_threshold(params):
    """The worker's glibc trim threshold (the site's Dask settings set it), whatever x."""
    return float(os.environ.get("MALLOC_TRIM_THRESHOLD_", "-1")) + 0.0 * params["x"]


def test_scan_without_a_client_runs_on_the_sessions_local_cluster(tmp_path, monkeypatch):
    with pytest.raises(ValueError):
        get_client()  # no client in this process: the scan must start its own cluster
    monkeypatch.setenv("HEPML_CORES", "1")
    monkeypatch.setenv("HEPML_MEMORY", "1G")
    result = scan(
        trim_threshold,
        {"x": Float(0.0, 1.0)},
        n_trials=2,
        store=tmp_path / "store",
        sampler="random",
        seed=1,
        direction="minimize",
        progress=False,
    )
    site = dask.config.get(f"{CONFIG_KEY}.dask-config")
    wanted = float(site["distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"])
    assert [r["state"] for r in result.records] == ["done", "done"]
    # Dask's own LocalCluster would give its workers 65536
    assert [r["value"] for r in result.records] == [wanted, wanted]
    with pytest.raises(ValueError):
        get_client()  # the scan's client (and its cluster) are closed
