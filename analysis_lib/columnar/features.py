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
float64 and stored as float32. The
columns are computed by :func:`~analysis_lib.columnar.variation_pass.run_variations`, in
the same pass over the events as the selection.

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

import numbers
from dataclasses import asdict, dataclass

from . import kernels

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
        for name in ("n_jets", "n_jets_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        if self.n_jets_max < 4:
            raise ValueError(
                f"n_jets_max (the jets the masses use) must be at least 4, got {self.n_jets_max}"
            )
        if not 1 <= self.n_jets <= self.n_jets_max:
            raise ValueError(
                f"n_jets (the leading jets stored as columns) must be between 1 and "
                f"n_jets_max={self.n_jets_max} (the jets the event's features look at), "
                f"got {self.n_jets}"
            )

    def to_dict(self) -> dict:
        """The settings as a plain dict (for metadata)."""
        return asdict(self)
