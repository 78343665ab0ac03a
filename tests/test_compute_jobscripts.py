"""Batch job scripts as generated for Slurm, HTCondor and PBS: GPUs, resources, TLS, interpreter.

These clusters are built for real (scheduler started, certificates written); only the
submission is left out, as there is no HTCondor or PBS daemon here.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import dask.config
import pytest

from analysis_lib.compute import (
    HTCondorCluster,
    PBSCluster,
    SLURMCluster,
    TemporaryTLS,
    make_cluster,
)

PYTHON = "/cvmfs/sft.example/hepml/bin/python"


@pytest.fixture
def build():
    clusters = []

    def _build(backend, **kwargs):
        cluster = make_cluster(backend, environ={}, **kwargs)
        clusters.append(cluster)
        return cluster

    yield _build
    for cluster in clusters:
        cluster.close()


def _tls_lines(cluster) -> list[str]:
    directory = cluster.tls.directory
    return [
        f"--tls-ca-file {directory / 'ca.pem'}",
        f"--tls-cert {directory / 'cert.pem'}",
        f"--tls-key {directory / 'key.pem'}",
    ]


def test_slurm_gpu_job(build):
    cluster = build(
        "slurm",
        cores=4,
        memory="16G",
        gpus=2,
        queue="gpu",
        account="cms",
        walltime="02:00:00",
        python=PYTHON,
        job_script_prologue=["module load cuda"],
    )
    assert isinstance(cluster, SLURMCluster)
    script = cluster.job_script()
    for line in (
        "#SBATCH -p gpu",
        "#SBATCH -A cms",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=16G",
        "#SBATCH -t 02:00:00",
        "#SBATCH --gres=gpu:2",
        "module load cuda",
    ):
        assert line in script, line
    assert f"{PYTHON} -m distributed.cli.dask_worker tls://" in script
    assert "--nthreads 4" in script and "--resources GPU=2" in script
    assert "--protocol tls://" in script
    for line in _tls_lines(cluster):
        assert line in script


def test_slurm_cpu_job_uses_the_session_interpreter(build):
    script = build("slurm", cores=1, memory="2GiB").job_script()
    assert f"{sys.executable} -m distributed.cli.dask_worker" in script
    assert "--gres" not in script and "--resources GPU=0" in script


def test_batch_jobs_export_the_server_dask_settings(build):
    for backend in ("slurm", "htcondor", "pbs"):
        cluster = build(backend, cores=1, memory="2GiB")
        script = cluster.job_script()
        assert "export DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s" in script, backend
        assert "export DASK_DISTRIBUTED__WORKER__PROFILE__INTERVAL=100ms" in script, backend
        # the exports come before the worker starts
        assert script.index("DASK_DISTRIBUTED__ADMIN") < script.index("dask_worker"), backend
        # the worker environment, as the job's shell exports it
        command = script
        if backend == "htcondor":  # a bash -c argument, quoted the way HTCondor reads it
            (arguments,) = [x for x in script.splitlines() if x.startswith("Arguments = ")]
            command = arguments[len("Arguments = \"-c '") : -len("'\"")]
            command = command.replace("''", "'").replace('""', '"').replace("; ", "\n")
        (line,) = [
            x.strip()
            for x in command.splitlines()
            if x.strip().startswith("export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON=")
        ]
        exported = subprocess.run(
            ["bash", "-c", f"{line}; printenv DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert dask.config.collect_env(
            {"DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": exported.strip()}
        ) == {
            "distributed": {
                "nanny": {
                    "pre_spawn_environ": {
                        "MALLOC_TRIM_THRESHOLD_": "16777216",
                        "MALLOC_MMAP_THRESHOLD_": "16777216",
                    }
                }
            }
        }, backend
        # the scheduler, here in the session, was made with them too
        assert cluster.scheduler._tick_interval == 1.0
    default = build("slurm", cores=1, memory="2GiB", dask_config={}).job_script()
    assert "DASK_DISTRIBUTED" not in default


def test_htcondor_gpu_job(build):
    cluster = build(
        "htcondor",
        cores=2,
        memory="8GiB",
        gpus=1,
        disk="10GiB",
        python=PYTHON,
        job_extra_directives={"+JobFlavour": '"workday"'},
    )
    assert isinstance(cluster, HTCondorCluster)
    script = cluster.job_script()
    for line in (
        "request_gpus = 1",
        "RequestCpus = MY.DaskWorkerCores",
        "MY.DaskWorkerCores = 2",
        f"MY.DaskWorkerMemory = {8 * 2**30}",
        f"MY.DaskWorkerDisk = {10 * 2**30}",
        '+JobFlavour = "workday"',
    ):
        assert line in script, line
    assert PYTHON in script and "--resources GPU=1" in script
    # HTCondor quotes the worker's arguments; the TLS files are still named there.
    for name in ("ca.pem", "cert.pem", "key.pem"):
        assert str(cluster.tls.directory / name) in script


def test_pbs_gpu_job(build):
    cluster = build(
        "pbs", cores=8, memory="32G", gpus=4, queue="gpuq", walltime="04:00:00", python=PYTHON
    )
    assert isinstance(cluster, PBSCluster)
    script = cluster.job_script()
    for line in (
        "#PBS -q gpuq",
        "#PBS -l select=1:ncpus=8:mem=32GB:ngpus=4",
        "#PBS -l walltime=04:00:00",
    ):
        assert line in script, line
    assert f"{PYTHON} -m distributed.cli.dask_worker tls://" in script
    assert "--resources GPU=4" in script
    for line in _tls_lines(cluster):
        assert line in script


def test_tls_files_are_private_and_removed_at_close(build):
    cluster = make_cluster("pbs", environ={}, cores=1, memory="1GiB")
    directory = cluster.tls.directory
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {
        "ca.pem": 0o600,
        "cert.pem": 0o600,
        "key.pem": 0o600,
    }
    assert cluster.scheduler_address.startswith("tls://")
    cluster.close()
    assert not directory.exists()


def test_tls_can_be_turned_off(build):
    cluster = build("slurm", cores=1, memory="1GiB", tls=False)
    assert cluster.tls is None
    assert cluster.scheduler_address.startswith("tcp://")
    assert "--tls-" not in cluster.job_script()


def test_tls_directories_of_killed_sessions_are_swept(tmp_path):
    code = (
        "import os; from analysis_lib.compute.tls import TemporaryTLS; "
        f"tls = TemporaryTLS({str(tmp_path)!r}); print(tls.directory, flush=True); os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    orphan = Path(out.stdout.strip())
    assert orphan.is_dir()  # the process died without cleaning up
    fresh = TemporaryTLS(tmp_path)
    try:
        assert not orphan.exists() and fresh.directory.is_dir()
    finally:
        fresh.cleanup()


def test_importing_the_batch_backends_keeps_ctrl_c():
    # dask-jobqueue 0.9.0 replaces the SIGINT handler when imported, with one that exits
    # with status 0: a script interrupted half way (Ctrl-C, or SIGINT from a batch system)
    # then ended as if it had succeeded. In a fresh interpreter, every way in keeps it.
    code = (
        "import signal\n"
        "from analysis_lib.compute import SLURMCluster, connect, local_cluster\n"
        "import analysis_lib.columnar, analysis_lib.scan\n"
        "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
        "try:\n"
        "    signal.raise_signal(signal.SIGINT)\n"
        "except KeyboardInterrupt:\n"
        "    print('KeyboardInterrupt')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        # as a terminal's program gets it, even where the tests run with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "KeyboardInterrupt"
