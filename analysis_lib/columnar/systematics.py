"""Systematic variations as named variations, coffea style.

====================== ====== ===============================================================
name                   kind   effect
====================== ====== ===============================================================
``nominal``            -      the input as it is
``jes_up, jes_down``   shape  every jet's pT and mass x (1 +- ``jes_shift``), default 3 %
``jer_up, jer_down``   shape  every jet's pT and mass x (1 +- s g), g a standard normal per
                              jet (see below), s = ``jer_resolution`` x
                              sqrt((1 + ``jer_shift``)^2 - 1): the extra smearing that widens
                              a ``jer_resolution`` resolution by ``jer_shift``; ``jer_down``
                              mirrors ``jer_up`` around the nominal pT
``btag_sf_up/down``    weight the b-tag scale factor shifted by its uncertainty
``lepton_sf_up/down``  weight the lepton scale factor shifted by its uncertainty
====================== ====== ===============================================================

Shape variations re-run the whole selection and the features on the varied jets, and
propagate the change to the missing transverse momentum: ``MET⃗ → MET⃗ - Σ (c - 1) p⃗T(jet)``
over the jets with nominal pT above ``met_jet_pt_min`` (15 GeV), c the jet's factor. After
a resolution variation the jets are sorted by pT again.

The per-jet normal g is a function of ``(run, luminosityBlock, event, jet index, seed)``
(a SplitMix64 hash and a Box-Muller transform), so it does not depend on how the file is
cut into chunks and a rerun gives the same numbers.

Weight variations go through :class:`coffea.analysis_tools.Weights`:
``Weights.add("gen_weight", genWeight x sigma x L / Σ genWeight)``, then
``Weights.add("btag_sf", nominal, up, down)`` and ``Weights.add("lepton_sf", ...)`` — names
never end in Up/Down; the variation ``btag_sf_up`` is the modifier ``"btag_sfUp"``.

* ``btag_sf``: the product, over the selected b-tagged jets, of a flat scale factor per
  hadron flavour (:attr:`SystematicsConfig.btag_sf_b` for b, ``btag_sf_c`` for c,
  ``btag_sf_light`` otherwise), each ``(value, uncertainty)``; up and down shift every factor
  by its uncertainty together. These are placeholders of the right size, not a CMS
  calibration; replace them with a correctionlib evaluation for a real analysis.
* ``lepton_sf``: a flat factor for the event's lepton (``lepton_sf_muon``,
  ``lepton_sf_electron``), 1 without a lepton.

Collision data (no ``genWeight``) gets weight 1 and scale factors 1.

Examples
--------
>>> [v.name for v in resolve_variations(["jes_up", "btag_sf_down"])]
['nominal', 'jes_up', 'btag_sf_down']
>>> VARIATIONS["btag_sf_up"].modifier
'btag_sfUp'
>>> resolve_variations(["jes_sideways"])
Traceback (most recent call last):
...
analysis_lib.columnar.errors.UnknownVariationError: unknown variation 'jes_sideways'; known variations: nominal, jes_up, jes_down, jer_up, jer_down, btag_sf_up, btag_sf_down, lepton_sf_up, lepton_sf_down
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from coffea.analysis_tools import Weights

from .errors import UnknownVariationError
from .inputs import ChunkInputs
from .selection import Leptons


@dataclass(frozen=True)
class Variation:
    """One named variation.

    Parameters
    ----------
    name : str
        The snake_case name (``jes_up``).
    kind : {"nominal", "shape", "weight"}
        Whether it changes the jets (shape) or only the event weight.
    source : str or None
        The uncertainty (``jes``, ``jer``, ``btag_sf``, ``lepton_sf``).
    direction : {"up", "down"} or None
    """

    name: str
    kind: Literal["nominal", "shape", "weight"]
    source: str | None = None
    direction: Literal["up", "down"] | None = None

    @property
    def modifier(self) -> str | None:
        """The :meth:`Weights.weight` modifier of a weight variation (``btag_sfUp``)."""
        if self.kind != "weight":
            return None
        return f"{self.source}{'Up' if self.direction == 'up' else 'Down'}"


def _registry() -> dict[str, Variation]:
    out = {"nominal": Variation("nominal", "nominal")}
    for kind, sources in (("shape", ("jes", "jer")), ("weight", ("btag_sf", "lepton_sf"))):
        for source in sources:
            for direction in ("up", "down"):
                name = f"{source}_{direction}"
                out[name] = Variation(name, kind, source, direction)
    return out


#: Every variation the processor knows, by name, in canonical order.
VARIATIONS: dict[str, Variation] = _registry()
#: The weight names registered with :class:`~coffea.analysis_tools.Weights`.
WEIGHT_SOURCES: tuple[str, ...] = ("btag_sf", "lepton_sf")


def resolve_variations(names: Iterable[str] | None = None) -> tuple[Variation, ...]:
    """The variations for ``names`` (all when None), nominal always first, canonical order.

    Raises
    ------
    UnknownVariationError
        A name is not in :data:`VARIATIONS` (the message lists the known ones).
    """
    if names is None:
        return tuple(VARIATIONS.values())
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [n for n in names if n not in VARIATIONS]
    if unknown:
        raise UnknownVariationError(unknown, VARIATIONS)
    wanted = set(names) | {"nominal"}
    return tuple(v for v in VARIATIONS.values() if v.name in wanted)


@dataclass(frozen=True)
class SystematicsConfig:
    """Sizes of the variations (see the module documentation).

    Scale factors are ``(value, uncertainty)`` pairs.

    Examples
    --------
    >>> SystematicsConfig(jes_shift=0.05).jes_shift
    0.05
    """

    jes_shift: float = 0.03
    jer_resolution: float = 0.10
    jer_shift: float = 0.10
    met_jet_pt_min: float = 15.0
    seed: int = 20140602
    btag_sf_b: tuple[float, float] = (0.95, 0.03)
    btag_sf_c: tuple[float, float] = (0.95, 0.06)
    btag_sf_light: tuple[float, float] = (1.10, 0.10)
    lepton_sf_muon: tuple[float, float] = (0.98, 0.01)
    lepton_sf_electron: tuple[float, float] = (0.96, 0.02)

    @property
    def jer_extra_sigma(self) -> float:
        """Width of the extra relative smearing of ``jer_up``/``jer_down``."""
        return self.jer_resolution * float(np.sqrt((1 + self.jer_shift) ** 2 - 1))

    def to_dict(self) -> dict:
        """The settings as a plain dict (for metadata)."""
        return asdict(self)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def jet_normals(inputs: ChunkInputs, seed: int) -> np.ndarray:
    """A standard normal per jet, fixed by ``(run, lumi, event, jet index, seed)``.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis_lib.columnar.jagged import Jagged
    >>> from analysis_lib.columnar.inputs import ChunkInputs
    >>> jets = Jagged(np.array([0, 2, 3]), {})
    >>> one = np.ones(2, dtype=np.uint64)
    >>> chunk = ChunkInputs(one, one, np.array([7, 8], dtype=np.uint64), None, one, one,
    ...                     jets, jets, jets)
    >>> g = jet_normals(chunk, seed=1)
    >>> g.shape, bool(np.all(g == jet_normals(chunk, seed=1)))
    ((3,), True)
    """
    with np.errstate(over="ignore"):
        key = _splitmix64(inputs.event.astype(np.uint64) ^ np.uint64(seed))
        key = _splitmix64(key + inputs.luminosity_block.astype(np.uint64))
        key = _splitmix64(key + inputs.run.astype(np.uint64))
        jets = inputs.jets
        h = _splitmix64(key[jets.event_index] + jets.local_index.astype(np.uint64))
    u1 = ((h >> np.uint64(32)).astype(np.float64) + 0.5) / 2.0**32
    u2 = ((h & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) / 2.0**32
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def jet_factors(
    variation: Variation,
    config: SystematicsConfig,
    normals: np.ndarray | None = None,
) -> float | np.ndarray:
    """The multiplicative factor on every jet's pT and mass for ``variation``.

    A scalar for nominal and the energy scale, a per-jet array for the resolution
    (``normals`` from :func:`jet_normals`).

    Examples
    --------
    >>> jet_factors(VARIATIONS["jes_down"], SystematicsConfig())
    0.97
    """
    sign = 1.0 if variation.direction == "up" else -1.0
    if variation.source == "jes":
        return 1.0 + sign * config.jes_shift
    if variation.source == "jer":
        if normals is None:
            raise ValueError("the resolution variations need the per-jet normals")
        return np.maximum(1.0 + sign * config.jer_extra_sigma * normals, 0.0)
    return 1.0


def btag_sf_table(config: SystematicsConfig) -> np.ndarray:
    """The b-tag scale factors as a ``(3, 2)`` array: rows light, c, b; value, uncertainty."""
    return np.array([config.btag_sf_light, config.btag_sf_c, config.btag_sf_b], dtype=float)


def propagate_met(
    met_x: np.ndarray, met_y: np.ndarray, momentum_shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """MET components after the jets' momenta changed by ``momentum_shift`` (``(n, 2)``).

    The missing momentum balances the visible one, so it moves opposite to the jets.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = propagate_met(np.array([50.0]), np.array([0.0]), np.array([[10.0, 0.0]]))
    >>> float(x[0]), float(y[0])
    (40.0, 0.0)
    """
    return met_x - momentum_shift[:, 0], met_y - momentum_shift[:, 1]


def lepton_sf(leptons: Leptons, config: SystematicsConfig, shifts: bool = True) -> np.ndarray:
    """``(n, 3)`` lepton scale factor (nominal, up, down) of each event's lepton (1 if none).

    Without ``shifts`` only the nominal, ``(n, 1)``.
    """
    table = np.ones((14, 3))  # indexed by flavour: 0 (no lepton), 11, 13
    for flavour, (value, unc) in ((13, config.lepton_sf_muon), (11, config.lepton_sf_electron)):
        table[flavour] = (value, value + unc, value - unc)
    return table[leptons.flavour] if shifts else table[:, :1][leptons.flavour]


@dataclass(eq=False)
class WeightFactors:
    """The per-event weight factors of one (shape) variation, for all events of a chunk.

    Attributes
    ----------
    gen_weight : numpy.ndarray
        ``genWeight`` x the sample normalization (ones for collision data).
    btag_sf, lepton_sf : numpy.ndarray
        ``(n, 3)``: nominal, up, down.
    """

    gen_weight: np.ndarray
    btag_sf: np.ndarray
    lepton_sf: np.ndarray

    def total(self, variation: Variation | None = None) -> np.ndarray:
        """The event weight, nominal or for a weight variation (the product of factors).

        This is what ``Weights.weight(variation.modifier)`` of :func:`event_weights` gives;
        the cutflow uses it for all events of the chunk.
        """
        b, lep = self.btag_sf[:, 0], self.lepton_sf[:, 0]
        if variation is not None and variation.kind == "weight":
            column = 1 if variation.direction == "up" else 2
            if variation.source == "btag_sf":
                b = self.btag_sf[:, column]
            else:
                lep = self.lepton_sf[:, column]
        return self.gen_weight * b * lep


def weight_factors(
    inputs: ChunkInputs, btag_sf: np.ndarray, lepton_factors: np.ndarray, normalization: float
) -> WeightFactors:
    """The :class:`WeightFactors` of a variation.

    ``btag_sf`` is the variation's ``(n, 3)`` (or ``(n, 1)``) b-tag factor,
    ``lepton_factors`` from :func:`lepton_sf`.
    """
    if inputs.simulation:
        gen = inputs.gen_weight.astype(np.float64) * float(normalization)
    else:
        gen = np.ones(len(inputs))
        lepton_factors = np.ones((len(inputs), 3))
    return WeightFactors(gen, btag_sf, lepton_factors)


def event_weights(factors: WeightFactors, rows: np.ndarray | None = None) -> Weights:
    """coffea ``Weights`` of the events ``rows`` (all when None).

    Registers ``gen_weight`` (``genWeight`` x sigma x L / Σ genWeight, or x 1), then
    ``btag_sf`` and ``lepton_sf`` with their up and down shifts, so
    ``weights.weight("btag_sfUp")`` is the ``btag_sf_up`` variation's weight.

    Examples
    --------
    >>> import numpy as np
    >>> f = WeightFactors(np.array([2.0, 1.0]), np.array([[0.5, 1.0, 0.25]] * 2),
    ...                   np.array([[1.0, 1.5, 0.5]] * 2))
    >>> w = event_weights(f)
    >>> w.weight().tolist(), w.weight("btag_sfUp").tolist()
    ([1.0, 0.5], [2.0, 1.0])
    """
    sel = slice(None) if rows is None else rows
    gen = factors.gen_weight[sel]
    weights = Weights(len(gen))
    weights.add("gen_weight", gen)
    for name in WEIGHT_SOURCES:
        f = getattr(factors, name)[sel]
        weights.add(name, f[:, 0], f[:, 1].copy(), f[:, 2].copy())
    return weights
