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

from collections.abc import Mapping
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
    is 11 for an electron and 13 for a muon.
    """

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    charge: np.ndarray
    flavour: np.ndarray
    n_tight: np.ndarray


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` wrapped into [-π, π)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def select_leptons(inputs: ChunkInputs, cuts: Cuts) -> Leptons:
    """Find the tight muons and electrons and each event's leading one."""
    mu, el = inputs.muons, inputs.electrons
    mu_ok = (
        (mu["pt"] > cuts.lepton_pt_min)
        & (np.abs(mu["eta"]) < cuts.muon_eta_max)
        & mu["tightId"].astype(bool)
        & (mu["pfRelIso04_all"] < cuts.muon_iso_max)
    )
    el_ok = (
        (el["pt"] > cuts.lepton_pt_min)
        & (np.abs(el["eta"]) < cuts.electron_eta_max)
        & (el["cutBased"] >= cuts.electron_id_min)
        & (el["pfRelIso03_all"] < cuts.electron_iso_max)
    )
    first_mu, n_mu = kernels.first_selected(mu.offsets, mu_ok)
    first_el, n_el = kernels.first_selected(el.offsets, el_ok)
    # NanoAOD stores leptons sorted by pT, so each event's first tight one is its leading one.
    # Gather from the muons and electrons concatenated, with a NaN row for "no lepton".
    n_mu_all = mu.n_objects
    both = {
        f: np.concatenate([mu[f], el[f], [np.nan]]).astype(np.float64)
        for f in ("pt", "eta", "phi", "mass", "charge")
    }
    none = n_mu_all + el.n_objects
    mu_idx = np.where(first_mu >= 0, first_mu, none)
    el_idx = np.where(first_el >= 0, first_el + n_mu_all, none)
    mu_pt, el_pt = both["pt"][mu_idx], both["pt"][el_idx]
    use_mu = (first_mu >= 0) & ~(el_pt > mu_pt)
    use_el = (first_el >= 0) & ~use_mu
    index = np.where(use_mu, mu_idx, el_idx)
    return Leptons(
        pt=both["pt"][index],
        eta=both["eta"][index],
        phi=both["phi"][index],
        mass=both["mass"][index],
        charge=np.nan_to_num(both["charge"][index]).astype(np.int8),
        flavour=np.where(use_mu, 13, np.where(use_el, 11, 0)).astype(np.int8),
        n_tight=n_mu + n_el,
    )


def jet_base_mask(
    jets: Jagged, leptons: Leptons, cuts: Cuts, events: np.ndarray | None = None
) -> np.ndarray:
    """Flat mask of the jet requirements no jet variation changes (η, ID, ΔR to the lepton).

    Only the jets of ``events`` (indices; all when None) can pass.
    """
    if events is None:
        events = np.arange(len(jets))
    return kernels.jet_base_mask(
        jets.offsets,
        events,
        jets["eta"],
        jets["phi"],
        jets["jetId"],
        leptons.eta,
        leptons.phi,
        cuts.jet_eta_max,
        cuts.jet_lepton_dr_min**2,
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
        ``(n, 3)`` b-tag scale-factor weight (nominal, up, down): the product over the
        selected b-tagged jets (see :mod:`~analysis_lib.columnar.systematics`).
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
        :func:`jet_base_mask`.
    tagged : numpy.ndarray
        Flat mask: b-tag score above the working point.
    sorted_input : bool
        The jets are pT-ordered in every event (NanoAOD stores them so).
    px, py : numpy.ndarray
        Nominal jet momenta.
    momentum_sum : numpy.ndarray
        ``(n, 2)`` per event Σ (px, py) of the jets above the MET threshold.
    """

    events: np.ndarray
    base: np.ndarray
    tagged: np.ndarray
    sorted_input: bool
    px: np.ndarray
    py: np.ndarray
    momentum_sum: np.ndarray


def jet_context(
    jets: Jagged,
    leptons: Leptons,
    cuts: Cuts,
    *,
    btag_wp: float,
    cos_phi: np.ndarray,
    sin_phi: np.ndarray,
    met_jet_pt_min: float,
    events: np.ndarray | None = None,
) -> JetContext:
    """Compute the :class:`JetContext` of a chunk."""
    if events is None:
        events = np.arange(len(jets), dtype=np.int64)
    events = np.asarray(events, dtype=np.int64)
    px, py = jets["pt"] * cos_phi, jets["pt"] * sin_phi
    return JetContext(
        events=events,
        base=jet_base_mask(jets, leptons, cuts, events),
        tagged=jets["btag"] > btag_wp,
        sorted_input=bool(kernels.is_sorted_descending(jets.offsets, jets["pt"])),
        px=px,
        py=py,
        momentum_sum=kernels.momentum_sum(jets.offsets, events, jets["pt"], px, py, met_jet_pt_min),
    )


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
    per_jet = np.ndim(factor) > 0
    factor = np.atleast_1d(np.asarray(factor, dtype=np.float64))
    if btag_sf_table is None:
        btag_sf_table = np.array([[1.0, 0.0]] * 3)
    flavour = jets.fields.get("hadronFlavour")
    if flavour is None:
        flavour = np.zeros(jets.n_objects, dtype=np.int32)
    n_jets, n_bjets, index, sf, shift = kernels.vary_and_select(
        jets.offsets,
        context.events,
        jets["pt"],
        context.base,
        context.tagged,
        flavour,
        factor,
        per_jet,
        context.sorted_input,
        cuts.jet_pt_min,
        np.asarray(btag_sf_table, dtype=np.float64),
        k,
        context.px,
        context.py,
        met_jet_pt_min,
    )
    if not per_jet:
        shift = (factor[0] - 1.0) * context.momentum_sum
    return SelectedJets(n_jets, n_bjets, index, factor, per_jet, sf, shift)


def event_selection(
    *,
    n_tight_leptons: np.ndarray,
    n_jets: np.ndarray,
    n_bjets: np.ndarray,
    met_pt: np.ndarray,
    cuts: Cuts,
) -> PackedSelection:
    """The four event cuts (:data:`CUT_NAMES`) in a PackedSelection."""
    selection = PackedSelection()
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
    selection: PackedSelection, weights: Mapping[str, np.ndarray] | None = None
) -> dict[str, dict]:
    """The cumulative cutflow, once per weight: ``{name: {"labels", "events", "sumw"}}``.

    ``labels`` starts with ``"initial"``; ``events`` counts the events left after each cut
    of :data:`CUT_NAMES` in turn (``PackedSelection.all`` of the cuts so far); ``sumw`` sums
    each weight array over them. Without weights, one table ``"unweighted"`` whose ``sumw``
    equals ``events``.
    """
    # how many cuts in a row each event passes: the cuts are nested, so one histogram of
    # this depth gives every step of the cutflow
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
