"""The dask-gateway backend: clusters asked from a gateway server (e.g. the Helm chart's).

The gateway server declares which cluster options users may set; hepml-hub's chart
declares :func:`declared_options` (``worker_cores``, ``worker_memory`` in GiB,
``worker_gpus``, ``image``, ``environment``). :func:`gateway_options` fills them from the
settings (the session's form choices and image by default); :func:`make_gateway_cluster`
sends them with :class:`dask_gateway.GatewayCluster`. TLS between client, scheduler and
workers is the gateway's own (it makes per-cluster certificates).

Examples
--------
>>> from analysis_lib.compute.config import resolve_settings
>>> settings = resolve_settings("gateway", environ={"HEPML_CORES": "2", "HEPML_MEMORY": "4G"},
...                             image="registry.example/hepml-cpu:1.0")
>>> options = gateway_options(settings)
>>> options["worker_cores"], options["worker_memory"], options["worker_gpus"]
(2, 4.0, 0)
>>> dict(declared_options(options))["worker_memory"]
4.0
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from analysis_lib.compute.config import ClusterSettings
from analysis_lib.compute.errors import ComputeConfigError

__all__ = ["declared_options", "gateway_options", "make_gateway_cluster"]


def gateway_options(
    settings: ClusterSettings, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Cluster options for the gateway, built offline from ``settings``."""
    env = os.environ if environ is None else environ
    image = settings.options.get("image") or env.get("JUPYTER_IMAGE")
    if not image or not isinstance(image, str):
        raise ComputeConfigError(
            "image", image, "set hepml.compute.gateway.image or $JUPYTER_IMAGE"
        )
    extra_env = settings.options.get("env") or {}
    if not isinstance(extra_env, Mapping):
        raise ComputeConfigError("env", extra_env, "expected a mapping of names to values")
    return {
        "worker_cores": settings.cores,
        "worker_memory": settings.memory / 2**30,
        "worker_gpus": settings.gpus,
        "image": image,
        "environment": {str(k): str(v) for k, v in extra_env.items()},
    }


def declared_options(
    values: Mapping[str, Any] | None = None,
    *,
    max_cores: int = 64,
    max_memory: float = 512.0,
    max_gpus: int = 8,
) -> Any:
    """The options a hepml-hub gateway server declares, as a client-side ``Options``.

    Setting ``values`` validates them the way the server does (types and ranges).
    """
    from dask_gateway.options import Float, Integer, Options, String
    from dask_gateway.options import Mapping as MappingField

    options = Options(
        Integer("worker_cores", 1, min=1, max=max_cores, label="Cores per worker"),
        Float("worker_memory", 2.0, min=0.25, max=max_memory, label="Memory per worker (GiB)"),
        Integer("worker_gpus", 0, min=0, max=max_gpus, label="GPUs per worker"),
        String("image", "", label="Image"),
        MappingField("environment", {}, label="Environment"),
    )
    if values:
        options.update(dict(values))
    return options


def make_gateway_cluster(settings: ClusterSettings) -> Any:
    """A :class:`dask_gateway.GatewayCluster` with :func:`gateway_options` (no worker yet).

    Needs a reachable gateway server (``address`` setting, else dask-gateway's config).
    """
    from dask_gateway import GatewayCluster

    kwargs: dict[str, Any] = dict(gateway_options(settings))
    if settings.options.get("address"):
        kwargs["address"] = settings.options["address"]
    return GatewayCluster(**kwargs)
