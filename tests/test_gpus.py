"""GPU inventory and allocation. No GPU here: the inventory is replaced by a fixed count."""

from __future__ import annotations

import pytest

from hepml_hub.gpus import GpuAllocator, GpuInventory, GpuUnavailable


class FixedInventory(GpuInventory):
    """An inventory that reports a recorded number of devices."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def count(self) -> int:
        return self.n


def test_nvml_without_gpu_reports_zero():
    assert GpuInventory().count() >= 0
    assert isinstance(GpuInventory().utilization(), dict)


def test_allocation_hands_out_distinct_devices():
    alloc = GpuAllocator(FixedInventory(3))
    assert alloc.allocate("alice/", 2) == [0, 1]
    assert alloc.allocate("bob/", 1) == [2]
    assert alloc.free() == 0
    with pytest.raises(GpuUnavailable, match="1 GPU\\(s\\) requested but only 0 of 3 free"):
        alloc.allocate("carol/", 1)
    alloc.release("alice/")
    assert alloc.allocate("carol/", 2) == [0, 1]


def test_restore_after_restart_keeps_devices_taken():
    alloc = GpuAllocator(FixedInventory(2))
    alloc.restore("alice/", [1])
    assert alloc.allocate("bob/", 1) == [0]
    assert alloc.holders() == {"alice/": [1], "bob/": [0]}


def test_reallocation_replaces_previous_holding():
    alloc = GpuAllocator(FixedInventory(2))
    alloc.allocate("alice/", 2)
    assert alloc.allocate("alice/", 1) == [0]
    assert alloc.free() == 1


@pytest.mark.gpu
def test_real_gpus_are_counted():
    assert GpuAllocator().total() >= 1
