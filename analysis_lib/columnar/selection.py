"""Object and event selection of semileptonic tt̄-like events, with coffea's PackedSelection.

Objects (thresholds in :class:`Cuts`):

* **tight muon**: ``pt > lepton_pt_min``, ``|eta| < muon_eta_max``, ``tightId``,
  ``pfRelIso04_all < muon_iso_max``;
* **tight electron**: ``pt > lepton_pt_min``, ``|eta| < electron_eta_max``,
  ``cutBased >= electron_id_min`` (4 = tight), ``pfRelIso03_all < electron_iso_max``;
* **the lepton** of an event is its leading tight muon or electron (highest pT);
* **jet**: ``pt > jet_pt_min`` (after the jet variation), ``|eta| < jet_eta_max``, the tight
  jet-ID bit set (``jetId & 2``), and ``ΔR(jet, lepton) > jet_lepton_dr_min``;
* **b jet**: a jet whose b-tag score exceeds the working point.

Event selection, in cutflow order (:data:`CUT_NAMES`):

``one_lepton``
    exactly one tight lepton;
``jets``
    at least ``n_jets_min`` jets;
``btag``
    at least ``n_bjets_min`` b jets;
``met``
    ``MET_pt > met_min`` (after propagating the jet variation).

Examples
--------
>>> import numpy as np
>>> sel = event_selection(
...     n_tight_leptons=np.array([1, 1, 2]), n_jets=np.array([4, 3, 5]),
...     n_bjets=np.array([1, 1, 2]), met_pt=np.array([50.0, 60, 70]), cuts=Cuts())
>>> sel.all(*CUT_NAMES).tolist()
[True, False, False]
>>> cutflow_tables(sel)["unweighted"]["events"]
[3, 2, 1, 1, 1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from coffea.analysis_tools import PackedSelection

from . import kernels
from .inputs import ChunkInputs
from .jagged import Jagged

#: The event selection's cuts, in cutflow order.
CUT_NAMES: tuple[str, ...] = ("one_lepton", "jets", "btag", "met")


@dataclass(frozen=True)
class Cuts:
    """Thresholds of the object and event selection (GeV for momenta).

    Examples
    --------
    >>> Cuts(jet_pt_min=25.0).n_jets_min
    4
    """

    lepton_pt_min: float = 30.0
    muon_eta_max: float = 2.4
    muon_iso_max: float = 0.15
    electron_eta_max: float = 2.5
    electron_id_min: int = 4
    electron_iso_max: float = 0.15
    jet_pt_min: float = 30.0
    jet_eta_max: float = 2.4
    jet_lepton_dr_min: float = 0.4
    n_jets_min: int = 4
    n_bjets_min: int = 1
    met_min: float = 20.0

    def to_dict(self) -> dict:
        """The thresholds as a plain dict (for metadata)."""
        return asdict(self)


@dataclass(eq=False)
class Leptons:
    """Per event: the lepton (leading tight muon or electron) and the tight-lepton count.

    Kinematics are NaN and ``flavour`` is 0 in events without a tight lepton; ``flavour``
    is 11 for an electron and 13 for a muon. ``p4`` is ``(n, 4)`` px, py, pz, E (NaN
    without a lepton), for the features (:meth:`with_p4`).
    """

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    charge: np.ndarray
    flavour: np.ndarray
    n_tight: np.ndarray
    p4: np.ndarray | None = None

    def with_p4(self, events: np.ndarray | None = None) -> Leptons:
        """Fill :attr:`p4` for ``events`` (indices; all when None) and return self.

        The angles' cosine, sine and sinh are evaluated in float32 (the precision the
        angles are stored with; numpy vectorizes it, float64 costs ~30 times more).
        """
        self.p4 = lepton_p4(self.pt, self.eta, self.phi, self.mass, events)
        return self


def lepton_p4(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    mass: np.ndarray,
    events: np.ndarray | None = None,
) -> np.ndarray:
    """``(n, 4)`` px, py, pz, E (float64) of the events ``events`` (all when None); NaN elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> lepton_p4(np.array([10.0]), np.array([0.0]), np.array([0.0]), np.array([0.0])).tolist()
    [[10.0, 0.0, 0.0, 10.0]]
    """
    out = np.full((len(pt), 4), np.nan)
    sel = slice(None) if events is None else np.asarray(events, dtype=np.int64)
    p = np.asarray(pt, dtype=np.float64)[sel]
    phi32 = np.asarray(phi)[sel].astype(np.float32)
    x = p * np.cos(phi32)
    y = p * np.sin(phi32)
    z = p * np.sinh(np.asarray(eta)[sel].astype(np.float32))
    m = np.asarray(mass, dtype=np.float64)[sel]
    out[sel, 0] = x
    out[sel, 1] = y
    out[sel, 2] = z
    out[sel, 3] = np.sqrt(x * x + y * y + z * z + m * m)
    return out


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` wrapped into [-π, π)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def select_leptons(inputs: ChunkInputs, cuts: Cuts) -> Leptons:
    """Find the tight muons and electrons and each event's leading one (one compiled pass).

    NanoAOD stores leptons sorted by pT, so each event's first tight muon (electron) is its
    leading one; of the two, the electron is taken when its pT is higher.
    """
    mu, el = inputs.muons, inputs.electrons
    kin, charge, flavour, n_tight = kernels.leading_leptons(
        mu.offsets,
        mu["pt"],
        mu["eta"],
        mu["phi"],
        mu["mass"],
        mu["charge"],
        mu["tightId"],
        mu["pfRelIso04_all"],
        el.offsets,
        el["pt"],
        el["eta"],
        el["phi"],
        el["mass"],
        el["charge"],
        el["cutBased"],
        el["pfRelIso03_all"],
        cuts.lepton_pt_min,
        cuts.muon_eta_max,
        cuts.muon_iso_max,
        cuts.electron_eta_max,
        cuts.electron_id_min,
        cuts.electron_iso_max,
    )
    return Leptons(
        pt=kin[:, 0],
        eta=kin[:, 1],
        phi=kin[:, 2],
        mass=kin[:, 3],
        charge=charge,
        flavour=flavour,
        n_tight=n_tight,
    )


@dataclass(eq=False)
class SelectedJets:
    """The selected jets of one variation, from one pass over the chunk's jets.

    Attributes
    ----------
    n_jets, n_bjets : numpy.ndarray
        Per event, selected jets and selected b-tagged jets.
    index : numpy.ndarray
        ``(n, k)`` flat indices (into the chunk's jets) of the ``k`` leading selected jets
        by varied pT, -1 where there are fewer.
    factor : numpy.ndarray
        The variation's factor on pT and mass (one value, or one per jet).
    per_jet : bool
        Whether ``factor`` has one value per jet.
    btag_sf : numpy.ndarray
        ``(n, 3)`` b-tag scale-factor weight (nominal, up, down; only nominal, ``(n, 1)``,
        when the shifts were not asked for): the product over the selected b-tagged jets
        (see :mod:`~analysis_lib.columnar.systematics`).
    momentum_shift : numpy.ndarray
        ``(n, 2)`` change Σ (factor - 1) (px, py) of the jets' momenta, for the MET.
    """

    n_jets: np.ndarray
    n_bjets: np.ndarray
    index: np.ndarray
    factor: np.ndarray
    per_jet: bool
    btag_sf: np.ndarray
    momentum_shift: np.ndarray


@dataclass(eq=False)
class JetContext:
    """What every variation of a chunk shares: computed once, before the variations.

    Attributes
    ----------
    events : numpy.ndarray
        Indices of the events whose jets are looked at (all, or those with one tight
        lepton when that cut is required: the others cannot enter the tables or pass
        the cumulative cutflow's later cuts).
    base : numpy.ndarray
        Flat mask of the jet requirements no variation changes (η, ID, ΔR to the lepton).
    tagged : numpy.ndarray
        Flat mask: b-tag score above the working point.
    sorted_input : bool
        The jets are pT-ordered in every event looked at (NanoAOD stores them so).
    px, py : numpy.ndarray
        Nominal jet momenta (empty when not asked for).
    momentum_sum : numpy.ndarray
        ``(n, 2)`` per event Σ (px, py) of the jets above the MET threshold.
    directions : dict of str to numpy.ndarray
        The jets' ``cos_phi, sin_phi, sinh_eta`` (for the features).

    Jets of events not in ``events`` are not looked at (False, 0).
    """

    events: np.ndarray
    base: np.ndarray
    tagged: np.ndarray
    sorted_input: bool
    px: np.ndarray
    py: np.ndarray
    momentum_sum: np.ndarray
    directions: dict[str, np.ndarray]


def jet_context(
    jets: Jagged,
    leptons: Leptons,
    cuts: Cuts,
    *,
    btag_wp: float,
    met_jet_pt_min: float,
    events: np.ndarray | None = None,
    momenta: bool = True,
) -> JetContext:
    """Compute the :class:`JetContext` of a chunk in one pass over the jets of ``events``.

    ``momenta=False`` leaves ``px, py`` empty (only variations with a factor per jet, the
    resolution ones, need them).
    """
    if events is None:
        events = np.arange(len(jets), dtype=np.int64)
    events = np.asarray(events, dtype=np.int64)
    # vectorized float32 (the precision of the stored angles): far faster than scalar calls
    phi = jets["phi"].astype(np.float32, copy=False)
    eta = jets["eta"].astype(np.float32, copy=False)
    cos_phi, sin_phi, sinh_eta = np.cos(phi), np.sin(phi), np.sinh(eta)
    base, tagged, px, py, momentum, sorted_input = kernels.jet_inputs(
        jets.offsets,
        events,
        jets["pt"],
        jets["eta"],
        jets["phi"],
        jets["jetId"],
        jets["btag"],
        cos_phi,
        sin_phi,
        leptons.eta,
        leptons.phi,
        cuts.jet_eta_max,
        cuts.jet_lepton_dr_min**2,
        btag_wp,
        met_jet_pt_min,
        momenta,
    )
    return JetContext(
        events=events,
        base=base,
        tagged=tagged,
        sorted_input=bool(sorted_input),
        px=px,
        py=py,
        momentum_sum=momentum,
        directions={"cos_phi": cos_phi, "sin_phi": sin_phi, "sinh_eta": sinh_eta},
    )


def select_jets_all(
    jets: Jagged,
    context: JetContext,
    *,
    factors: Sequence[float | np.ndarray],
    cuts: Cuts,
    k: int,
    btag_sf_table: np.ndarray | None = None,
    met_jet_pt_min: float = 15.0,
    sf_shifts: bool = True,
) -> list[SelectedJets]:
    """Select the jets of several variations in one pass (see :func:`select_jets`).

    ``factors`` holds one factor per variation: a scalar, or an array with one per jet.
    Without ``sf_shifts`` the b-tag scale factor is only the nominal one (``btag_sf`` is
    ``(n, 1)``: enough when no weight variation is asked for).
    """
    scalar = np.ones(len(factors), dtype=np.float64)
    row = np.full(len(factors), -1, dtype=np.int64)
    per_jet_rows = []
    for v, factor in enumerate(factors):
        if np.ndim(factor) > 0:
            row[v] = len(per_jet_rows)
            per_jet_rows.append(np.asarray(factor, dtype=np.float64))
        else:
            scalar[v] = float(factor)
    per_jet = (
        np.stack(per_jet_rows) if per_jet_rows else np.zeros((0, jets.n_objects), dtype=np.float64)
    )
    if btag_sf_table is None:
        btag_sf_table = np.array([[1.0, 0.0]] * 3)
    flavour = jets.fields.get("hadronFlavour")
    if flavour is None:
        flavour = np.zeros(jets.n_objects, dtype=np.int32)
    n_jets, n_bjets, index, sf, shift = kernels.vary_and_select_all(
        jets.offsets,
        context.events,
        jets["pt"],
        context.base,
        context.tagged,
        flavour,
        scalar,
        row,
        per_jet,
        context.sorted_input,
        cuts.jet_pt_min,
        np.asarray(btag_sf_table, dtype=np.float64),
        k,
        context.px,
        context.py,
        met_jet_pt_min,
        3 if sf_shifts else 1,
    )
    out = []
    for v in range(len(factors)):
        is_per_jet = bool(row[v] >= 0)
        if is_per_jet:
            factor, moved = per_jet[row[v]], shift[row[v]]
        elif scalar[v] == 1.0:
            factor, moved = scalar[v : v + 1], np.zeros_like(context.momentum_sum)
        else:
            factor, moved = scalar[v : v + 1], (scalar[v] - 1.0) * context.momentum_sum
        out.append(SelectedJets(n_jets[v], n_bjets[v], index[v], factor, is_per_jet, sf[v], moved))
    return out


def select_jets(
    jets: Jagged,
    context: JetContext,
    *,
    factor: float | np.ndarray,
    cuts: Cuts,
    k: int,
    btag_sf_table: np.ndarray | None = None,
    met_jet_pt_min: float = 15.0,
) -> SelectedJets:
    """Select the jets of one variation: ``context.base`` and ``pt x factor > jet_pt_min``.

    Parameters
    ----------
    jets : Jagged
        The chunk's jets (``pt``, ``btag`` and, for scale factors, ``hadronFlavour``).
    context : JetContext
        What the variations share.
    factor : float or numpy.ndarray
        The variation's factor on every jet's pT and mass (a scalar or one per jet).
    cuts : Cuts
    k : int
        How many leading jets to index.
    btag_sf_table : numpy.ndarray, optional
        ``(3, 2)`` b-tag scale factors (rows light, c, b; value and uncertainty); None gives
        ones (collision data).
    met_jet_pt_min : float
        Jets below this nominal pT do not shift the MET.
    """
    (selected,) = select_jets_all(
        jets,
        context,
        factors=[factor],
        cuts=cuts,
        k=k,
        btag_sf_table=btag_sf_table,
        met_jet_pt_min=met_jet_pt_min,
    )
    return selected


class EventSelection(PackedSelection):
    """coffea's :class:`~coffea.analysis_tools.PackedSelection`, filled faster from numpy.

    ``add_multiple`` of flat numpy boolean arrays into an empty selection packs the bits
    with one shift-or per cut (coffea's masked ``bitwise_or`` costs about ten times more on
    a 100 000-event chunk); anything else goes to coffea. Reading (``all``, ``any``,
    ``require``, ``cutflow``) is coffea's.

    Examples
    --------
    >>> import numpy as np
    >>> sel = EventSelection()
    >>> sel.add_multiple({"a": np.array([True, False, True]), "b": np.array([True, True, False])})
    >>> sel.all("a", "b").tolist(), sel.names
    ([True, False, False], ['a', 'b'])
    """

    def add_multiple(self, selections, fill_value=False):
        """Add several boolean arrays at once (see ``PackedSelection.add``)."""
        arrays = list(selections.values())
        fast = (
            getattr(self, "_data", 0) is None
            and getattr(self, "_names", None) == []
            and 0 < len(arrays) <= self.maxitems
            and all(
                isinstance(a, np.ndarray)
                and not isinstance(a, np.ma.MaskedArray)
                and a.dtype == np.bool_
                and a.ndim == 1
                and a.shape == arrays[0].shape
                for a in arrays
            )
        )
        if not fast:
            return super().add_multiple(selections, fill_value)
        dtype = self._dtype
        data = np.zeros(len(arrays[0]), dtype=dtype)
        for i, a in enumerate(arrays):
            data |= a.astype(dtype) << dtype.type(i)
        self._data = data
        self._names = list(selections)
        return None

    @classmethod
    def from_bits(cls, names: Sequence[str], bits: np.ndarray) -> EventSelection:
        """A selection whose cut ``names[i]`` is bit ``i`` of ``bits`` (already packed).

        Examples
        --------
        >>> import numpy as np
        >>> EventSelection.from_bits(["a", "b"], np.array([3, 1, 0])).all("a", "b").tolist()
        [True, False, False]
        """
        bits = np.asarray(bits)
        selection = cls()
        if getattr(selection, "_data", 0) is None and getattr(selection, "_names", None) == []:
            selection._data = bits.astype(selection._dtype, copy=False)
            selection._names = list(names)
        else:  # another coffea: add the cuts one by one
            selection.add_multiple({n: (bits >> i) & 1 == 1 for i, n in enumerate(names)})
        return selection


def event_selection(
    *,
    n_tight_leptons: np.ndarray,
    n_jets: np.ndarray,
    n_bjets: np.ndarray,
    met_pt: np.ndarray,
    cuts: Cuts,
) -> PackedSelection:
    """The four event cuts (:data:`CUT_NAMES`) in a PackedSelection (:class:`EventSelection`)."""
    selection = EventSelection()
    selection.add_multiple(
        {
            "one_lepton": np.asarray(n_tight_leptons == 1),
            "jets": np.asarray(n_jets >= cuts.n_jets_min),
            "btag": np.asarray(n_bjets >= cuts.n_bjets_min),
            "met": np.asarray(met_pt > cuts.met_min),
        }
    )
    return selection


def cutflow_tables(
    selection: PackedSelection,
    weights: Mapping[str, np.ndarray] | None = None,
    depth: np.ndarray | None = None,
) -> dict[str, dict]:
    """The cumulative cutflow, once per weight: ``{name: {"labels", "events", "sumw"}}``.

    ``labels`` starts with ``"initial"``; ``events`` counts the events left after each cut
    of :data:`CUT_NAMES` in turn (``PackedSelection.all`` of the cuts so far); ``sumw`` sums
    each weight array over them. Without weights, one table ``"unweighted"`` whose ``sumw``
    equals ``events``. ``depth``, how many cuts in a row each event passes, is computed
    from ``selection`` unless given (:func:`~analysis_lib.columnar.kernels.event_cuts`).
    """
    # how many cuts in a row each event passes: the cuts are nested, so one histogram of
    # this depth gives every step of the cutflow
    if depth is None:
        depth = np.zeros(len(selection.all(CUT_NAMES[0])), dtype=np.int64)
        for i in range(len(CUT_NAMES)):
            depth += selection.all(*CUT_NAMES[: i + 1])
    steps = len(CUT_NAMES) + 1

    def cumulative(counts: np.ndarray) -> list[float]:
        return np.cumsum(counts[::-1])[::-1].tolist()

    events = [int(x) for x in cumulative(np.bincount(depth, minlength=steps))]
    labels = ["initial", *CUT_NAMES]
    if not weights:
        return {
            "unweighted": {"labels": labels, "events": events, "sumw": list(map(float, events))}
        }
    return {
        name: {
            "labels": labels,
            "events": events,
            "sumw": cumulative(np.bincount(depth, weights=w, minlength=steps)),
        }
        for name, w in weights.items()
    }
