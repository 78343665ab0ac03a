"""Clusters that own their temporary TLS directory and remove it when they close."""

from __future__ import annotations

from analysis_lib.compute.tls import TemporaryTLS

__all__ = ["OwnsTLS"]


class OwnsTLS:
    """Mixin for :class:`distributed.deploy.SpecCluster` subclasses.

    ``self.tls`` (a :class:`~analysis_lib.compute.tls.TemporaryTLS` or ``None``) is removed
    after the cluster's own close, also when that close fails.

    Examples
    --------
    >>> from distributed import LocalCluster
    >>> class Cluster(OwnsTLS, LocalCluster):
    ...     pass
    >>> Cluster.tls is None
    True
    """

    tls: TemporaryTLS | None = None

    async def _close(self) -> None:
        try:
            await super()._close()  # type: ignore[misc]
        finally:
            if self.tls is not None:
                self.tls.cleanup()
