r"""A simple parametrised detector response: particle-level events to NanoAOD-like objects.

Input is the particle-level event from :mod:`analysis_lib.datasets.pythia`. For each
event, it gives the visible final-state particles (no neutrinos) and the heavy-flavour
hadrons. The output is jets, muons, electrons and missing transverse momentum, with the
branch names of CMS NanoAOD. All parameters are fields of :class:`DetectorModel`. Its
defaults are CMS-like round numbers, not a fit to any detector. When a change alters the
output for a given seed, increase :data:`DETECTOR_VERSION`. The generator's cache key
includes it.

Acceptance
    A visible particle with :math:`|\eta| < \eta_\mathrm{calo}` (``calorimeter_eta_max`` = 5)
    enters jets, isolation and missing momentum. Particles further forward are lost, and so
    are neutrinos.

Leptons (``Muon_*``, ``Electron_*``)
    Candidates are final-state muons (electrons) with :math:`|\eta| <` ``muon_eta_max`` = 2.4
    (``electron_eta_max`` = 2.5). The isolation sum is
    :math:`I = \sum p_T` of the other visible particles with :math:`p_T >`
    ``isolation_particle_pt_min`` (0.5 GeV) inside :math:`\Delta R < R_\mathrm{iso}`,
    charged and neutral alike. :math:`R_\mathrm{iso}` is 0.4 for muons and 0.3 for
    electrons. A lepton with true :math:`p_T >` ``*_pt_min`` and
    :math:`I / p_T^\mathrm{true} <` ``jet_lepton_iso_max`` (0.2) counts as *isolated*. The
    jet clustering leaves isolated leptons out. A candidate is reconstructed with
    probability ``*_efficiency`` (μ 0.96, e 0.90). Its transverse momentum is smeared,
    :math:`p_T = p_T^\mathrm{true}(1 + \sigma z)` with :math:`z \sim N(0, 1)`:

    - muons: :math:`\sigma = c \oplus s\,p_T` (tracker; ``muon_resolution_constant`` = 0.01,
      ``muon_resolution_slope`` = 1e-4 / GeV);
    - electrons: :math:`\sigma = S/\sqrt{E} \oplus N/E \oplus C` (ECAL; S = 0.05
      :math:`\sqrt{\mathrm{GeV}}`, N = 0.25 GeV, C = 0.007).

    Here :math:`\oplus` is the sum in quadrature. η and φ keep their true values. A lepton
    is kept if its smeared :math:`p_T >` ``*_pt_min`` (5 GeV for both). Each lepton gets:

    - ``charge``, from the PDG id;
    - ``pfRelIso04_all`` (μ) or ``pfRelIso03_all`` (e), equal to :math:`I / p_T`;
    - ``Muon_tightId``, true with probability ``muon_tight_id_efficiency`` (0.97);
    - ``Electron_cutBased``, 4 (tight) with probability ``electron_tight_id_efficiency``
      (0.80) and 2 (loose) otherwise.

    The ID draws do not depend on the kinematics. Select prompt leptons with the isolation
    variable.

Jets (``Jet_*``)
    Anti-kt with R = ``jet_radius`` (0.4, FastJet) clusters the accepted visible particles,
    minus the isolated leptons. Jets with true :math:`p_T >` ``jet_cluster_pt_min``
    (10 GeV) are kept. The energy resolution is

    .. math:: \frac{\sigma_E}{E} = \frac{S}{\sqrt{E}} \oplus \frac{N}{E} \oplus C,

    with S = ``jet_resolution_stochastic`` = 0.8 :math:`\sqrt{\mathrm{GeV}}`,
    N = ``jet_resolution_noise`` = 3 GeV and C = ``jet_resolution_constant`` = 0.04, where
    E is the true jet energy. That is about 18 % at 30 GeV, 9 % at 100 GeV and 5 % at 1 TeV
    (η = 0). The whole four-vector is scaled by
    :math:`\max(0, \mathrm{JES}\,(1 + \sigma z))`, with JES = ``jet_energy_scale`` = 1, so
    η and φ are unchanged. Jets with smeared :math:`p_T >` ``jet_pt_min`` (20 GeV) and
    :math:`|\eta| <` ``jet_eta_max`` (4.7) are written, sorted by :math:`p_T`. Each jet
    gets:

    - ``jetId`` = 6 (passes tight and tight-lepton-veto) with probability
      ``jet_id_efficiency`` (0.99), 0 otherwise;
    - ``hadronFlavour``, from ghost association. Every b and c hadron of the event
      (non-final ones included) is added to the clustering with its momentum scaled by
      1e-18. The flavour is 5 if a b hadron ends up in the jet, else 4 for a c hadron, else
      0.

b tagging (``Jet_btagDeepFlavB``)
    For a jet of flavour f inside the tracker (:math:`|\eta| <` ``tracker_eta_max`` = 2.5),
    the discriminant is drawn from a distribution on [0, 1]. Its survival function
    :math:`P(d > x)` is piecewise linear through the points
    :math:`(0, 1), (w_L, \varepsilon_L^f), (w_M, \varepsilon_M^f), (w_T, \varepsilon_T^f),
    (1, 0)`. The working points are the DeepJet ones,
    :math:`w = (0.0490, 0.2770, 0.7264)`. The efficiencies at these points are therefore
    exact:

    ============ ======= ======== =======
    flavour      loose   medium   tight
    ============ ======= ======== =======
    b (5)        0.93    0.75     0.57
    c (4)        0.45    0.12     0.025
    light (0)    0.10    0.01     0.001
    ============ ======= ======== =======

    Jets outside the tracker draw from the light-flavour distribution, whatever their
    flavour.

Missing transverse momentum (``MET_pt``, ``MET_phi``)
    MET is the negative vector sum of the smeared visible objects plus a resolution term:

    .. math::
        \vec p_T^\mathrm{miss} = -\Big(\sum_\mathrm{jets} \vec p_T^\mathrm{smeared}
        + \sum_{\ell\ \mathrm{isolated}} \vec p_T^{\,\ell} + \vec U + \vec\delta\Big).

    - The jet sum runs over all clustered jets (true :math:`p_T > 10` GeV), before the
      20 GeV cut.
    - Reconstructed isolated leptons enter with their smeared momentum. Isolated
      electrons that are not reconstructed enter at true momentum (calorimeter deposit).
      Isolated muons that are not reconstructed are lost.
    - :math:`\vec U` is the vector sum of the accepted visible particles outside jets and
      isolated leptons (unclustered energy).
    - Each component of :math:`\vec\delta` is drawn from
      :math:`N(0, \sigma_U^2)`, where
      :math:`\sigma_U = a \oplus b\sqrt{\sum_\mathrm{unclustered} p_T}` with
      a = ``met_resolution_noise`` = 5 GeV and b = ``met_resolution_stochastic`` = 0.5
      :math:`\sqrt{\mathrm{GeV}}`.

    The event also gets ``GenMET_pt`` and ``GenMET_phi``, from the true sum of neutrinos.

Randomness
    The only source of randomness is the :class:`numpy.random.Generator` passed to
    :func:`simulate`. Draws happen in a fixed order, so the output depends only on the
    input events and the generator's state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

__all__ = ["DETECTOR_VERSION", "DetectorModel", "draw_btag", "simulate"]

#: Version of the response model. Increase it when a change alters the output for a given
#: seed. The generator's cache key includes it.
DETECTOR_VERSION = "1"

MUON_MASS = 0.1056583755
ELECTRON_MASS = 0.00051099895
GHOST_SCALE = 1e-18


@dataclass(frozen=True)
class DetectorModel:
    """All parameters of the detector response (see the module docstring for the formulas).

    Energies and momenta in GeV. ``btag_wp`` is (loose, medium, tight). Each
    ``btag_eff_*`` gives the efficiency at those three working points for b, c and light
    jets.

    Examples
    --------
    >>> model = DetectorModel()
    >>> model.btag_eff_b[1], model.btag_wp[1]
    (0.75, 0.277)
    >>> DetectorModel(jet_energy_scale=1.02).jet_energy_scale
    1.02
    >>> round(model.jet_resolution(100.0), 3)
    0.094
    """

    calorimeter_eta_max: float = 5.0
    tracker_eta_max: float = 2.5
    isolation_particle_pt_min: float = 0.5
    jet_lepton_iso_max: float = 0.2

    jet_radius: float = 0.4
    jet_cluster_pt_min: float = 10.0
    jet_pt_min: float = 20.0
    jet_eta_max: float = 4.7
    jet_energy_scale: float = 1.0
    jet_resolution_stochastic: float = 0.8
    jet_resolution_noise: float = 3.0
    jet_resolution_constant: float = 0.04
    jet_id_efficiency: float = 0.99

    btag_wp: tuple[float, float, float] = (0.0490, 0.2770, 0.7264)
    btag_eff_b: tuple[float, float, float] = (0.93, 0.75, 0.57)
    btag_eff_c: tuple[float, float, float] = (0.45, 0.12, 0.025)
    btag_eff_light: tuple[float, float, float] = (0.10, 0.01, 0.001)

    muon_pt_min: float = 5.0
    muon_eta_max: float = 2.4
    muon_efficiency: float = 0.96
    muon_tight_id_efficiency: float = 0.97
    muon_resolution_constant: float = 0.01
    muon_resolution_slope: float = 1e-4
    muon_iso_radius: float = 0.4

    electron_pt_min: float = 5.0
    electron_eta_max: float = 2.5
    electron_efficiency: float = 0.90
    electron_tight_id_efficiency: float = 0.80
    electron_resolution_stochastic: float = 0.05
    electron_resolution_noise: float = 0.25
    electron_resolution_constant: float = 0.007
    electron_iso_radius: float = 0.3

    met_resolution_noise: float = 5.0
    met_resolution_stochastic: float = 0.5

    def __post_init__(self) -> None:
        wp = self.btag_wp
        if not 0.0 < wp[0] < wp[1] < wp[2] < 1.0:
            raise ValueError(f"btag_wp must be increasing inside (0, 1), got {wp!r}")
        for name in ("btag_eff_b", "btag_eff_c", "btag_eff_light"):
            eff = getattr(self, name)
            if len(eff) != 3 or not 1.0 >= eff[0] >= eff[1] >= eff[2] >= 0.0:
                raise ValueError(f"{name} must be three decreasing values in [0, 1], got {eff!r}")
        for field in dataclasses.fields(self):
            name = field.name
            if name.endswith("_efficiency") and not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-friendly dictionary (tuples become lists).

        Examples
        --------
        >>> DetectorModel().as_dict()["jet_pt_min"]
        20.0
        """
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def jet_resolution(self, energy: Any) -> Any:
        r"""Relative jet energy resolution :math:`\sigma_E/E` at true energy ``energy`` (GeV).

        A float for a number, an array for an array.

        Examples
        --------
        >>> round(DetectorModel().jet_resolution(1000.0), 3)
        0.047
        """
        e = np.maximum(np.asarray(energy, dtype=np.float64), 1e-3)
        sigma = np.sqrt(
            self.jet_resolution_stochastic**2 / e
            + (self.jet_resolution_noise / e) ** 2
            + self.jet_resolution_constant**2
        )
        return float(sigma) if sigma.ndim == 0 else sigma


