"""The pipeline's kernel without its arithmetic: about the least time any version of it takes.

:func:`floor_pass` stands in for :func:`analysis_lib.columnar.kernels.variation_pass`
and does only what any version of it must do: read its per-jet inputs once (whole: the
kernel reads only the candidate events' jets, but through a tuple of arrays of mixed types
that is slower — on the benchmark's three chunks 35 ms per run for the whole stand-in,
against 46 ms going through the candidates' jets array by array), allocate the same
outputs (same shapes and types, in numba as the kernel does) and write them — every
per-event output, and the columns of the same rows the kernel picks (a constant instead
of the features). :class:`FloorKernel` learns those rows by running the
real kernel the first time it sees a chunk, and runs :func:`floor_pass` every later time.

``benchmarks/columnar.py`` times the pipeline with it installed (:func:`install`, the
``features_no_arithmetic`` arm): ``features - features_no_arithmetic`` is what the kernel's
arithmetic costs, and ``raw / 0.8 - features_no_arithmetic`` what it may cost for the
target.

Examples
--------
>>> import analysis_lib.columnar.kernels as kernels
>>> real = kernels.variation_pass
>>> with installed() as kernel:
...     kernels.variation_pass is kernel, kernel.real is real
(True, True)
>>> kernels.variation_pass is real
True
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator

import numba
import numpy as np
from numba import literal_unroll

from analysis_lib.columnar.kernels import pass_outputs

__all__ = ["FloorKernel", "floor_pass", "install", "installed"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def floor_pass(offsets, candidates, jets, n_var, n_sf, n_block, rows_in, n_rows_in):
    """The outputs of ``variation_pass`` for the rows ``rows_in[v, :n_rows_in[v]]``, uncomputed.

    ``jets`` is a tuple of the kernel's per-jet arrays, each read once, whole. Returns
    ``n_jets, n_bjets, sf, bits, depth, rows, n_rows, block, small, counts`` with the
    kernel's shapes and types; ``block`` holds ``n_block`` feature rows.
    """
    n = len(offsets) - 1
    cap = len(candidates)
    n_jets, n_bjets, sf, bits, depth, rows, n_rows, block, small, counts = pass_outputs(
        n_var, n, cap, n_sf, n_block
    )
    # every input the kernel reads, once: array by array, whole (see the module's text)
    total = 0.0
    for values in literal_unroll(jets):
        for j in range(len(values)):
            total += values[j]
    value = np.float32(total)
    for v in range(n_var):
        for e in range(n):
            bits[v, e] = 0
            depth[v, e] = 0
        for q in range(n_rows_in[v]):
            rows[v, q] = rows_in[v, q]
            c = v * cap + q
            for r in range(n_block):
                block[r, c] = value
            small[0, c] = 0
            small[1, c] = 0
            counts[0, c] = 0
            counts[1, c] = 0
        n_rows[v] = n_rows_in[v]
    return n_jets, n_bjets, sf, bits, depth, rows, n_rows, block, small, counts


class FloorKernel:
    """``variation_pass`` for the first call on each chunk, :func:`floor_pass` after that.

    Parameters
    ----------
    real : callable
        The kernel (:func:`analysis_lib.columnar.kernels.variation_pass`).

    Attributes
    ----------
    calls : dict
        ``{"real": int, "floor": int}``, how many calls went where.
    """

    def __init__(self, real) -> None:
        self.real = real
        self._names = list(inspect.signature(getattr(real, "py_func", real)).parameters)
        missing = sorted({"offsets", "candidates", "scalar", "n_sf"} - set(self._names))
        if missing:
            raise TypeError(f"the kernel has no argument(s) {', '.join(missing)}")
        self._rows: dict[tuple, tuple[np.ndarray, np.ndarray, int]] = {}
        self.calls = {"real": 0, "floor": 0}

    def __call__(self, *args):
        if len(args) != len(self._names):
            raise TypeError(f"{len(args)} arguments for a kernel of {len(self._names)}")
        named = dict(zip(self._names, args, strict=True))
        offsets, candidates = named["offsets"], named["candidates"]
        # a chunk is known by its sizes and its candidates (their sum: ~13 us a call)
        key = (
            len(offsets),
            int(offsets[-1]),
            len(candidates),
            int(candidates.sum()),
            len(named["scalar"]),
            int(named["n_sf"]),
        )
        if key not in self._rows:
            self.calls["real"] += 1
            out = self.real(*args)
            rows, n_rows, block = out[5], out[6], out[7]
            self._rows[key] = (rows.copy(), n_rows.copy(), block.shape[0])
            return out
        self.calls["floor"] += 1
        rows, n_rows, n_block = self._rows[key]
        # the per-jet arrays: one value per jet of the chunk
        jets = tuple(
            a
            for name, a in named.items()
            if name not in ("offsets", "candidates")
            and isinstance(a, np.ndarray)
            and a.ndim == 1
            and len(a) == offsets[-1]
        )
        n_var, n_sf = len(named["scalar"]), int(named["n_sf"])
        return floor_pass(offsets, candidates, jets, n_var, n_sf, n_block, rows, n_rows)


def install() -> FloorKernel:
    """Make the pipeline call a :class:`FloorKernel` from now on; it is returned."""
    from analysis_lib.columnar import kernels

    kernel = FloorKernel(kernels.variation_pass)
    kernels.variation_pass = kernel
    return kernel


@contextlib.contextmanager
def installed() -> Iterator[FloorKernel]:
    """:func:`install`, and the real kernel back on leaving."""
    from analysis_lib.columnar import kernels

    kernel = install()
    try:
        yield kernel
    finally:
        kernels.variation_pass = kernel.real
