"""The Kubernetes backend: a ``DaskCluster`` resource of the dask-kubernetes operator.

:func:`kubernetes_cluster_spec` is a pure builder (no cluster contacted): the operator's
:func:`~dask_kubernetes.operator.make_cluster_spec` with the worker sized from the
settings: CPU and memory requests and limits, ``nvidia.com/gpu`` limit for GPU workers,
``--nthreads``, ``--memory-limit`` and the Dask resource ``GPU=<n>`` on the worker command
line, and the session's own image (``$JUPYTER_IMAGE``, set by KubeSpawner) by default, so
workers run the session's environment. :func:`make_kubernetes_cluster` hands the spec to
:class:`~dask_kubernetes.operator.KubeCluster`.

Examples
--------
>>> from analysis_lib.compute.config import resolve_settings
>>> settings = resolve_settings("kubernetes", environ={}, cores=2, memory="4G", gpus=1,
...                             image="registry.example/hepml-gpu:1.0")
>>> spec = kubernetes_cluster_spec(settings, name="trial")
>>> worker = spec["spec"]["worker"]["spec"]["containers"][0]
>>> worker["resources"]["limits"]
{'cpu': '2', 'memory': '4Gi', 'nvidia.com/gpu': '1'}
>>> worker["args"][-2:]
['--resources', 'GPU=1']
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from typing import Any

from analysis_lib.compute.config import ClusterSettings
from analysis_lib.compute.errors import ComputeConfigError
from analysis_lib.compute.server_config import environment_variables

__all__ = [
    "kubernetes_cluster_spec",
    "kubernetes_quantity",
    "make_kubernetes_cluster",
    "session_cluster_name",
]


def kubernetes_quantity(nbytes: int) -> str:
    """Bytes as a Kubernetes quantity (binary suffixes when exact).

    >>> kubernetes_quantity(4 * 2**30), kubernetes_quantity(1500)
    ('4Gi', '1500')
    """
    for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if nbytes % factor == 0:
            return f"{nbytes // factor}{suffix}"
    return str(nbytes)


def _image(settings: ClusterSettings, environ: Mapping[str, str]) -> str:
    image = settings.options.get("image") or environ.get("JUPYTER_IMAGE")
    if not image or not isinstance(image, str):
        raise ComputeConfigError(
            "image", image, "set hepml.compute.kubernetes.image or $JUPYTER_IMAGE"
        )
    return image


def session_cluster_name(environ: Mapping[str, str] | None = None) -> str:
    """A ``DaskCluster`` name of this session's own: ``hepml-dask-<user>-<6 hex digits>``.

    One fixed name made every session of a namespace share one cluster: the operator
    connects to an existing cluster of that name, and closing any session deleted it.

    Examples
    --------
    >>> name = session_cluster_name({"JUPYTERHUB_USER": "Alice.Smith@cern.ch"})
    >>> name.startswith("hepml-dask-alice-smith-cern-ch-"), len(name) <= 48
    (True, True)
    """
    env = os.environ if environ is None else environ
    user = re.sub(r"[^a-z0-9]+", "-", str(env.get("JUPYTERHUB_USER", "")).lower()).strip("-")
    user = user[:24].strip("-")
    return "-".join(part for part in ("hepml-dask", user, secrets.token_hex(3)) if part)


def kubernetes_cluster_spec(
    settings: ClusterSettings,
    *,
    name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``DaskCluster`` manifest for ``settings`` (a plain dict, nothing contacted);
    ``name`` defaults to :func:`session_cluster_name`."""
    from dask_kubernetes.operator import make_cluster_spec

    env = os.environ if environ is None else environ
    name = name or session_cluster_name(env)
    extra_env = settings.options.get("env") or {}
    if not isinstance(extra_env, Mapping):
        raise ComputeConfigError("env", extra_env, "expected a mapping of names to values")
    spec = make_cluster_spec(
        name=name,
        image=_image(settings, env),
        n_workers=settings.n_workers,
        env={
            **environment_variables(settings.dask_config),
            **{str(k): str(v) for k, v in extra_env.items()},
        },
        idle_timeout=int(settings.options.get("idle_timeout") or 0),
    )
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    memory = kubernetes_quantity(settings.memory)
    limits = {"cpu": str(settings.cores), "memory": memory}
    if settings.gpus:
        limits["nvidia.com/gpu"] = str(settings.gpus)
    worker["resources"] = {
        "requests": {"cpu": str(settings.cores), "memory": memory},
        "limits": limits,
    }
    worker["args"] = [
        *worker["args"],
        "--nthreads",
        str(settings.cores),
        "--memory-limit",
        str(settings.memory),
        "--resources",
        f"GPU={settings.gpus}",
    ]
    return spec


def make_kubernetes_cluster(settings: ClusterSettings, *, name: str | None = None) -> Any:
    """A :class:`~dask_kubernetes.operator.KubeCluster` from :func:`kubernetes_cluster_spec`.

    Starts with no worker; :func:`analysis_lib.compute.make_cluster` registers the parity
    plugin before it scales. Needs a reachable Kubernetes API and the operator.
    """
    from dask_kubernetes.operator import KubeCluster

    spec = kubernetes_cluster_spec(settings, name=name)
    spec["spec"]["worker"]["replicas"] = 0
    kwargs: dict[str, Any] = {"custom_cluster_spec": spec}
    if settings.options.get("namespace"):
        kwargs["namespace"] = settings.options["namespace"]
    return KubeCluster(**kwargs)
