"""Per-event features: lepton, MET, leading jets and the high-level masses of Baldi et al.

The low-level features follow the HIGGS benchmark of P. Baldi, P. Sadowski, D. Whiteson,
"Searching for exotic particles in high-energy physics with deep learning", Nature Commun.
5 (2014) 4308: the lepton's pT, η, φ; the missing transverse momentum and its φ; the pT,
η, φ and b-tag score of the four leading jets. Its high-level features are invariant masses
of a tt̄ → b l nu bqq̄' (or W W b b̄) hypothesis; the paper names them but does not spell out
the assignment of jets, so here is the one this module uses. Only the ``n_jets_max``
leading selected jets (default 6) take part; "mass" is ``√max(E² - p⃗², 0)``.

1. **Neutrino.** p⃗T(nu) is the missing transverse momentum; p_z(nu) solves
   m(l nu) = m_W (80.4 GeV) with a massless lepton and neutrino. Of two real solutions the
   one with the smaller |p_z| is taken; when there is none, the real part of the complex
   pair. ``m_lv`` is then the mass of lepton + neutrino, which is m_W when a real solution
   exists and larger otherwise — the peak and tail of the paper's m_lv.
2. **b-jet candidates** b₁, b₂: the two jets with the highest b-tag scores (whether or not
   they pass the working point).
3. **Hadronic W**: among the other jets, the pair whose mass is closest to m_W;
   ``m_jj`` is its mass.
4. **Which b goes where**: of the two assignments (b₁ leptonic and b₂ hadronic, or the
   reverse) the one with the smaller (m(b l nu) - m_t)² + (m(jjb) - m_t)², m_t = 172.5 GeV
   (a term that cannot be computed, e.g. without a lepton, counts 0).
   ``m_jlv`` = m(b_lep l nu), ``m_jjj`` = m(jj b_had).
5. ``m_bb`` = m(b₁ b₂), ``m_wbb`` = m(jj b₁ b₂), ``m_wwbb`` = m(jj l nu b₁ b₂).

Anything that cannot be built (no lepton, too few jets) is NaN. Kinematics are computed in
float64 and stored as float32.

Examples
--------
>>> from analysis_lib.columnar.kernels import neutrino_pz
>>> import math
>>> pz = neutrino_pz(40.0, 0.0, 10.0, 0.0, 30.0, M_W)  # lepton along x, MET along y
>>> e_l, e_nu = math.hypot(40.0, 10.0), math.hypot(30.0, pz)
>>> round(math.sqrt((e_l + e_nu) ** 2 - 40.0**2 - 30.0**2 - (10.0 + pz) ** 2), 3)
80.4
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import kernels
from .jagged import Jagged
from .selection import Leptons, SelectedJets, lepton_p4

M_W = 80.4
M_TOP = 172.5

#: The seven high-level masses of the paper, in its order (the kernel's rows of them).
MASS_COLUMNS: tuple[str, ...] = kernels.BLOCK_MASSES


def jet_columns(n_jets: int = 4) -> list[str]:
    """The per-jet columns ``jet1_pt, jet1_eta, jet1_phi, jet1_btag, jet2_pt, ...``.

    Examples
    --------
    >>> jet_columns(1)
    ['jet1_pt', 'jet1_eta', 'jet1_phi', 'jet1_btag']
    """
    return [f"jet{i}_{q}" for i in range(1, n_jets + 1) for q in ("pt", "eta", "phi", "btag")]


def default_features(n_jets: int = 4) -> list[str]:
    """Baldi et al.'s 21 low-level and 7 high-level inputs, as column names.

    Examples
    --------
    >>> len(default_features())
    28
    """
    return [
        "lep_pt",
        "lep_eta",
        "lep_phi",
        "met_pt",
        "met_phi",
        *jet_columns(n_jets),
        *MASS_COLUMNS,
    ]


@dataclass(frozen=True)
class FeatureConfig:
    """How many jets to store and to use, and the masses of the hypothesis (GeV).

    Examples
    --------
    >>> FeatureConfig().n_jets_max
    6
    """

    n_jets: int = 4
    n_jets_max: int = 6
    m_w: float = M_W
    m_top: float = M_TOP

    def __post_init__(self) -> None:
        if self.n_jets_max < 4 or self.n_jets < 1:
            raise ValueError("n_jets_max must be at least 4 and n_jets at least 1")

    def to_dict(self) -> dict:
        """The settings as a plain dict (for metadata)."""
        return asdict(self)


def jet_directions(jets: Jagged) -> dict[str, np.ndarray]:
    """``cos_phi, sin_phi, sinh_eta`` of every jet, once per chunk for all variations.

    The processor gets them from :func:`~analysis_lib.columnar.selection.jet_context`
    (computed in the same pass as the jet masks); this is the stand-alone version.

    Examples
    --------
    >>> import numpy as np
    >>> d = jet_directions(Jagged(np.array([0, 1]), {"phi": np.zeros(1), "eta": np.zeros(1)}))
    >>> d["cos_phi"].tolist(), d["sinh_eta"].tolist()
    ([1.0], [0.0])
    """
    phi = jets["phi"].astype(np.float32, copy=False)
    eta = jets["eta"].astype(np.float32, copy=False)
    return {"cos_phi": np.cos(phi), "sin_phi": np.sin(phi), "sinh_eta": np.sinh(eta)}


def build_features(
    *,
    leptons: Leptons,
    jets: Jagged,
    directions: dict[str, np.ndarray],
    selected: SelectedJets,
    met_x: np.ndarray,
    met_y: np.ndarray,
    rows: np.ndarray,
    config: FeatureConfig | None = None,
    buffers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    offset: int = 0,
) -> dict[str, np.ndarray]:
    """The feature columns of the events ``rows``.

    Parameters
    ----------
    leptons : Leptons
        Per-event lepton (all events of the chunk).
    jets : Jagged
        The chunk's jets (``pt, eta, phi, mass, btag``).
    directions : dict
        :func:`jet_directions` of ``jets``.
    selected : SelectedJets
        The variation's selected jets (leading indices, counts and pT factor).
    met_x, met_y : numpy.ndarray
        The variation's missing transverse momentum (all events).
    rows : numpy.ndarray
        Indices of the events to compute.
    config : FeatureConfig, optional
    buffers : tuple of numpy.ndarray, optional
        Output buffers from :func:`~analysis_lib.columnar.kernels.feature_buffers` shared
        by several calls (the variations of a chunk); the columns are written from
        ``offset`` on. Default: new buffers for ``rows``.
    offset : int
        First column of ``buffers`` to write.

    Returns
    -------
    dict of str to numpy.ndarray
        ``lep_pt, lep_eta, lep_phi, lep_charge, lep_flavour, met_pt, met_phi, n_jets,
        n_bjets``, the jet columns of :func:`jet_columns` and :data:`MASS_COLUMNS`, float32
        (counts int16, charge and flavour int8).
    """
    config = config or FeatureConfig()
    rows = np.asarray(rows, dtype=np.int64)
    p4 = leptons.p4
    if p4 is None:
        p4 = lepton_p4(leptons.pt, leptons.eta, leptons.phi, leptons.mass, rows)
    n = len(rows)
    if buffers is None:
        buffers, offset = kernels.feature_buffers(n, config.n_jets), 0
    block, small, counts = buffers
    if offset < 0 or offset + n > block.shape[1]:
        raise ValueError(f"offset {offset} + {n} rows do not fit buffers of {block.shape[1]}")
    kernels.event_features(
        rows,
        selected.index,
        jets["pt"],
        jets["eta"],
        jets["phi"],
        jets["mass"],
        jets["btag"],
        directions["cos_phi"],
        directions["sin_phi"],
        directions["sinh_eta"],
        selected.factor,
        selected.per_jet,
        p4,
        leptons.pt,
        leptons.eta,
        leptons.phi,
        leptons.charge,
        leptons.flavour,
        met_x,
        met_y,
        selected.n_jets,
        selected.n_bjets,
        config.n_jets,
        config.m_w,
        config.m_top,
        block,
        small,
        counts,
        offset,
    )
    # one row of the buffers per column (contiguous: Arrow takes them without a copy)
    block, small, counts = (b[:, offset : offset + n] for b in buffers)
    ev0 = 4 * config.n_jets + len(MASS_COLUMNS)
    event = dict(zip(kernels.BLOCK_EVENT, block[ev0:], strict=True))
    out: dict[str, np.ndarray] = {
        "lep_pt": event["lep_pt"],
        "lep_eta": event["lep_eta"],
        "lep_phi": event["lep_phi"],
        "lep_charge": small[0],
        "lep_flavour": small[1],
        "met_pt": event["met_pt"],
        "met_phi": np.arctan2(event["met_y"], event["met_x"]),
        "n_jets": counts[0],
        "n_bjets": counts[1],
    }
    for i in range(config.n_jets):
        for q, name in enumerate(("pt", "eta", "phi", "btag")):
            out[f"jet{i + 1}_{name}"] = block[4 * i + q]
    for q, name in enumerate(MASS_COLUMNS):
        out[name] = block[4 * config.n_jets + q]
    return out
