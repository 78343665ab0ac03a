"""The cluster factory behind dask-labextension's "+ NEW" button.

dask-labextension builds clusters with ``labextension.factory`` from the Dask
configuration (module, class, args, kwargs) and awaits the result with
``asynchronous=True``. :func:`session_cluster` is that factory for hepml-hub: it calls
:func:`analysis_lib.compute.make_cluster`, so the panel's clusters run on the backend and
with the cores, memory and GPUs chosen in the spawn form (``HEPML_DASK_BACKEND``,
``HEPML_CORES``, ``HEPML_MEMORY``, ``HEPML_GPUS``), TLS and environment parity included.

:func:`install_defaults` points the panel at it when the server extension loads, unless
the user's own ``~/.config/dask/*.yaml`` names another factory. To get, say, Slurm
workers on the ``gpu`` partition from the panel whatever the spawn form said::

    # ~/.config/dask/labextension.yaml
    labextension:
      factory:
        kwargs:
          backend: slurm
          queue: gpu
          gpus: 1

Every key of ``kwargs`` is passed to ``make_cluster`` (``backend``, ``n_workers``,
``cores``, ``memory``, ``gpus`` and the backend's own keys such as ``queue`` or
``walltime``); restart the server (File > Hub Control Panel > Stop) to apply changes.

Examples
--------
>>> LAB_DEFAULTS["labextension"]["factory"]["class"]
'session_cluster'
>>> import asyncio
>>> async def panel():
...     cluster = await session_cluster(backend="local", n_workers=1, processes=False,
...                                     asynchronous=True)
...     workers = len(cluster.scheduler_info["workers"])
...     await cluster.close()
...     return workers
>>> asyncio.run(panel())
1
"""

from __future__ import annotations

from typing import Any

import dask.config

__all__ = ["LAB_DEFAULTS", "install_defaults", "session_cluster"]

#: dask-labextension's own factory (its packaged default): a bare LocalCluster.
UPSTREAM_FACTORY = ("dask.distributed", "LocalCluster")

#: Dask configuration defaults that point dask-labextension at :func:`session_cluster`.
LAB_DEFAULTS: dict[str, Any] = {
    "labextension": {
        "factory": {
            "module": "hepml_hub.session.labcluster",
            "class": "session_cluster",
            "args": [],
            "kwargs": {},
        }
    }
}


def install_defaults() -> bool:
    """Point ``labextension.factory`` at :func:`session_cluster` unless the user chose one.

    dask-labextension loads its defaults (a bare ``LocalCluster``) when imported, without
    overriding values already set; where the configuration names no factory or still that
    one, ours is set. ``args`` and ``kwargs`` the user set stay. Returns whether the factory
    was replaced.

    >>> with dask.config.set({"labextension.factory.module": "mysite.clusters"}):
    ...     install_defaults()
    False
    """
    factory = dask.config.get("labextension.factory", default={})
    named = (factory.get("module"), factory.get("class"))
    if named != UPSTREAM_FACTORY and named != (None, None):
        return False
    ours = LAB_DEFAULTS["labextension"]["factory"]
    dask.config.set(
        {"labextension.factory.module": ours["module"], "labextension.factory.class": ours["class"]}
    )
    return True


def session_cluster(backend: str | None = None, *, asynchronous: bool = False, **overrides: Any):
    """A cluster of the session's backend, as :func:`analysis_lib.compute.make_cluster` builds.

    Parameters
    ----------
    backend
        ``None``: the backend chosen at spawn (``$HEPML_DASK_BACKEND``); else a name of
        :data:`analysis_lib.compute.BACKENDS`.
    asynchronous
        Passed to the cluster class; dask-labextension sets it and awaits the cluster.
    **overrides
        Settings for ``make_cluster`` (``n_workers``, ``cores``, ``memory``, ``queue``...).

    Returns
    -------
    distributed.deploy.Cluster
        Awaitable when ``asynchronous`` is true.
    """
    from analysis_lib.compute import make_cluster

    if asynchronous:
        overrides["asynchronous"] = True
    return make_cluster(backend, **overrides)
