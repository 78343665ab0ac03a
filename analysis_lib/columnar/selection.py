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

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
from coffea.analysis_tools import PackedSelection

from . import kernels
from .inputs import ChunkInputs

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

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            whole = f.type in (int, "int")
            ok = isinstance(value, numbers.Integral if whole else numbers.Real)
            if isinstance(value, bool) or not ok or not (math.isfinite(value) and value >= 0):
                kind = "a whole number" if whole else "a finite number"
                raise ValueError(f"Cuts {f.name} must be {kind} >= 0, got {value!r}")

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
    from ``selection`` unless given (as
    :func:`~analysis_lib.columnar.variation_pass.run_variations` gives it).
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
