"""Slurm ``scale(2)`` until 2 workers are connected, against a LocalCluster start, in one run.

The benchmark starts (or reuses) the single-node Slurm of ``scripts/start-slurm.sh`` and
measures, interleaved, ``--repeats`` times each:

``slurm_scale``
    on a Slurm cluster built by ``analysis_lib.compute.make_cluster("slurm", ...)`` (TLS with
    per-cluster certificates and the environment-parity check on, as by default; 1 core and
    1 GiB per job), the time from ``cluster.scale(jobs=2)`` until the scheduler has 2
    workers that passed the parity check (``wait_for_workers``): two ``sbatch`` calls, the
    jobs scheduled, two interpreters started on the node, imports, TLS handshakes;
``slurm_total`` (informational)
    the same plus building the cluster (scheduler start, certificates);
``local_start`` (baseline)
    ``make_cluster("local", n_workers=2, ...)`` (two nanny worker processes on this
    machine, same parity check, no TLS) until 2 workers are connected: the cost of starting
    two Dask workers without a batch system.

Target: ``median(slurm_scale) <= 10 s``. ``ratio = median(slurm_scale) / median(local_start)``
shows what the batch system adds. Results go to ``benchmarks/results/slurm_scale.json``
(written atomically). Needs root for the Slurm daemons; the daemons are stopped at the end
when this run started them.

Examples
--------
From the repository root::

    .venv/bin/python -m benchmarks.slurm_scale
    .venv/bin/python -m benchmarks.slurm_scale --repeats 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analysis_lib.compute import connect, make_cluster, wait_for_workers  # noqa: E402
from benchmarks.report import machine_info, write_report  # noqa: E402

TARGET_S = 10.0


def _slurm_running(state_dir: Path) -> bool:
    pid_files = [state_dir / "slurmctld.pid", state_dir / "slurmd.pid"]
    for pid_file in pid_files:
        try:
            os.kill(int(pid_file.read_text()), 0)
        except (OSError, ValueError):
            return False
    return True


def time_slurm(partition: str, log_dir: str) -> tuple[float, float]:
    """(scale → 2 workers, build + scale → 2 workers) in seconds; the cluster is closed."""
    t0 = time.perf_counter()
    cluster = make_cluster(
        "slurm",
        environ={},
        cores=1,
        memory="1GiB",
        queue=partition,
        walltime="00:10:00",
        log_directory=log_dir,
    )
    try:
        with connect(cluster) as client:
            t1 = time.perf_counter()
            cluster.scale(jobs=2)
            wait_for_workers(client, 2, timeout=120)
            t2 = time.perf_counter()
    finally:
        cluster.close()
    return t2 - t1, t2 - t0


def time_local() -> float:
    """Seconds from building a 2-worker local cluster until both workers are connected."""
    t0 = time.perf_counter()
    cluster = make_cluster("local", environ={}, n_workers=2, cores=2, memory="2GiB")
    try:
        with connect(cluster) as client:
            wait_for_workers(client, 2, timeout=120)
            elapsed = time.perf_counter() - t0
    finally:
        cluster.close()
    return elapsed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each (3)")
    parser.add_argument("--partition", default="debug", help="Slurm partition (debug)")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "slurm_scale.json",
        help="results file",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write the results file, print a summary."""
    args = parse_args(argv)
    state_dir = Path(os.environ.get("HEPML_SLURM_DIR", "/tmp/hepml-slurm"))
    was_running = _slurm_running(state_dir)
    started = subprocess.run(
        [str(ROOT / "scripts" / "start-slurm.sh")], capture_output=True, text=True
    )
    if started.returncode != 0:
        print(started.stderr, file=sys.stderr)
        return started.returncode
    os.environ["SLURM_CONF"] = str(state_dir / "slurm.conf")
    samples: dict[str, list[float]] = {"slurm_scale": [], "slurm_total": [], "local_start": []}
    try:
        with tempfile.TemporaryDirectory() as logs:
            time_local()  # warm-up: imports, page cache
            for _ in range(args.repeats):
                samples["local_start"].append(time_local())
                scale, total = time_slurm(args.partition, logs)
                samples["slurm_scale"].append(scale)
                samples["slurm_total"].append(total)
    finally:
        if not was_running:
            subprocess.run([str(ROOT / "scripts" / "stop-slurm.sh")], capture_output=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    result: dict[str, Any] = {
        "benchmark": "slurm_scale",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": {"repeats": args.repeats, "jobs": 2, "cores_per_job": 1, "tls": True},
        "samples_s": samples,
        "median_s": medians,
        "ratio_slurm_to_local": medians["slurm_scale"] / medians["local_start"],
        "target_s": TARGET_S,
        "meets_target": medians["slurm_scale"] <= TARGET_S,
        "machine": machine_info("dask", "distributed", "dask-jobqueue"),
    }
    write_report(args.output, result)
    for name, value in medians.items():
        print(f"{name:12s} median {value:6.2f} s  samples {[round(v, 2) for v in samples[name]]}")
    print(f"slurm scale(2) -> 2 workers: {medians['slurm_scale']:.2f} s (target <= {TARGET_S} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