def draw_btag(
    flavour: np.ndarray,
    abs_eta: np.ndarray,
    model: DetectorModel,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw ``Jet_btagDeepFlavB`` for jets of the given hadron flavour and ``|eta|``.

    The discriminant's survival function is piecewise linear through the working points
    (see the module docstring), so the tag rate at each working point is exactly the
    model's efficiency for that flavour. Jets outside the tracker use the light-flavour
    distribution.

    Parameters
    ----------
    flavour
        Hadron flavour per jet (5, 4 or 0).
    abs_eta
        ``|eta|`` per jet.
    model
        The detector model (working points and efficiencies).
    rng
        Source of randomness (one uniform number per jet).

    Returns
    -------
    numpy.ndarray
        float32 discriminants in [0, 1].

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> d = draw_btag(np.full(100_000, 5), np.zeros(100_000), DetectorModel(), rng)
    >>> round(float(np.mean(d > 0.2770)), 2)
    0.75
    """
    flavour = np.asarray(flavour)
    abs_eta = np.asarray(abs_eta)
    u = rng.random(flavour.shape[0])
    out = np.empty(flavour.shape[0], dtype=np.float64)
    in_tracker = abs_eta < model.tracker_eta_max
    x = np.array([1.0, *model.btag_wp[::-1], 0.0])  # decreasing score ...
    for code, eff in ((5, model.btag_eff_b), (4, model.btag_eff_c), (0, model.btag_eff_light)):
        if code == 0:
            sel = ~(in_tracker & ((flavour == 5) | (flavour == 4)))
        else:
            sel = in_tracker & (flavour == code)
        survival = np.array([0.0, *eff[::-1], 1.0])  # ... against increasing P(d > x)
        out[sel] = np.interp(u[sel], survival, x)
    return out.astype(np.float32)


def _pt_eta_phi(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transverse momentum, pseudorapidity and azimuth of flat momentum arrays."""
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), np.sign(pz) * 1e9))
    return pt, eta, np.arctan2(py, px)


