"""Every shape variation of a chunk in one pass: jet selection, MET, cuts and features.

A shape variation (``nominal``, ``jes_*``, ``jer_*``) changes the jets, so it re-runs the
jet selection, the MET, the event cuts and the features. :func:`run_variations` does all of
them for all variations in one compiled pass over the events
(:func:`~analysis_lib.columnar.kernels.variation_pass`): each event's jets are read once,
and the features of an event that passes are computed while its jets are still in the
cache. The definitions are those of :mod:`~analysis_lib.columnar.selection` (objects and
cuts) and :mod:`~analysis_lib.columnar.features` (the feature columns).

Examples
--------
>>> import numpy as np
>>> from analysis_lib.columnar.jagged import Jagged
>>> from analysis_lib.columnar.selection import Cuts, Leptons
>>> jets = Jagged(np.array([0, 4]), {
...     "pt": np.array([90.0, 60.0, 40.0, 30.5]), "eta": np.zeros(4), "phi": np.arange(4.0),
...     "mass": np.full(4, 5.0), "jetId": np.full(4, 6), "btag": np.array([0.9, 0, 0, 0])})
>>> leptons = Leptons(pt=np.array([50.0]), eta=np.array([1.0]), phi=np.array([0.5]),
...     mass=np.zeros(1), charge=np.array([-1], np.int8), flavour=np.array([13], np.int8),
...     n_tight=np.array([1], np.int32))
>>> met = (np.array([30.0]), np.array([40.0]), np.array([50.0]))
>>> # rows: events with at least 4 jets (bit 1); jes_down moves the 4th jet below 30 GeV
>>> nominal, down = run_variations(jets, leptons, met, factors=[1.0, 0.97],
...     nominal=[True, False], cuts=Cuts(), btag_wp=0.5, require=2)
>>> nominal.n_jets.tolist(), down.n_jets.tolist(), nominal.rows.tolist(), down.rows.tolist()
([4], [3], [0], [])
>>> float(nominal.columns["jet1_pt"][0]), nominal.columns["n_bjets"].tolist()
(90.0, [1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import kernels
from .features import MASS_COLUMNS, FeatureConfig
from .jagged import Jagged
from .selection import Cuts, Leptons


@dataclass(eq=False)
class VariationResult:
    """What one shape variation of a chunk gives.

    Attributes
    ----------
    n_jets, n_bjets : numpy.ndarray
        Per event, selected jets and selected b-tagged jets (0 for events whose jets were
        not looked at).
    btag_sf : numpy.ndarray
        ``(n, 3)`` b-tag scale-factor weight (nominal, up, down; ``(n, 1)``, only the
        nominal, without ``sf_shifts``): the product over the selected b-tagged jets.
    bits : numpy.ndarray
        The four cuts of :data:`~analysis_lib.columnar.selection.CUT_NAMES` as bits 0-3.
    depth : numpy.ndarray
        How many of the cuts, in order, each event passes (for the cutflow).
    rows : numpy.ndarray
        The events that pass the required cuts (ascending).
    columns : dict of str to numpy.ndarray
        Their feature columns (see :func:`feature_columns`).
    """

    n_jets: np.ndarray
    n_bjets: np.ndarray
    btag_sf: np.ndarray
    bits: np.ndarray
    depth: np.ndarray
    rows: np.ndarray
    columns: dict[str, np.ndarray]


def run_variations(
    jets: Jagged,
    leptons: Leptons,
    met: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    factors: Sequence[float | np.ndarray],
    nominal: Sequence[bool],
    cuts: Cuts,
    btag_wp: float,
    require: int,
    candidates: np.ndarray | None = None,
    features: FeatureConfig | None = None,
    btag_sf_table: np.ndarray | None = None,
    met_jet_pt_min: float = 15.0,
    sf_shifts: bool = True,
) -> list[VariationResult]:
    """Select, cut and build the features of several shape variations in one pass.

    Parameters
    ----------
    jets : Jagged
        The chunk's jets: ``pt, eta, phi, mass, jetId, btag`` and, for scale factors,
        ``hadronFlavour``.
    leptons : Leptons
        Each event's lepton (:func:`~analysis_lib.columnar.selection.select_leptons`).
    met : tuple of numpy.ndarray
        ``(met_x, met_y, met_pt)`` per event.
    factors : sequence
        Per variation, the factor on every jet's pT and mass: a scalar, or one per jet
        (:func:`~analysis_lib.columnar.systematics.jet_factors`).
    nominal : sequence of bool
        Per variation, whether it keeps the stored MET (the nominal); the others move the
        MET opposite to the change of the jets with nominal pT above ``met_jet_pt_min``.
    cuts : Cuts
    btag_wp : float
        b-tag working point.
    require : int
        The bits (of :data:`~analysis_lib.columnar.selection.CUT_NAMES`) an event needs to
        be a row of the tables.
    candidates : numpy.ndarray, optional
        Ascending indices of the events whose jets are looked at (default all). Only they
        can be rows; the others get 0 jets and a b-tag factor of 1.
    features : FeatureConfig, optional
    btag_sf_table : numpy.ndarray, optional
        ``(3, 2)`` b-tag scale factors (rows light, c, b; value and uncertainty); None
        gives ones (collision data).
    met_jet_pt_min : float
    sf_shifts : bool
        Also the up and down b-tag factors.
    """
    features = features or FeatureConfig()
    n = len(jets)
    if len(factors) != len(nominal):
        raise ValueError(f"{len(factors)} factors for {len(nominal)} nominal flags")
    scalar = np.ones(len(factors), dtype=np.float64)
    row = np.full(len(factors), -1, dtype=np.int64)
    per_jet_rows = []
    for v, factor in enumerate(factors):
        if np.ndim(factor) > 0:
            factor = np.asarray(factor, dtype=np.float64)
            if factor.shape != (jets.n_objects,):
                raise ValueError(
                    f"variation {v}: {factor.shape[0]} factors for {jets.n_objects} jets"
                )
            row[v] = len(per_jet_rows)
            per_jet_rows.append(factor)
        else:
            scalar[v] = float(factor)
    per_jet = (
        np.stack(per_jet_rows) if per_jet_rows else np.zeros((0, jets.n_objects), dtype=np.float64)
    )
    if candidates is None:
        candidates = np.arange(n, dtype=np.int64)
    candidates = np.asarray(candidates, dtype=np.int64)
    if btag_sf_table is None:
        btag_sf_table = np.array([[1.0, 0.0]] * 3)
    flavour = jets.fields.get("hadronFlavour")
    if flavour is None:
        flavour = np.zeros(jets.n_objects, dtype=np.int32)
    # the angles' functions once per object, in float32 (the precision of the stored
    # angles): far faster than scalar calls in the loop; float64 from there on
    phi = jets["phi"].astype(np.float32, copy=False)
    lep_phi = leptons.phi.astype(np.float32)
    met_x, met_y, met_pt = (np.asarray(a) for a in met)
    n_jets, n_bjets, sf, bits, depth, rows, n_rows, block, small, counts = kernels.variation_pass(
        jets.offsets,
        candidates,
        jets["pt"],
        jets["eta"],
        jets["phi"],
        jets["mass"],
        jets["jetId"],
        jets["btag"],
        flavour,
        np.cos(phi),
        np.sin(phi),
        kernels.sinh32(jets["eta"].astype(np.float32, copy=False)),
        leptons.pt,
        leptons.eta,
        leptons.phi,
        leptons.mass,
        np.cos(lep_phi),
        np.sin(lep_phi),
        kernels.sinh32(leptons.eta.astype(np.float32)),
        leptons.charge,
        leptons.flavour,
        leptons.n_tight,
        met_x,
        met_y,
        met_pt,
        scalar,
        row,
        per_jet,
        np.asarray(nominal, dtype=np.bool_),
        float(cuts.jet_eta_max),
        float(cuts.jet_lepton_dr_min) ** 2,
        float(btag_wp),
        float(met_jet_pt_min),
        float(cuts.jet_pt_min),
        int(cuts.n_jets_min),
        int(cuts.n_bjets_min),
        float(cuts.met_min),
        int(require),
        np.asarray(btag_sf_table, dtype=np.float64),
        3 if sf_shifts else 1,
        features.n_jets_max,
        features.n_jets,
        float(features.m_w),
        float(features.m_top),
    )
    cap = len(candidates)
    out = []
    for v in range(len(factors)):
        # one row of the buffers per column (contiguous: Arrow takes them without a copy)
        sl = slice(v * cap, v * cap + int(n_rows[v]))
        out.append(
            VariationResult(
                n_jets=n_jets[v],
                n_bjets=n_bjets[v],
                btag_sf=sf[v],
                bits=bits[v],
                depth=depth[v],
                rows=rows[v, : n_rows[v]],
                columns=feature_columns(block[:, sl], small[:, sl], counts[:, sl], features.n_jets),
            )
        )
    return out


def feature_columns(
    block: np.ndarray, small: np.ndarray, counts: np.ndarray, n_store: int
) -> dict[str, np.ndarray]:
    """Name the rows of the kernel's output buffers (one row per column).

    Returns ``lep_pt, lep_eta, lep_phi, lep_charge, lep_flavour, met_pt, met_phi, n_jets,
    n_bjets``, the jet columns of :func:`~analysis_lib.columnar.features.jet_columns` and
    :data:`~analysis_lib.columnar.features.MASS_COLUMNS`: float32 (counts int16, charge
    and flavour int8).
    """
    ev0 = 4 * n_store + len(MASS_COLUMNS)
    event = dict(zip(kernels.BLOCK_EVENT, block[ev0:], strict=True))
    out: dict[str, np.ndarray] = {
        "lep_pt": event["lep_pt"],
        "lep_eta": event["lep_eta"],
        "lep_phi": event["lep_phi"],
        "lep_charge": small[0],
        "lep_flavour": small[1],
        "met_pt": event["met_pt"],
        "met_phi": event["met_phi"],
        "n_jets": counts[0],
        "n_bjets": counts[1],
    }
    for i in range(n_store):
        for q, name in enumerate(("pt", "eta", "phi", "btag")):
            out[f"jet{i + 1}_{name}"] = block[4 * i + q]
    for q, name in enumerate(MASS_COLUMNS):
        out[name] = block[4 * n_store + q]
    return out
