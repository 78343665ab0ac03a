"""The single-node Slurm of the tests: ``scripts/start-slurm.sh`` and ``scripts/stop-slurm.sh``.

:func:`slurm_session` backs the session fixture ``slurm`` (tests/conftest.py). It starts
(or reuses) the cluster, sets ``SLURM_CONF`` for this process so ``sbatch``, ``squeue`` and
``scancel`` (and dask-jobqueue) find it, and yields a :class:`SlurmSite`. Without root, or
when the daemons fail, the tests that use it are skipped with the reason.

Several pytest processes may share the cluster (helpers run their suites at the same time):
each holds a lease file ``<state dir>/leases/<pid>`` while it runs, and the last one to leave
stops the daemons and clears their state, so the next run starts clean.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = Path(os.environ.get("HEPML_SLURM_DIR", "/tmp/hepml-slurm"))


@dataclass(frozen=True)
class SlurmSite:
    """What tests need to submit to the local Slurm."""

    conf: Path
    partition: str
    python: str
    state_dir: Path

    @property
    def prologue(self) -> list[str]:
        """``job_script_prologue`` lines that let workers import the test modules.

        pytest imports ``tests/test_*.py`` as top-level modules, so functions defined there
        are pickled by reference; a worker that cannot import them never runs the task.
        """
        return [f"export PYTHONPATH={ROOT / 'tests'}${{PYTHONPATH:+:$PYTHONPATH}}"]

    def run(self, *args: str, timeout: float = 30) -> str:
        """Run a Slurm client command (``squeue``, ``scancel``...) and return its stdout."""
        env = {**os.environ, "SLURM_CONF": str(self.conf)}
        result = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=timeout, check=True
        )
        return result.stdout

    def job_ids(self) -> list[str]:
        """Ids of the jobs Slurm knows (pending or running)."""
        return self.run("squeue", "-h", "-o", "%i").split()

    def wait_until_no_jobs(self, ids: list[str], timeout: float = 30) -> bool:
        """True once none of ``ids`` is queued or running any more."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not set(ids) & set(self.job_ids()):
                return True
            time.sleep(0.2)
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _other_leases(leases: Path) -> list[Path]:
    others = []
    for lease in leases.glob("*"):
        if lease.name == str(os.getpid()):
            continue
        if lease.name.isdigit() and _alive(int(lease.name)):
            others.append(lease)
        else:
            with contextlib.suppress(OSError):
                lease.unlink()  # a crashed run's lease
    return others


def slurm_session() -> Iterator[SlurmSite]:
    """Start or reuse the local Slurm; skip with the reason when that is not possible."""
    if os.geteuid() != 0:
        pytest.skip("single-node Slurm needs root (the daemons run as root)")
    env = {**os.environ, "HEPML_SLURM_DIR": str(STATE_DIR)}
    try:
        started = subprocess.run(
            [str(ROOT / "scripts" / "start-slurm.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("scripts/start-slurm.sh took more than 10 minutes")
    if started.returncode != 0:
        reason = started.stderr.strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"single-node Slurm unavailable (exit {started.returncode}): {reason[0]}")
    conf = STATE_DIR / "slurm.conf"
    leases = STATE_DIR / "leases"
    leases.mkdir(exist_ok=True)
    lease = leases / str(os.getpid())
    lease.touch()
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        yield SlurmSite(conf=conf, partition="debug", python=sys.executable, state_dir=STATE_DIR)
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        lease.unlink(missing_ok=True)
        if not _other_leases(leases):
            subprocess.run(
                [str(ROOT / "scripts" / "stop-slurm.sh")],
                env=env,
                capture_output=True,
                timeout=120,
                check=False,
            )
