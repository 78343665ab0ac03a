"""Smoke test of a hepml-hub single-user environment; the images run it at build time.

Checks, in a few seconds on one core:

1. the stack imports (Jupyter, Dask and its backends, the columnar and ML libraries, and
   every subpackage of ``analysis_lib`` and ``hepml_hub``), and every installed
   distribution's requirements are met;
2. a tiny Keras 3 model (TensorFlow backend) and a tiny XGBoost model train and predict;
3. GPUs, as NVML, TensorFlow and XGBoost each see them (reported, never guessed).

Prints one JSON report and exits 0, or 1 naming every failed check. ``--stack gpu`` also
requires TensorFlow and XGBoost builds with CUDA (true in the GPU image even where the build
machine has no GPU); ``--require-gpu`` requires a GPU that NVML sees and XGBoost trains on
(and, with ``--stack gpu``, that TensorFlow sees); run it on a GPU node::

    python images/smoke.py                  # CPU image, or the project environment
    python images/smoke.py --stack gpu      # GPU image, at build time
    python images/smoke.py --stack gpu --require-gpu   # GPU image on a GPU node
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

#: Distributions the images must provide, by import name.
STACK = (
    "numpy", "scipy", "pandas", "pyarrow", "numba", "sklearn", "matplotlib", "mplhep",
    "uproot", "awkward", "coffea", "hist", "vector", "fastjet", "pythia8mc",
    "deflate", "dask", "distributed", "dask_awkward", "dask_histogram", "dask_jobqueue",
    "dask_kubernetes", "dask_gateway", "optuna", "optuna_integration", "pyhf",
    "xgboost", "keras", "tensorflow", "onnx", "onnxruntime", "onnxmltools", "tf2onnx",
    "pynvml", "ipywidgets", "ipykernel", "jupyterlab", "jupyterhub", "dask_labextension",
    "jupyter_resource_usage", "tqdm", "yaml",
)  # fmt: skip
#: Our own packages: every subpackage of these is imported.
PROJECT = ("analysis_lib", "hepml_hub")
#: Distributions that stand in for a locked one: in the GPU image the ``tensorflow`` wheel
#: (CUDA) replaces the lock's ``tensorflow-cpu`` at the same version.
SUBSTITUTES = {"gpu": {"tensorflow-cpu": "tensorflow"}, "cpu": {}}


class Smoke:
    """Runs named checks, records their results and failures."""

    def __init__(self) -> None:
        self.report: dict[str, Any] = {"python": sys.version.split()[0]}
        self.failures: list[str] = []

    def check(self, name: str, func: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            result = func()
        except Exception as exc:
            self.failures.append(f"{name}: {type(exc).__name__}: {exc}")
            self.report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc(file=sys.stderr)
            return None
        self.report[name] = result
        self.report.setdefault("seconds", {})[name] = round(time.perf_counter() - start, 2)
        return result


def import_stack() -> dict[str, str]:
    """Import every module of :data:`STACK`; return their versions."""
    versions = {}
    for name in STACK:
        module = importlib.import_module(name)
        versions[name] = str(getattr(module, "__version__", "?"))
    return versions


def import_project() -> list[str]:
    """Import every subpackage and module of :data:`PROJECT`."""
    imported = []
    for name in PROJECT:
        package = importlib.import_module(name)
        imported.append(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if info.name.split(".")[-1].startswith("_") or ".tests" in info.name:
                continue
            importlib.import_module(info.name)
            imported.append(info.name)
    return imported


def requirements_met(substitutes: dict[str, str]) -> dict[str, int]:
    """Every installed distribution's requirements are installed, at a matching version."""
    import importlib.metadata

    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    installed = {
        canonicalize_name(d.metadata["Name"]): d for d in importlib.metadata.distributions()
    }
    environment = {**default_environment(), "extra": ""}
    problems = []
    for name, dist in sorted(installed.items()):
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            wanted = canonicalize_name(requirement.name)
            found = installed.get(wanted) or installed.get(substitutes.get(wanted, ""))
            if found is None:
                problems.append(f"{name} requires {requirement}: not installed")
            elif not requirement.specifier.contains(found.version, prereleases=True):
                problems.append(f"{name} requires {requirement}: {found.version} installed")
    if problems:
        raise RuntimeError("; ".join(problems[:10]))
    return {"distributions": len(installed)}


def nvml_gpus() -> dict[str, Any]:
    """GPUs as the NVIDIA driver reports them (0 where there is no driver)."""
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"count": 0, "reason": str(exc)}
    try:
        count = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        names = [pynvml.nvmlDeviceGetName(h) for h in handles]
        driver = pynvml.nvmlSystemGetDriverVersion()
        return {"count": count, "names": [str(n) for n in names], "driver": str(driver)}
    finally:
        pynvml.nvmlShutdown()


