"""``benchmarks/kernel_floor.py``: the kernel without its arithmetic keeps the kernel's outputs.

The benchmark's ``features_no_arithmetic`` arm is only a floor if the stand-in writes what
the kernel writes: the same arrays, shapes and types, for the same rows.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
from columnar_samples import write_sample

from analysis_lib.columnar import SemileptonicProcessor, kernels, run_columnar
from benchmarks.kernel_floor import FloorKernel, install, installed

VARIATIONS = ["nominal", "jes_up", "jes_down"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("floor") / "ttbar.root"
    return write_sample(path, 3000, process="ttbar", seed=5, basket_size=1000)


def _run(path):
    processor = SemileptonicProcessor(variations=VARIATIONS[1:])
    return run_columnar([path], processor, progress=False, executor="iterative", chunksize=1000)


def test_floor_pass_has_the_kernels_outputs(sample, monkeypatch):
    calls = []
    real = kernels.variation_pass

    def record(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(kernels, "variation_pass", record)
    _run(sample)
    monkeypatch.undo()
    assert len(calls) == 3  # one per chunk

    floor = FloorKernel(real)
    for args in calls:
        expected = floor(*args)  # the first call on a chunk: the real kernel
        got = floor(*args)
        assert len(got) == len(expected) == 10
        for a, b in zip(expected, got, strict=True):
            assert (a.shape, a.dtype) == (b.shape, b.dtype)
        rows, n_rows = expected[5], expected[6]
        np.testing.assert_array_equal(got[6], n_rows)
        assert n_rows.sum() > 0
        for v in range(len(n_rows)):
            np.testing.assert_array_equal(got[5][v, : n_rows[v]], rows[v, : n_rows[v]])
    assert floor.calls == {"real": 3, "floor": 3}


def test_installed_pipeline_writes_the_same_rows_without_features(sample):
    reference = _run(sample)
    with installed() as kernel:
        _run(sample)  # learns each chunk's rows
        result = _run(sample)
    assert kernels.variation_pass is kernel.real
    assert kernel.calls == {"real": 3, "floor": 3}
    for variation in VARIATIONS:
        want = reference.table(variation=variation)
        got = result.table(variation=variation)
        assert got.schema == want.schema
        assert got.num_rows == want.num_rows > 0
        np.testing.assert_array_equal(got["event"].to_numpy(), want["event"].to_numpy())
        # no arithmetic: one value per chunk where the real features vary
        assert len(np.unique(got["jet1_pt"].to_numpy())) <= 3
        assert len(np.unique(want["jet1_pt"].to_numpy())) > 100


def test_floor_kernel_rejects_a_call_it_cannot_map():
    floor = FloorKernel(kernels.variation_pass)
    with pytest.raises(TypeError, match="arguments for a kernel of"):
        floor(np.zeros(1))


def test_install_lasts_until_the_real_kernel_is_put_back(monkeypatch):
    real = kernels.variation_pass
    monkeypatch.setattr(kernels, "variation_pass", real)  # put back at the end
    kernel = install()
    del kernel
    gc.collect()  # nothing but the module holds it: the benchmark's arm keeps no reference
    assert isinstance(kernels.variation_pass, FloorKernel)
    assert kernels.variation_pass.real is real
