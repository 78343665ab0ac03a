"""Kubernetes worker spec and dask-gateway options, built offline and validated."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from analysis_lib.compute import ComputeConfigError, resolve_settings
from analysis_lib.compute.gateway import declared_options, gateway_options
from analysis_lib.compute.kubernetes import kubernetes_cluster_spec

IMAGE = "registry.example/hepml-hub/singleuser-gpu:2026.11"


def _as(kind: str, spec: dict, name: str) -> dict:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def _spec(**overrides):
    env = {"HEPML_CORES": "4", "HEPML_MEMORY": "8G", "HEPML_GPUS": "1", "JUPYTER_IMAGE": IMAGE}
    settings = resolve_settings("kubernetes", environ=env, **overrides)
    return kubernetes_cluster_spec(settings, name="scan", environ=env)


def test_gpu_worker_spec_from_the_session():
    spec = _spec(n_workers=2, env={"OMP_NUM_THREADS": "4"})
    assert spec["kind"] == "DaskCluster" and spec["spec"]["worker"]["replicas"] == 2
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    assert worker["image"] == IMAGE
    assert spec["spec"]["scheduler"]["spec"]["containers"][0]["image"] == IMAGE
    assert worker["resources"] == {
        "requests": {"cpu": "4", "memory": "8Gi"},
        "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
    }
    args = worker["args"]
    assert args[args.index("--nthreads") + 1] == "4"
    assert args[args.index("--memory-limit") + 1] == str(8 * 2**30)
    assert args[args.index("--resources") + 1] == "GPU=1"
    assert {"name": "OMP_NUM_THREADS", "value": "4"} in worker["env"]
    # the server settings of analysis_lib.compute, as DASK_* variables
    assert {"name": "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL", "value": "1s"} in worker["env"]
    environ = {
        "name": "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON",
        "value": '{"MALLOC_TRIM_THRESHOLD_":"16777216","MALLOC_MMAP_THRESHOLD_":"16777216"}',
    }
    assert environ in worker["env"]


def test_pods_and_service_validate_against_kubernetes_1_30():
    spec = _spec()
    kubernetes_validate.validate(
        _as("Pod", spec["spec"]["worker"]["spec"], "w"), "1.30.0", strict=True
    )
    kubernetes_validate.validate(
        _as("Pod", spec["spec"]["scheduler"]["spec"], "s"), "1.30.0", strict=True
    )
    kubernetes_validate.validate(
        _as("Service", spec["spec"]["scheduler"]["service"], "s"), "1.30.0", strict=True
    )


def test_validation_would_catch_a_broken_spec():
    spec = _spec()
    pod = _as("Pod", spec["spec"]["worker"]["spec"], "w")
    pod["spec"]["containers"][0]["imagePulPolicy"] = "Always"  # misspelt: strict refuses it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, "1.30.0", strict=True)


def test_cpu_worker_has_no_gpu_limit():
    spec = _spec(gpus=0, image="other:1")
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in worker["resources"]["limits"]
    assert worker["image"] == "other:1" and "GPU=0" in worker["args"]


def test_image_is_required():
    settings = resolve_settings("kubernetes", environ={})
    with pytest.raises(ComputeConfigError, match="image=None"):
        kubernetes_cluster_spec(settings, environ={})


def test_gateway_options_offline():
    env = {"HEPML_CORES": "2", "HEPML_MEMORY": "6G", "HEPML_GPUS": "1", "JUPYTER_IMAGE": IMAGE}
    settings = resolve_settings("gateway", environ=env, env={"A": 1})
    options = gateway_options(settings, environ=env)
    assert options == {
        "worker_cores": 2,
        "worker_memory": 6.0,
        "worker_gpus": 1,
        "image": IMAGE,
        "environment": {"A": "1"},
    }
    assert dict(declared_options(options)) == options  # accepted by the server's declaration
    with pytest.raises(ValueError, match="worker_cores"):
        declared_options({**options, "worker_cores": 1000})


def test_each_session_gets_a_cluster_of_its_own():
    """Every session used the name hepml-dask: the operator connected a second session to
    the first one's cluster, and closing either deleted it for both."""
    env = {"HEPML_CORES": "1", "HEPML_MEMORY": "2G", "JUPYTER_IMAGE": IMAGE}
    names = set()
    for user in ("alice", "bob", "alice"):
        settings = resolve_settings("kubernetes", environ={**env, "JUPYTERHUB_USER": user})
        spec = kubernetes_cluster_spec(settings, environ={**env, "JUPYTERHUB_USER": user})
        name = spec["metadata"]["name"]
        assert name.startswith(f"hepml-dask-{user}-")
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 48
        names.add(name)
    assert len(names) == 3