def _delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Azimuthal difference folded into [-pi, pi)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def _isolation_sums(
    lep_event: np.ndarray,
    lep_eta: np.ndarray,
    lep_phi: np.ndarray,
    lep_radius: np.ndarray,
    lep_index: np.ndarray,
    counts: np.ndarray,
    offsets: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    pt: np.ndarray,
    particle_pt_min: float,
) -> np.ndarray:
    """Scalar pT sum of the other particles (pT above threshold) around each lepton."""
    n_pairs = counts[lep_event]
    pair_lep = np.repeat(np.arange(lep_event.size), n_pairs)
    starts = np.repeat(offsets[lep_event], n_pairs)
    within = np.arange(pair_lep.size) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    pair_part = starts + within
    deta = eta[pair_part] - lep_eta[pair_lep]
    dphi = _delta_phi(phi[pair_part], lep_phi[pair_lep])
    near = (
        (deta**2 + dphi**2 < lep_radius[pair_lep] ** 2)
        & (pt[pair_part] > particle_pt_min)
        & (pair_part != lep_index[pair_lep])
    )
    return np.bincount(pair_lep[near], weights=pt[pair_part][near], minlength=lep_event.size)


def simulate(
    particles: ak.Array,
    hadrons: ak.Array,
    *,
    rng: np.random.Generator,
    model: DetectorModel | None = None,
) -> dict[str, Any]:
    """Apply the detector response to particle-level events.

    Parameters
    ----------
    particles
        Per event, the visible final-state particles: records with ``px, py, pz, E``
        (GeV) and ``pid`` (PDG id). Neutrinos must already be removed.
    hadrons
        Per event, the b and c hadrons used as ghosts: records with ``px, py, pz, E`` and
        ``flavour`` (5 or 4).
    rng
        The only source of randomness.
    model
        Detector parameters (default :class:`DetectorModel()`).

    Returns
    -------
    dict
        ``"Jet"``, ``"Muon"``, ``"Electron"``: jagged awkward records with the NanoAOD
        fields. ``"MET_pt"``, ``"MET_phi"``: float32 numpy arrays. All fields are
        float32 except ``hadronFlavour``, ``jetId``, ``charge`` and ``cutBased`` (int32)
        and ``tightId`` (bool).

    Examples
    --------
    Two back-to-back 50 GeV photons, one with a b hadron, next to a 30 GeV muon:

    >>> p = ak.Array([[
    ...     {"px": 50.0, "py": 0.0, "pz": 0.0, "E": 50.0, "pid": 22},
    ...     {"px": -50.0, "py": 0.0, "pz": 0.0, "E": 50.0, "pid": 22},
    ...     {"px": 0.0, "py": 30.0, "pz": 0.0, "E": 30.0, "pid": 13},
    ... ]])
    >>> h = ak.Array([[{"px": 10.0, "py": 0.0, "pz": 0.0, "E": 11.0, "flavour": 5}]])
    >>> out = simulate(p, h, rng=np.random.default_rng(3))
    >>> ak.to_list(out["Jet"].hadronFlavour), ak.num(out["Muon"]).tolist()
    ([[5, 0]], [1])
    >>> out["Muon"].pfRelIso04_all.tolist()
    [[0.0]]
    """
    m = DetectorModel() if model is None else model
    n_events = len(particles)
    counts = np.asarray(ak.num(particles), dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    event_of = np.repeat(np.arange(n_events), counts)
    px = np.asarray(ak.flatten(particles.px), dtype=np.float64)
    py = np.asarray(ak.flatten(particles.py), dtype=np.float64)
    pz = np.asarray(ak.flatten(particles.pz), dtype=np.float64)
    energy = np.asarray(ak.flatten(particles.E), dtype=np.float64)
    pid = np.asarray(ak.flatten(particles.pid), dtype=np.int64)
    pt, eta, phi = _pt_eta_phi(px, py, pz)
    accepted = np.abs(eta) < m.calorimeter_eta_max

    # --- lepton candidates and isolation --------------------------------------------
    abs_pid = np.abs(pid)
    is_mu = (abs_pid == 13) & (np.abs(eta) < m.muon_eta_max)
    is_el = (abs_pid == 11) & (np.abs(eta) < m.electron_eta_max)
    pt_floor = np.where(is_mu, m.muon_pt_min, m.electron_pt_min)
    cand = np.flatnonzero((is_mu | is_el) & (pt > 0.5 * pt_floor))
    c_mu = is_mu[cand]
    c_event = event_of[cand]
    c_radius = np.where(c_mu, m.muon_iso_radius, m.electron_iso_radius)
    iso_sum = _isolation_sums(
        c_event,
        eta[cand],
        phi[cand],
        c_radius,
        cand,
        counts,
        offsets,
        np.where(accepted, eta, 1e9),
        phi,
        pt,
        m.isolation_particle_pt_min,
    )
    c_pt_true = pt[cand]
    c_isolated = (c_pt_true > pt_floor[cand]) & (iso_sum < m.jet_lepton_iso_max * c_pt_true)

    # reconstruction: efficiency, smearing, ID (fixed draw order)
    c_eff = np.where(c_mu, m.muon_efficiency, m.electron_efficiency)
    found = rng.random(cand.size) < c_eff
    c_e_true = energy[cand]
    sigma_mu = np.hypot(m.muon_resolution_constant, m.muon_resolution_slope * c_pt_true)
    e_safe = np.maximum(c_e_true, 1e-3)
    sigma_el = np.sqrt(
        m.electron_resolution_stochastic**2 / e_safe
        + (m.electron_resolution_noise / e_safe) ** 2
        + m.electron_resolution_constant**2
    )
    scale = np.maximum(
        0.0, 1.0 + np.where(c_mu, sigma_mu, sigma_el) * rng.standard_normal(cand.size)
    )
    c_pt = c_pt_true * scale
    tight = rng.random(cand.size) < np.where(
        c_mu, m.muon_tight_id_efficiency, m.electron_tight_id_efficiency
    )
    reco = found & (c_pt > pt_floor[cand])

    # --- jets: cluster accepted visible particles minus isolated leptons, plus ghosts -
    removed = np.zeros(px.size, dtype=bool)
    removed[cand[c_isolated]] = True
    inputs_mask = accepted & ~removed
    jet_in = ak.unflatten(
        ak.zip({k: v[inputs_mask] for k, v in (("px", px), ("py", py), ("pz", pz), ("E", energy))}),
        np.bincount(event_of[inputs_mask], minlength=n_events),
    )
    h_counts = np.asarray(ak.num(hadrons), dtype=np.int64)
    ghosts = ak.unflatten(
        ak.zip(
            {
                k: np.asarray(ak.flatten(hadrons[k]), dtype=np.float64) * GHOST_SCALE
                for k in ("px", "py", "pz", "E")
            }
        ),
        h_counts,
    )
    all_in = ak.concatenate([jet_in, ghosts], axis=1)
    codes = np.asarray(
        ak.flatten(
            ak.concatenate(
                [
                    ak.zeros_like(jet_in.px, dtype=np.int32),
                    ak.values_astype(hadrons.flavour, np.int32),
                ],
                axis=1,
            )
        )
    )
    in_counts = np.asarray(ak.num(all_in), dtype=np.int64)
    in_offsets = np.cumsum(in_counts) - in_counts
    jets_px, jets_py, jets_pz, jets_e, jet_event, flavour, clustered = _cluster(
        all_in, in_counts, in_offsets, codes, m
    )
    # unclustered: accepted input particles in no jet (each event's particles come first)
    n_inputs = np.bincount(event_of[inputs_mask], minlength=n_events)
    uncl = ~clustered[_particle_slots(in_counts, in_offsets, n_inputs)]
    ev_in = event_of[inputs_mask][uncl]
    u_px = np.bincount(ev_in, weights=px[inputs_mask][uncl], minlength=n_events)
    u_py = np.bincount(ev_in, weights=py[inputs_mask][uncl], minlength=n_events)
    u_sum = np.bincount(ev_in, weights=pt[inputs_mask][uncl], minlength=n_events)

    # jet response (fixed draw order: energy smearing, jet ID, b tag)
    j_pt, j_eta, j_phi = _pt_eta_phi(jets_px, jets_py, jets_pz)
    j_mass = np.sqrt(np.maximum(jets_e**2 - jets_px**2 - jets_py**2 - jets_pz**2, 0.0))
    j_scale = np.maximum(
        0.0, m.jet_energy_scale * (1.0 + m.jet_resolution(jets_e) * rng.standard_normal(j_pt.size))
    )
    j_id = np.where(rng.random(j_pt.size) < m.jet_id_efficiency, 6, 0).astype(np.int32)
    j_btag = draw_btag(flavour, np.abs(j_eta), m, rng)
    j_pt_s = j_pt * j_scale

    # MET: resolution term drawn last
    lep_px = c_pt * np.cos(phi[cand])
    lep_py = c_pt * np.sin(phi[cand])
    lost_el = c_isolated & ~reco & ~c_mu
    met_lep = c_isolated & reco
    vis_px = (
        np.bincount(jet_event, weights=jets_px * j_scale, minlength=n_events)
        + np.bincount(c_event[met_lep], weights=lep_px[met_lep], minlength=n_events)
        + np.bincount(c_event[lost_el], weights=px[cand][lost_el], minlength=n_events)
        + u_px
    )
    vis_py = (
        np.bincount(jet_event, weights=jets_py * j_scale, minlength=n_events)
        + np.bincount(c_event[met_lep], weights=lep_py[met_lep], minlength=n_events)
        + np.bincount(c_event[lost_el], weights=py[cand][lost_el], minlength=n_events)
        + u_py
    )
    sigma_u = np.hypot(m.met_resolution_noise, m.met_resolution_stochastic * np.sqrt(u_sum))
    delta = rng.standard_normal((2, n_events)) * sigma_u
    met_px = -(vis_px + delta[0])
    met_py = -(vis_py + delta[1])

    # --- assemble NanoAOD-like collections, sorted by pT --------------------------------
    keep = (j_pt_s > m.jet_pt_min) & (np.abs(j_eta) < m.jet_eta_max)
    jet = _collection(
        jet_event[keep],
        j_pt_s[keep],
        n_events,
        pt=j_pt_s[keep],
        eta=j_eta[keep],
        phi=j_phi[keep],
        mass=j_mass[keep] * j_scale[keep],
        btagDeepFlavB=j_btag[keep],
        hadronFlavour=flavour[keep].astype(np.int32),
        jetId=j_id[keep],
    )
    charge = np.where(pid[cand] > 0, -1, 1).astype(np.int32)
    iso = iso_sum / np.where(c_pt > 0, c_pt, 1.0)
    mu = reco & c_mu
    muon = _collection(
        c_event[mu],
        c_pt[mu],
        n_events,
        pt=c_pt[mu],
        eta=eta[cand][mu],
        phi=phi[cand][mu],
        mass=np.full(int(mu.sum()), MUON_MASS),
        charge=charge[mu],
        tightId=tight[mu],
        pfRelIso04_all=iso[mu],
    )
    el = reco & ~c_mu
    electron = _collection(
        c_event[el],
        c_pt[el],
        n_events,
        pt=c_pt[el],
        eta=eta[cand][el],
        phi=phi[cand][el],
        mass=np.full(int(el.sum()), ELECTRON_MASS),
        charge=charge[el],
        cutBased=np.where(tight[el], 4, 2).astype(np.int32),
        pfRelIso03_all=iso[el],
    )
    return {
        "Jet": jet,
        "Muon": muon,
        "Electron": electron,
        "MET_pt": np.hypot(met_px, met_py).astype(np.float32),
        "MET_phi": np.arctan2(met_py, met_px).astype(np.float32),
    }


def _particle_slots(
    in_counts: np.ndarray, in_offsets: np.ndarray, n_particles: np.ndarray
) -> np.ndarray:
    """True for the flat clustering-input slots that hold particles (each event's first ones)."""
    local = np.arange(int(in_counts.sum())) - np.repeat(in_offsets, in_counts)
    return local < np.repeat(n_particles, in_counts)


def _cluster(
    all_in: ak.Array,
    in_counts: np.ndarray,
    in_offsets: np.ndarray,
    codes: np.ndarray,
    model: DetectorModel,
) -> tuple[np.ndarray, ...]:
    """Anti-kt jets above ``jet_cluster_pt_min``: flat momenta, event, flavour, clustered mask."""
    import fastjet

    _quiet_fastjet()
    n_events = in_counts.size
    clustered = np.zeros(codes.size, dtype=bool)
    if codes.size == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty, np.zeros(0, np.int64), np.zeros(0, np.int32), clustered
    sequence = fastjet.ClusterSequence(
        all_in, fastjet.JetDefinition(fastjet.antikt_algorithm, model.jet_radius)
    )
    jets = sequence.inclusive_jets(model.jet_cluster_pt_min)
    index = sequence.constituent_index(model.jet_cluster_pt_min)
    n_jets = np.asarray(ak.num(jets), dtype=np.int64)
    n_const = np.asarray(ak.flatten(ak.num(index, axis=2)), dtype=np.int64)
    jet_event = np.repeat(np.arange(n_events), n_jets)
    const_global = np.asarray(ak.flatten(index, axis=None), dtype=np.int64) + np.repeat(
        in_offsets[jet_event], n_const
    )
    const_jet = np.repeat(np.arange(jet_event.size), n_const)
    flavour = np.zeros(jet_event.size, dtype=np.int32)
    np.maximum.at(flavour, const_jet, codes[const_global])
    clustered[const_global] = True
    flat = {k: np.asarray(ak.flatten(jets[k]), dtype=np.float64) for k in ("px", "py", "pz", "E")}
    return flat["px"], flat["py"], flat["pz"], flat["E"], jet_event, flavour, clustered


_FASTJET_QUIET = False


def _quiet_fastjet() -> None:
    """Switch off FastJet's banner (printed once per process on the first clustering)."""
    global _FASTJET_QUIET
    if not _FASTJET_QUIET:
        try:
            from fastjet import _swig

            _swig.ClusterSequence.set_fastjet_banner_stream(None)
        except (ImportError, AttributeError, TypeError):  # pragma: no cover - other builds
            pass
        _FASTJET_QUIET = True


def _collection(
    event: np.ndarray, sort_key: np.ndarray, n_events: int, **fields: np.ndarray
) -> ak.Array:
    """A jagged record array from flat per-object fields, sorted by descending ``sort_key``."""
    order = np.lexsort((-sort_key, event))
    counts = np.bincount(event, minlength=n_events)
    columns = {}
    for name, values in fields.items():
        values = np.asarray(values)[order]
        if values.dtype == np.float64:
            values = values.astype(np.float32)
        columns[name] = values
    return ak.unflatten(ak.zip(columns), counts)
