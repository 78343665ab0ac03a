"""GPU detection through NVML (``nvidia-ml-py``), honouring ``CUDA_VISIBLE_DEVICES``.

Without an NVIDIA driver or GPU, NVML cannot initialise and no GPU is reported, so GPU
paths degrade to CPU-only workers.

Examples
--------
>>> n = visible_gpus()
>>> isinstance(n, int) and n >= 0
True
>>> visible_gpus(environ={"CUDA_VISIBLE_DEVICES": ""})
0
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

__all__ = ["nvml_gpu_count", "visible_gpu_ids", "visible_gpus"]

log = logging.getLogger(__name__)


def nvml_gpu_count() -> int:
    """Number of NVIDIA GPUs NVML sees on this machine (0 when NVML is unavailable).

    >>> nvml_gpu_count() >= 0
    True
    """
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError
        log.debug("NVML unavailable (%s): no GPUs", exc)
        return 0


def visible_gpus(environ: Mapping[str, str] | None = None) -> int:
    """GPUs this process may use: NVML's count, limited by ``CUDA_VISIBLE_DEVICES``.

    An empty ``CUDA_VISIBLE_DEVICES`` (what the hub sets for CPU sessions) means none.
    """
    env = os.environ if environ is None else environ
    total = nvml_gpu_count()
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return total
    ids = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    return min(total, len(ids))


def visible_gpu_ids(environ: Mapping[str, str] | None = None) -> list[str]:
    """The device ids to hand out one per worker (``CUDA_VISIBLE_DEVICES`` entries, or 0..n-1).

    >>> visible_gpu_ids({"CUDA_VISIBLE_DEVICES": ""})
    []
    """
    env = os.environ if environ is None else environ
    count = visible_gpus(env)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [str(i) for i in range(count)]
    return [v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1"][:count]
