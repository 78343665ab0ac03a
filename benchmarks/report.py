"""What every benchmark records: the machine the numbers depend on, and the results file."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


#: The CPU's vector extensions that change numpy's and zlib's speed (numpy's float32
#: ``sinh``, for one, is vectorised only with AVX-512).
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl")


def cpu_simd() -> list[str]:
    """Which of :data:`SIMD_FLAGS` the CPU has (from ``/proc/cpuinfo``; empty elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [flag for flag in SIMD_FLAGS if flag in have]
    return []


def machine_info(*packages: str) -> dict[str, Any]:
    """CPUs, Python, OS, whether run as root, and the versions of ``packages``.

    >>> info = machine_info("numpy")
    >>> info["cpu_count"] >= 1 and "numpy" in info and isinstance(info["cpu_simd"], list)
    True
    """
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_simd": cpu_simd(),
        "python": platform.python_version(),
        **{name: version(name) for name in packages},
        "platform": platform.platform(),
        "root": os.geteuid() == 0,
    }


def _busy(seconds: float, start: Any, results: Any) -> None:
    """Count the rounds of a pure arithmetic loop for ``seconds`` (after ``start``)."""
    start.wait()
    stop = time.perf_counter() + seconds
    rounds = 0
    x = 1.0
    while time.perf_counter() < stop:
        for _ in range(1000):  # no memory traffic: registers and the time check only
            x = x * 1.0000001 + 1e-9
        rounds += 1
    results.put(rounds)


def _busy_rounds(processes: int, seconds: float) -> int:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_busy, args=(seconds, start, results)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    time.sleep(0.5)  # all started (spawn imports) before any counts
    start.set()
    total = sum(results.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join()
    return total


def parallel_capacity(workers: int = 2, seconds: float = 3.0, pairs: int = 5) -> dict[str, Any]:
    """How much more ``workers`` busy processes get done at once than one alone.

    One process, then ``workers`` processes, run the same arithmetic loop (no memory
    traffic, no I/O) for ``seconds``, ``pairs`` times, with one process alone again at the
    end; each sample is the rounds of the ``workers`` processes over the mean rounds of the
    lone runs just before and after. ``workers`` is the ideal; what the samples fall short
    of it is what the machine (shared or throttled cores, other jobs) takes from any
    parallel run, whatever its code: the ceiling against which a benchmark's speedups
    are read. ``single_spread`` (largest over smallest lone run, minus 1) is how much one
    core's own speed moved meanwhile: a speedup cannot be read to better than that.

    Returns
    -------
    dict
        ``samples``, ``median``, ``min``, ``max``, the loop rounds ``single_rounds`` (lone
        runs) and ``parallel_rounds`` (all processes together), ``single_spread``,
        ``workers`` and ``seconds``.

    Examples
    --------
    >>> capacity = parallel_capacity(workers=2, seconds=0.2, pairs=1)
    >>> len(capacity["samples"]), len(capacity["single_rounds"])
    (1, 2)
    >>> 0.0 < capacity["median"] < 4.0 and capacity["single_spread"] >= 0.0
    True
    """
    single = [_busy_rounds(1, seconds)]
    parallel = []
    samples = []
    for _ in range(pairs):
        parallel.append(_busy_rounds(workers, seconds))
        single.append(_busy_rounds(1, seconds))
        samples.append(parallel[-1] / max(0.5 * (single[-2] + single[-1]), 1.0))
    return {
        "samples": samples,
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "single_rounds": single,
        "parallel_rounds": parallel,
        "single_spread": max(single) / max(min(single), 1) - 1.0,
        "workers": workers,
        "seconds": seconds,
    }


def write_report(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it 0600
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
