"""Where the chunks of a file start: on entry boundaries that all its read branches share.

uproot decompresses a basket whole, however few of its entries a chunk asks for. A chunk
boundary inside a basket therefore makes both chunks decompress it: on a file with baskets
of 50 000 entries, chunks of 75 000 made the pipeline 24 % slower than chunks of 100 000,
and chunks of 60 000 45 % slower (every basket that straddles a boundary is read twice).
The boundaries that the baskets of all the branches a run reads share (``TTree``
clusters in files ROOT writes, every ``extend`` in files uproot writes) avoid that:

* consecutive boundaries are joined until a chunk has at least ``chunksize`` entries (as
  coffea's ``align_clusters`` does; :func:`chunk_boundaries` gives coffea this list);
* a run of entries without a shared boundary that is at least twice ``chunksize`` long
  (a file written in one piece) is cut into equal parts of at least ``chunksize`` entries,
  so that a chunk never holds a huge file whole.

A chunk then holds at least ``chunksize`` entries (except the last of a file) and, when
the shared boundaries are closer than ``chunksize``, less than twice as many; in any case
less than three times as many.

Examples
--------
>>> chunk_boundaries([0, 50_000, 100_000, 150_000, 200_000], 200_000, 75_000)
[0, 100000, 200000]
>>> chunk_boundaries([0, 450_000], 450_000, 100_000)  # one piece: equal parts
[0, 112500, 225000, 337500, 450000]
>>> chunk_boundaries([0], 0, 100_000)
[0]
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterable

__all__ = ["check_chunksize", "chunk_boundaries", "shared_boundaries"]


def check_chunksize(chunksize: int) -> int:
    """``chunksize`` as an int, or a ValueError naming it if it is not a positive integer.

    Examples
    --------
    >>> check_chunksize(50_000)
    50000
    >>> check_chunksize(0)
    Traceback (most recent call last):
    ...
    ValueError: chunksize must be a positive integer, not 0
    """
    if isinstance(chunksize, bool) or not isinstance(chunksize, numbers.Integral) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive integer, not {chunksize!r}")
    return int(chunksize)


def shared_boundaries(tree, branches: Iterable[str]) -> list[int]:
    """The entry numbers at which the baskets of all ``branches`` of ``tree`` begin or end.

    Includes 0 and the number of entries. For an RNTuple, the starts of its clusters.

    Examples
    --------
    >>> import os, tempfile, numpy as np, uproot
    >>> path = os.path.join(tempfile.mkdtemp(), "t.root")
    >>> with uproot.recreate(path) as f:
    ...     tree = f.mktree("Events", {"x": np.float64, "y": np.int64})
    ...     tree.extend({"x": np.arange(3.0), "y": np.arange(3)})  # a basket per branch
    ...     tree.extend({"x": np.arange(2.0), "y": np.arange(2)})
    >>> with uproot.open(path) as f:
    ...     shared_boundaries(f["Events"], ["x", "y"])
    [0, 3, 5]
    """
    n_entries = int(tree.num_entries)
    if hasattr(tree, "common_entry_offsets"):  # TTree
        names = set(branches)
        found = tree.common_entry_offsets(filter_name=lambda name: name in names)
    else:  # RNTuple: its clusters
        found = [c.num_first_entry for c in getattr(tree, "cluster_summaries", ())]
    return sorted({int(x) for x in found if 0 <= x <= n_entries} | {0, n_entries})


def chunk_boundaries(boundaries: Iterable[int], n_entries: int, chunksize: int) -> list[int]:
    """The entries at which a file's chunks start, and its number of entries at the end.

    Parameters
    ----------
    boundaries : iterable of int
        Entry numbers where a chunk may start without cutting a basket
        (:func:`shared_boundaries`); values outside ``[0, n_entries]`` are ignored.
    n_entries : int
        Entries of the file.
    chunksize : int
        The smallest chunk wanted (positive).

    Returns
    -------
    list of int
        Ascending, from 0 to ``n_entries`` (just ``[0]`` for an empty file); chunk ``i``
        is ``[result[i], result[i + 1])``.

    Raises
    ------
    ValueError
        ``chunksize`` is not a positive integer, or ``n_entries`` is negative.
    """
    chunksize = check_chunksize(chunksize)
    if n_entries < 0:
        raise ValueError(f"n_entries must not be negative, not {n_entries!r}")
    if n_entries == 0:
        return [0]
    shared = sorted({int(b) for b in boundaries if 0 < b < n_entries} | {0, n_entries})
    # cut long runs without a shared boundary into equal parts of at least chunksize
    points: list[int] = [0]
    for start, stop in itertools.pairwise(shared):
        parts = max((stop - start) // chunksize, 1)
        points += [start + i * (stop - start) // parts for i in range(1, parts)]
        points.append(stop)
    # join them until each chunk has at least chunksize entries
    out = [0]
    for point in points[1:]:
        if point - out[-1] >= chunksize:
            out.append(point)
    if out[-1] != n_entries:
        out.append(n_entries)
    return out
