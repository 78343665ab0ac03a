"""The local backend: worker processes on the session's own machine.

:class:`LocalCluster` is :class:`distributed.LocalCluster` plus GPU pinning: given
``gpu_ids``, the first workers get one GPU each (``CUDA_VISIBLE_DEVICES`` set to that id and
the Dask resource ``GPU=1``), the others none (``CUDA_VISIBLE_DEVICES=""``), so tasks that
ask for ``resources={"GPU": 1}`` run only on a worker that owns a GPU. Workers are added
through :meth:`scale`, so GPUs freed by retired workers go to new ones.

Worker processes ignore the SIGINT of a Ctrl-C or of JupyterLab's "Interrupt kernel",
which is meant for the client (:mod:`~analysis_lib.compute.worker_interrupts`).

Given ``dask_config`` (:mod:`~analysis_lib.compute.server_config`), the scheduler and the
first nannies are made with those Dask settings applied, and every worker process, also
of workers added later, gets them from its nanny. Its worker environment entries
(``distributed.nanny.pre-spawn-environ.<NAME>``) are set in this process's environment
when the cluster is made, as Dask's nannies set theirs when they start a worker: a nanny
takes such a variable from there before its configuration.

Examples
--------
>>> cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
...                        dashboard_address=None)
>>> cluster.worker_spec[0]["options"]["resources"]
{}
>>> cluster.close()
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dask.config
import distributed

from analysis_lib.compute import worker_interrupts
from analysis_lib.compute.owned_tls import OwnsTLS
from analysis_lib.compute.server_config import applied, split_worker_environ
from analysis_lib.compute.tls import TemporaryTLS

__all__ = ["LocalCluster"]


class LocalCluster(OwnsTLS, distributed.LocalCluster):
    """A local cluster whose workers own at most one GPU each.

    Parameters
    ----------
    n_workers
        Workers started right away (through :meth:`scale`).
    gpu_ids
        Device ids to hand out, one per worker (``CUDA_VISIBLE_DEVICES`` entries).
    tls
        Certificates of this cluster, removed when it closes.
    dask_config
        Dask settings (dotted keys) for the scheduler, nannies and workers.
    **kwargs
        Passed to :class:`distributed.LocalCluster`.
    """

    def __init__(
        self,
        n_workers: int = 0,
        *,
        gpu_ids: list[str] | tuple[str, ...] = (),
        tls: TemporaryTLS | None = None,
        dask_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.gpu_ids = [str(g) for g in gpu_ids]
        self.tls = tls
        self.dask_config = dict(dask_config or {})
        if tls is not None:
            kwargs.setdefault("security", tls.security)
            kwargs.setdefault("protocol", "tls://")
        # a nanny takes the worker environment from this process's variables first, and sets
        # its entries here itself when it starts a worker: set here, they also reach the
        # workers that scale() adds later
        _, environ = split_worker_environ(self.dask_config)
        os.environ.update({name: str(value) for name, value in environ.items()})
        # the scheduler and the first nannies read the settings when they are made
        with applied(self.dask_config):
            super().__init__(n_workers=0, **kwargs)
            if n_workers:
                self.scale(n_workers)
                if not self.asynchronous:
                    self.sync(self._correct_state)

    def new_worker_spec(self) -> dict[Any, dict[str, Any]]:
        """The next worker's spec, with a free GPU if one is left."""
        spec = super().new_worker_spec()
        used = {
            s.get("options", {}).get("env", {}).get("CUDA_VISIBLE_DEVICES")
            for s in self.worker_spec.values()
        }
        free = [g for g in self.gpu_ids if g not in used]
        for name, worker in spec.items():
            options = dict(worker["options"])
            env = dict(options.get("env") or {})
            if free:
                env["CUDA_VISIBLE_DEVICES"] = free.pop(0)
                options["resources"] = {"GPU": 1}
            else:
                if self.gpu_ids:
                    env["CUDA_VISIBLE_DEVICES"] = ""
                options["resources"] = {}
            if worker["cls"] is distributed.Nanny:
                if env:
                    options["env"] = env
                # the worker process ignores the SIGINT of its client's Ctrl-C
                preload = options.get("preload") or dask.config.get("distributed.worker.preload")
                options["preload"] = [*(preload or []), worker_interrupts.PRELOAD]
                settings, _ = split_worker_environ(self.dask_config)
                if settings:  # set in the worker process (dotted keys)
                    options["config"] = {**(options.get("config") or {}), **settings}
            spec[name] = {**worker, "options": options}
        return spec
