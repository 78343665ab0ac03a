"""What every benchmark records: the machine the numbers depend on, and the results file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
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
