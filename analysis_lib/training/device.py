"""Where training runs: the GPU when one is present (and the library can use it), else CPU.

``device="auto"`` is resolved at fit time, not at construction, so an estimator built in a
notebook on a CPU node and shipped to a GPU Dask worker trains on that worker's GPU.

* XGBoost: ``"cuda"`` if NVML sees an NVIDIA GPU and this XGBoost build has CUDA,
  else ``"cpu"``;
* TensorFlow/Keras: ``"/GPU:0"`` if ``tf.config.list_physical_devices("GPU")`` lists one,
  else ``"/CPU:0"``.

Asking explicitly for ``"cuda"`` (or ``"gpu"``) where there is none raises an error that
says so, rather than training silently on CPU.

Examples
--------
>>> resolve_xgboost_device("cpu")
'cpu'
>>> resolve_xgboost_device("auto") in ("cpu", "cuda")
True
>>> resolve_xgboost_device("tpu")
Traceback (most recent call last):
...
analysis_lib.training.errors.TrainingInputError: device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got 'tpu'
"""  # noqa: E501

from __future__ import annotations

import re

from .errors import TrainingInputError

_DEVICE = re.compile(r"^(auto|cpu|cuda|gpu)(:\d+)?$")


def nvml_gpu_count() -> int:
    """NVIDIA GPUs visible to NVML; 0 without driver, library or GPU.

    The count of :func:`analysis_lib.compute.gpus.nvml_gpu_count`, imported when called
    (``analysis_lib.compute`` imports Dask, which training alone does not need).

    Examples
    --------
    >>> nvml_gpu_count() >= 0
    True
    """
    from analysis_lib.compute.gpus import nvml_gpu_count as count

    return count()


def xgboost_has_cuda() -> bool:
    """Whether the installed XGBoost was built with CUDA."""
    import xgboost

    return bool(xgboost.build_info().get("USE_CUDA", False))


def _check(device: str) -> re.Match:
    match = _DEVICE.match(str(device))
    if match is None or (match.group(1) == "auto" and match.group(2)):
        raise TrainingInputError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}"
        )
    return match


def resolve_xgboost_device(device: str = "auto") -> str:
    """The XGBoost ``device`` string for ``device`` (``auto``, ``cpu``, ``cuda[:i]``)."""
    match = _check(device)
    kind, index = match.group(1), match.group(2) or ""
    if kind == "cpu":
        return "cpu"
    usable = nvml_gpu_count() > 0 and xgboost_has_cuda()
    if kind == "auto":
        return "cuda" if usable else "cpu"
    if not usable:
        raise TrainingInputError(
            f"device={device!r} but no usable GPU: NVML sees {nvml_gpu_count()} GPU(s), "
            f"XGBoost CUDA build: {xgboost_has_cuda()}; use device='auto' or 'cpu'"
        )
    return "cuda" + index


def tensorflow_gpus() -> list[str]:
    """Names of the GPUs TensorFlow can place ops on (empty on a CPU-only build)."""
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def resolve_tensorflow_device(device: str = "auto") -> str:
    """The TensorFlow device name (``/GPU:i`` or ``/CPU:0``) for ``device``.

    Examples
    --------
    >>> resolve_tensorflow_device("cpu")
    '/CPU:0'
    """
    match = _check(device)
    kind, index = match.group(1), int((match.group(2) or ":0")[1:])
    if kind == "cpu":
        return "/CPU:0"
    gpus = tensorflow_gpus()
    if kind == "auto":
        return "/GPU:0" if gpus else "/CPU:0"
    if index >= len(gpus):
        raise TrainingInputError(
            f"device={device!r} but TensorFlow sees {len(gpus)} GPU(s); use device='auto' or 'cpu'"
        )
    return f"/GPU:{index}"
