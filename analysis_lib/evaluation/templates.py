"""Classifier-score histograms of one sample with its systematic variations (templates).

A :class:`Template` is what the pyhf model is built from: bin edges, the nominal weighted
counts, the sum of squared weights per bin (for the MC-statistics ``staterror``) and, per
uncertainty source, the ``(up, down)`` histograms. Source names follow the columnar
pipeline (:data:`analysis_lib.columnar.VARIATIONS`): ``jes``, ``jer``, ``btag_sf``,
``lepton_sf`` — without ``_up``/``_down``.

Build one from histograms directly, from scores with :func:`make_template` (weight
variations as alternative weights of the nominal events, shape variations as their own
scores and weights), or from the columnar per-variation tables with
:func:`template_from_variations` (``{"nominal": ..., "jes_up": ..., "jes_down": ...}``).

Scores outside the bin edges are put into the first or last bin (``flow="clip"``, default)
or dropped (``flow="drop"``).

Examples
--------
>>> import numpy as np
>>> t = make_template([0.1, 0.6, 0.7], [1.0, 2.0, 2.0], bins=[0.0, 0.5, 1.0],
...                   weight_variations={"btag_sf": ([1.1, 2.2, 2.2], [0.9, 1.8, 1.8])})
>>> t.nominal.tolist(), t.sumw2.tolist(), [h.tolist() for h in t.variations["btag_sf"]]
([1.0, 4.0], [1.0, 8.0], [[1.1, 4.4], [0.9, 3.6]])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .validation import event_weights, finite_1d

__all__ = ["Template", "histogram", "make_template", "template_from_variations"]

FloatArray = NDArray[np.float64]
Flow = Literal["clip", "drop"]


def _edges(bins: ArrayLike | int, range_: tuple[float, float]) -> FloatArray:
    if isinstance(bins, int | np.integer) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"bins must be >= 1 when given as a count, got {bins}")
        lo, hi = float(range_[0]), float(range_[1])
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"range must be two finite numbers, low < high, got {range_!r}")
        return np.linspace(lo, hi, int(bins) + 1)
    edges = finite_1d("bins", bins)
    if len(edges) < 2:
        raise ValueError(f"bins needs at least two edges, got {edges.tolist()}")
    steps = np.diff(edges)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(
            f"bin edges must increase strictly; edge {i + 1} ({float(edges[i + 1])!r}) follows "
            f"{float(edges[i])!r}"
        )
    return edges


def histogram(
    scores: ArrayLike,
    weights: ArrayLike | None,
    edges: ArrayLike,
    *,
    flow: Flow = "clip",
    name: str = "scores",
) -> tuple[FloatArray, FloatArray]:
    """Weighted counts and sums of squared weights of ``scores`` in the bins ``edges``.

    Examples
    --------
    >>> counts, sumw2 = histogram([-1.0, 0.2, 0.9, 5.0], [1, 1, 2, 3], [0.0, 0.5, 1.0])
    >>> counts.tolist(), sumw2.tolist()
    ([2.0, 5.0], [2.0, 13.0])
    """
    edges = _edges(edges, (0.0, 1.0))
    x = finite_1d(name, scores, allow_empty=True)
    w = event_weights(f"{name} weights", weights, len(x))
    if flow == "clip":
        # fold the under/overflow into the outer bins (the last bin includes its right edge)
        x = np.clip(x, edges[0], edges[-1])
    elif flow != "drop":
        raise ValueError(f"flow must be 'clip' or 'drop', got {flow!r}")
    counts, _ = np.histogram(x, bins=edges, weights=w)
    sumw2, _ = np.histogram(x, bins=edges, weights=w * w)
    return counts.astype(np.float64), sumw2.astype(np.float64)


@dataclass(frozen=True, eq=False)
class Template:
    """Score histograms of one sample: nominal, MC statistics and variations.

    Parameters
    ----------
    edges : array_like, shape (n + 1,)
        Bin edges, strictly increasing.
    nominal : array_like, shape (n,)
        Expected (weighted) events per bin.
    sumw2 : array_like, shape (n,), optional
        Sum of squared weights per bin (needed for ``staterror``).
    variations : mapping of str to (up, down), optional
        Per uncertainty source, the varied histograms, each of shape (n,).

    Examples
    --------
    >>> Template([0.0, 0.5, 1.0], [3.0, 1.0], variations={"jes": ([3.3, 1.1], [2.7, 0.9])})
    ... # doctest: +ELLIPSIS
    Template(edges=array([0. , 0.5, 1. ]), nominal=array([3., 1.]), sumw2=None, ...)
    >>> Template([0.0, 0.5, 1.0], [3.0, 1.0], variations={"jes": ([3.3], [2.7, 0.9])})
    Traceback (most recent call last):
    ...
    ValueError: variation 'jes' up has 1 bins, the template has 2 (edges [0.0, 0.5, 1.0])
    """

    edges: FloatArray
    nominal: FloatArray
    sumw2: FloatArray | None = None
    variations: Mapping[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        edges = _edges(self.edges, (0.0, 1.0))
        n = len(edges) - 1

        def hist(what: str, values: ArrayLike) -> FloatArray:
            arr = finite_1d(what, values)
            if len(arr) != n:
                raise ValueError(
                    f"{what} has {len(arr)} bins, the template has {n} (edges {edges.tolist()})"
                )
            return arr

        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "nominal", hist("nominal", self.nominal))
        if self.sumw2 is not None:
            sumw2 = hist("sumw2", self.sumw2)
            if np.any(sumw2 < 0):
                raise ValueError(f"sumw2 must be >= 0, got {sumw2.tolist()}")
            object.__setattr__(self, "sumw2", sumw2)
        variations = {}
        for name, pair in dict(self.variations).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"variation names must be non-empty strings, got {name!r}")
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ValueError(f"variation {name!r} must be an (up, down) pair, got {pair!r}")
            up = hist(f"variation {name!r} up", pair[0])
            down = hist(f"variation {name!r} down", pair[1])
            variations[name] = (up, down)
        object.__setattr__(self, "variations", variations)

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return len(self.nominal)


def make_template(
    scores: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    bins: ArrayLike | int,
    range: tuple[float, float] = (0.0, 1.0),
    weight_variations: Mapping[str, tuple[ArrayLike, ArrayLike]] | None = None,
    shape_variations: Mapping[str, tuple[tuple[ArrayLike, ArrayLike], tuple[ArrayLike, ArrayLike]]]
    | None = None,
    flow: Flow = "clip",
) -> Template:
    """Histogram the scores of one sample, nominal and varied.

    Parameters
    ----------
    scores : array_like, shape (n,)
        Classifier scores of the nominal events.
    weights : array_like, shape (n,), optional
        Their weights, normalised to the expected yield.
    bins : array_like or int
        Bin edges, or a number of equal bins over ``range``.
    range : (float, float)
        The span of ``bins`` when it is a count; (0, 1) by default.
    weight_variations : mapping of str to (up_weights, down_weights), optional
        Alternative weights of the nominal events (``btag_sf``, ``lepton_sf``), length n.
    shape_variations : mapping of str to ((up_scores, up_weights), (down_scores, down_weights))
        Re-selected and re-scored events (``jes``, ``jer``), any lengths.
    flow : {"clip", "drop"}
        What to do with scores outside the edges.

    Examples
    --------
    >>> t = make_template([0.2, 0.8], bins=2,
    ...                   shape_variations={"jes": (([0.6, 0.8], None), ([0.2, 0.3], None))})
    >>> t.nominal.tolist(), [h.tolist() for h in t.variations["jes"]]
    ([1.0, 1.0], [[0.0, 2.0], [2.0, 0.0]])
    """
    edges = _edges(bins, range)
    x = finite_1d("scores", scores, allow_empty=True)
    w = event_weights("weights", weights, len(x))
    nominal, sumw2 = histogram(x, w, edges, flow=flow)
    variations: dict[str, tuple[FloatArray, FloatArray]] = {}
    for name, (up_w, down_w) in dict(weight_variations or {}).items():
        pair = []
        for side, wv in (("up", up_w), ("down", down_w)):
            wv = event_weights(f"weight variation {name!r} {side}", wv, len(x))
            pair.append(histogram(x, wv, edges, flow=flow)[0])
        variations[name] = (pair[0], pair[1])
    for name, (up, down) in dict(shape_variations or {}).items():
        if name in variations:
            raise ValueError(f"variation {name!r} is both a weight and a shape variation")
        pair = []
        for side, (xs, ws) in (("up", up), ("down", down)):
            label = f"shape variation {name!r} {side} scores"
            pair.append(histogram(xs, ws, edges, flow=flow, name=label)[0])
        variations[name] = (pair[0], pair[1])
    return Template(edges=edges, nominal=nominal, sumw2=sumw2, variations=variations)


def template_from_variations(
    tables: Mapping[str, tuple[ArrayLike, ArrayLike | None]],
    *,
    bins: ArrayLike | int,
    range: tuple[float, float] = (0.0, 1.0),
    flow: Flow = "clip",
) -> Template:
    """A template from per-variation ``(scores, weights)``, keyed like the columnar tables.

    Keys are ``"nominal"`` and ``"<source>_up"``/``"<source>_down"`` pairs (``jes_up``,
    ``btag_sf_down``, ...); each value holds the scores and weights of that variation's
    events (for a weight variation: the nominal scores with the varied weights).

    Raises
    ------
    ValueError
        No ``nominal``, a key that is not ``<source>_up``/``<source>_down``, or a source
        with only one direction.

    Examples
    --------
    >>> t = template_from_variations({"nominal": ([0.2, 0.8], None),
    ...                               "jes_up": ([0.6, 0.8], None),
    ...                               "jes_down": ([0.2, 0.3], None)}, bins=2)
    >>> sorted(t.variations)
    ['jes']
    >>> template_from_variations({"nominal": ([0.2], None), "jes_up": ([0.3], None)}, bins=2)
    Traceback (most recent call last):
    ...
    ValueError: variation 'jes_up' has no matching 'jes_down'
    """
    if "nominal" not in tables:
        raise ValueError(f"no 'nominal' among the variations {sorted(tables)}")
    pairs: dict[str, dict[str, tuple]] = {}
    for key, value in tables.items():
        if key == "nominal":
            continue
        source, _, direction = str(key).rpartition("_")
        if not source or direction not in ("up", "down"):
            raise ValueError(
                f"variation {key!r} is not named <source>_up or <source>_down "
                "(e.g. 'jes_up', 'btag_sf_down')"
            )
        pairs.setdefault(source, {})[direction] = value
    for source, sides in pairs.items():
        for have, missing in (("up", "down"), ("down", "up")):
            if have in sides and missing not in sides:
                raise ValueError(
                    f"variation '{source}_{have}' has no matching '{source}_{missing}'"
                )
    scores, weights = tables["nominal"]
    shape = {source: (sides["up"], sides["down"]) for source, sides in pairs.items()}
    return make_template(scores, weights, bins=bins, range=range, shape_variations=shape, flow=flow)
