"""GPU inventory (NVML) and allocation of GPUs to local sessions.

On a machine without NVIDIA driver or GPU, NVML cannot initialise and the inventory
reports zero GPUs: the form then shows "0 of 0 free" and GPU requests are refused.

Examples
--------
>>> inventory = GpuInventory()
>>> allocator = GpuAllocator(inventory)
>>> allocator.free() <= inventory.count()
True
>>> allocator.allocate("alice", 0)
[]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

log = logging.getLogger(__name__)


class GpuUnavailable(RuntimeError):
    """More GPUs were requested than are free."""

    def __init__(self, requested: int, free: int, total: int):
        self.requested, self.free, self.total = requested, free, total
        super().__init__(f"{requested} GPU(s) requested but only {free} of {total} free")


class GpuInventory:
    """The GPUs of this machine, as NVML sees them.

    Any NVML failure (no driver, no library) means zero GPUs, logged once.
    """

    def __init__(self) -> None:
        self._warned = False

    def count(self) -> int:
        """Number of NVIDIA GPUs visible to NVML (0 when NVML is unavailable)."""
        try:
            import pynvml

            pynvml.nvmlInit()
            try:
                return int(pynvml.nvmlDeviceGetCount())
            finally:
                pynvml.nvmlShutdown()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError
            if not self._warned:
                log.info("NVML unavailable (%s): no GPUs offered", exc)
                self._warned = True
            return 0

    def utilization(self) -> dict[int, int]:
        """GPU utilisation in percent per device index ({} without NVML)."""
        try:
            import pynvml

            pynvml.nvmlInit()
            try:
                return {
                    i: int(
                        pynvml.nvmlDeviceGetUtilizationRates(
                            pynvml.nvmlDeviceGetHandleByIndex(i)
                        ).gpu
                    )
                    for i in range(pynvml.nvmlDeviceGetCount())
                }
            finally:
                pynvml.nvmlShutdown()
        except Exception:
            return {}


class GpuAllocator:
    """Hands whole GPUs of one machine to sessions, so no two are given the same device.

    The hand-out is bookkeeping plus ``CUDA_VISIBLE_DEVICES`` in the session: it keeps
    sessions that follow it apart, but the device files stay readable to every account, so
    it does not stop a user who unsets the variable (Kubernetes' device plugin does).
    Owners are opaque strings (the spawner uses the user's name). The allocation lives in
    the hub's memory and is rebuilt after a hub restart from the spawners' saved state
    through :meth:`restore`.
    """

    def __init__(self, inventory: GpuInventory | None = None) -> None:
        self.inventory = inventory or GpuInventory()
        self._held: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def total(self) -> int:
        """All GPUs of the machine."""
        return self.inventory.count()

    def _free_ids(self) -> list[int]:
        held = {i for ids in self._held.values() for i in ids}
        return [i for i in range(self.total()) if i not in held]

    def free(self) -> int:
        """GPUs not held by any session."""
        with self._lock:
            return len(self._free_ids())

    def allocate(self, owner: str, n: int) -> list[int]:
        """Give ``n`` GPUs to ``owner`` (replacing what it held); raise if too few are free."""
        with self._lock:
            self._held.pop(owner, None)
            free = self._free_ids()
            if n > len(free):
                raise GpuUnavailable(n, len(free), self.total())
            ids = free[:n]
            if ids:
                self._held[owner] = ids
            return ids

    def restore(self, owner: str, ids: Iterable[int]) -> None:
        """Record GPUs that ``owner`` already holds (after a hub restart)."""
        ids = [int(i) for i in ids]
        with self._lock:
            if ids:
                self._held[owner] = ids

    def release(self, owner: str) -> None:
        """Return ``owner``'s GPUs."""
        with self._lock:
            self._held.pop(owner, None)

    def holders(self) -> dict[str, list[int]]:
        """A copy of who holds which GPUs."""
        with self._lock:
            return {k: list(v) for k, v in self._held.items()}