def tensorflow_gpus() -> dict[str, Any]:
    import tensorflow as tf

    info = tf.sysconfig.get_build_info()
    return {
        "built_with_cuda": bool(tf.test.is_built_with_cuda()),
        "cuda_version": info.get("cuda_version"),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def xgboost_build() -> dict[str, Any]:
    import xgboost

    info = xgboost.build_info()
    return {"version": xgboost.__version__, "use_cuda": bool(info.get("USE_CUDA"))}


def zlib_decoder() -> dict[str, Any]:
    """The columnar pipeline's ZLIB decoder, libdeflate, must work with this uproot."""
    from analysis_lib.columnar.zlib_decoder import use_zlib_decoder

    return {"decoder": use_zlib_decoder("libdeflate")}


def _toy(n: int = 256, d: int = 8, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    return x, y


def keras_fit() -> dict[str, Any]:
    """Two epochs of a tiny classifier; the loss must be finite and the accuracy sensible."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    x, y = _toy()
    model = keras.Sequential(
        [keras.Input((x.shape[1],)), keras.layers.Dense(8, activation="relu"),
         keras.layers.Dense(1, activation="sigmoid")]
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    history = model.fit(x, y, epochs=5, batch_size=64, verbose=0)
    accuracy = float(np.mean((model.predict(x, verbose=0)[:, 0] > 0.5) == y))
    loss = float(history.history["loss"][-1])
    if not np.isfinite(loss) or accuracy < 0.7:
        raise RuntimeError(f"Keras did not learn the toy: loss {loss:.3f}, accuracy {accuracy:.2f}")
    return {"backend": keras.backend.backend(), "loss": round(loss, 4), "accuracy": accuracy}


def xgboost_fit(device: str) -> dict[str, Any]:
    """Twenty trees on the toy, on ``device`` ("cpu" or "cuda")."""
    import numpy as np
    import xgboost

    x, y = _toy()
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, device=device, n_jobs=1)
    model.fit(x, y)
    accuracy = float(np.mean(model.predict(x) == y))
    used = json.loads(model.get_booster().save_config())["learner"]["generic_param"]["device"]
    if accuracy < 0.9:
        raise RuntimeError(f"XGBoost did not learn the toy: accuracy {accuracy:.2f}")
    return {"device": used, "accuracy": accuracy}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--require-gpu", action="store_true", help="fail without a usable GPU")
    args = parser.parse_args(argv)

    smoke = Smoke()
    smoke.report["stack"] = args.stack
    smoke.check("imports", import_stack)
    smoke.check("project", import_project)
    smoke.check("requirements", lambda: requirements_met(SUBSTITUTES[args.stack]))
    smoke.check("zlib_decoder", zlib_decoder)
    nvml = smoke.check("nvml", nvml_gpus) or {"count": 0}
    tf_gpu = smoke.check("tensorflow_gpu", tensorflow_gpus) or {}
    xgb = smoke.check("xgboost_build", xgboost_build) or {}
    smoke.check("keras_fit", keras_fit)
    nvml_count = int(nvml.get("count", 0))
    xgb_device = "cuda" if nvml_count and xgb.get("use_cuda") else "cpu"
    smoke.check("xgboost_fit", lambda: xgboost_fit(xgb_device))
    tf_count = len(tf_gpu.get("gpus") or [])

    if args.stack == "gpu":
        if not tf_gpu.get("built_with_cuda"):
            smoke.failures.append("tensorflow_gpu: this TensorFlow is not built with CUDA")
        if not xgb.get("use_cuda"):
            smoke.failures.append("xgboost_build: this XGBoost is not built with CUDA")
    if args.require_gpu:
        if not nvml_count:
            smoke.failures.append("gpu: required, but NVML sees no GPU")
        if args.stack == "gpu" and not tf_count:
            smoke.failures.append("tensorflow_gpu: required, but TensorFlow sees no GPU")
        fitted = (smoke.report.get("xgboost_fit") or {}).get("device", "")
        if not fitted.startswith("cuda"):
            smoke.failures.append(f"xgboost_fit: trained on {fitted or 'nothing'}, not a GPU")

    smoke.report["gpu_detected"] = {
        "nvml": nvml_count,
        "tensorflow": tf_count,
        "xgboost": (smoke.report.get("xgboost_fit") or {}).get("device"),
    }
    smoke.report["failures"] = smoke.failures
    print(json.dumps(smoke.report, indent=2, default=str))
    for failure in smoke.failures:
        print(f"SMOKE FAILED {failure}", file=sys.stderr)
    return 1 if smoke.failures else 0


if __name__ == "__main__":
    sys.exit(main())
