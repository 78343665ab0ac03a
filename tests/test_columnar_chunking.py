"""Chunks start on the entries where all read branches' baskets start (``.chunking``).

A chunk boundary inside a basket makes uproot decompress that basket for both chunks. Here:
the rule itself on many layouts (every chunk at least ``chunksize`` long except the last,
less than twice as long when the shared boundaries are closer, less than three times
always, every boundary a shared one or a cut of a long piece), and a real run on a file
whose baskets do not divide the chunk size: every basket is decompressed exactly once, the
chunks start on basket boundaries, and the tables are those of a run with other chunks.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import uproot
from columnar_samples import write_sample

from analysis_lib.columnar import SemileptonicProcessor, run_columnar
from analysis_lib.columnar.chunking import chunk_boundaries, shared_boundaries
from analysis_lib.columnar.inputs import input_branches


def _layouts(seed: int = 7, n: int = 2000):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        n_entries = int(rng.integers(0, 5000))
        # shared boundaries: none, sparse or dense; gaps from tiny to the whole file
        k = int(rng.integers(0, 40))
        shared = sorted(set(rng.integers(0, max(n_entries, 1), size=k).tolist()))
        yield n_entries, shared, int(rng.integers(1, 1200))


def test_chunks_respect_the_size_and_the_shared_boundaries():
    for n_entries, shared, size in _layouts():
        got = chunk_boundaries(shared, n_entries, size)
        if n_entries == 0:
            assert got == [0]
            continue
        assert got[0] == 0 and got[-1] == n_entries
        assert got == sorted(set(got))
        lengths = np.diff(got)
        assert (lengths[:-1] >= size).all(), (got, size)
        assert (lengths < 3 * size).all(), (got, size)
        full = [0, *sorted(b for b in shared if 0 < b < n_entries), n_entries]
        if (np.diff(full) < size).all():
            assert (lengths < 2 * size).all(), (got, size)
        # each boundary is a shared one, or cuts a run without one that is >= 2 size long
        for b in got:
            if b not in full:
                i = int(np.searchsorted(full, b))
                assert full[i] - full[i - 1] >= 2 * size, (b, full[i - 1], full[i], size)


def test_a_file_in_one_piece_is_cut_in_equal_parts():
    assert chunk_boundaries([0, 1000], 1000, 300) == [0, 333, 666, 1000]
    assert chunk_boundaries([], 1000, 300) == [0, 333, 666, 1000]
    assert chunk_boundaries([0, 1000], 1000, 600) == [0, 1000]


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100", True, None])
def test_a_bad_chunksize_is_named(bad):
    with pytest.raises(ValueError, match="chunksize must be a positive integer"):
        chunk_boundaries([0, 10], 10, bad)
    with pytest.raises(ValueError, match=f"not {bad!r}"):
        run_columnar(["/nonexistent.root"], chunksize=bad, progress=False)


@pytest.fixture(scope="module")
def baskets_of_50(tmp_path_factory):
    """600 events written in baskets of 50."""
    d = tmp_path_factory.mktemp("chunking")
    return write_sample(d / "ttbar.root", 600, process="ttbar", seed=5, basket_size=50)


def test_no_basket_is_decompressed_twice(baskets_of_50, monkeypatch):
    calls = []
    real = uproot.compression.decompress

    @functools.wraps(real)  # uproot's decompress keeps hooks as its attributes
    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(uproot.compression, "decompress", counting)
    # what the count sees: chunks of 75 entries decompress more than one read of the file
    branches = input_branches()
    with uproot.open(baskets_of_50, array_cache=None) as f:
        tree = f["Events"]
        assert shared_boundaries(tree, branches) == list(range(0, 601, 50))
        tree.arrays(branches)
        once = len(calls)
        calls.clear()
        for start in range(0, 600, 75):
            tree.arrays(branches, entry_start=start, entry_stop=start + 75)
        assert len(calls) > once
    calls.clear()
    seen: list[tuple[int, int]] = []
    processor = SemileptonicProcessor(variations=["jes_up"])
    real_process_tree = SemileptonicProcessor.process_tree

    def recording(self, tree, metadata):
        seen.append((metadata["entrystart"], metadata["entrystop"]))
        return real_process_tree(self, tree, metadata)

    monkeypatch.setattr(SemileptonicProcessor, "process_tree", recording)
    # 75 does not divide the baskets: coffea's equal split cut 600 into 8 chunks of 75,
    # and the baskets across 75, 225, 375 and 525 were decompressed for two chunks each
    aligned = run_columnar(
        [baskets_of_50], processor, executor="iterative", chunksize=75, progress=False
    )
    calls_aligned = len(calls)
    assert sorted(seen) == [(s, s + 100) for s in range(0, 600, 100)]
    calls.clear()
    whole = run_columnar(
        [baskets_of_50], processor, executor="iterative", chunksize=600, progress=False
    )
    assert seen[-1] == (0, 600)
    # the same baskets (Events' read branches, and the Runs tree) as the run in one chunk
    assert calls_aligned == len(calls) >= once
    for variation, table in whole.tables["ttbar"].items():
        assert table.num_rows > 0
        assert aligned.tables["ttbar"][variation].equals(table), variation
