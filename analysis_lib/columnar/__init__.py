"""Columnar analysis with coffea: selections, features, systematic variations, inference.

NanoAOD files in, one feature table (parquet) per sample and systematic variation out:

* :class:`SemileptonicProcessor` — a coffea processor that selects semileptonic tt̄-like
  events (``PackedSelection``, cutflow), builds the features of Baldi et al. (lepton, MET,
  four leading jets, m_jj, m_jjj, m_lv, m_jlv, m_bb, m_wbb, m_wwbb), re-runs them for the
  shape variations (``jes_*``, ``jer_*``), weights them through coffea ``Weights``
  (``btag_sf_*``, ``lepton_sf_*``) and, given a model, scores every variation in the same pass;
* :func:`run_columnar` — runs it on a Dask cluster (a local one by default), coffea's
  futures or iterative executor, with progress, checkpoints to resume, bad-file handling,
  and atomic parquet output; ``python -m analysis_lib.columnar --help`` is the same from
  the command line;
* :class:`FeatureScorer` — applies an XGBoost or Keras model to feature columns (coffea
  ``ml_tools`` interface).

Modules: :mod:`.inputs` (branches), :mod:`.selection`, :mod:`.features`,
:mod:`.systematics`, :mod:`.inference`, :mod:`.processor`, :mod:`.runner`, :mod:`.output`,
:mod:`.checkpoint`, :mod:`.samples`, :mod:`.chunking` (chunks cut where the baskets
are), :mod:`.kernels` (numba loops), :mod:`.direct` (chunks read straight from the tree),
:mod:`.errors`, :mod:`.zlib_decoder` (libdeflate for ZLIB baskets).

Examples
--------
>>> from analysis_lib.columnar import SemileptonicProcessor, VARIATIONS
>>> list(VARIATIONS)[:3]
['nominal', 'jes_up', 'jes_down']
>>> result = run_columnar(["ttbar.root"], SemileptonicProcessor(),
...                       output="features/")  # doctest: +SKIP
>>> result.to_pandas("ttbar", "jes_up")  # doctest: +SKIP
"""

from .checkpoint import AtomicCheckpointer
from .errors import (
    BadInputError,
    ColumnarError,
    MissingBranchError,
    ModelFileError,
    UnknownVariationError,
)
from .features import MASS_COLUMNS, FeatureConfig, default_features, jet_columns
from .inference import FeatureScorer
from .inputs import BTAG_WORKING_POINTS, DEFAULT_BTAG_BRANCH, required_branches
from .output import read_table
from .processor import DEFAULT_LUMI_PB, EventsSchema, SemileptonicProcessor
from .runner import ColumnarResult, make_executor, run_columnar
from .samples import prepare_fileset
from .selection import CUT_NAMES, Cuts
from .systematics import VARIATIONS, SystematicsConfig, Variation, resolve_variations

__all__ = [
    "BTAG_WORKING_POINTS",
    "CUT_NAMES",
    "DEFAULT_BTAG_BRANCH",
    "DEFAULT_LUMI_PB",
    "MASS_COLUMNS",
    "VARIATIONS",
    "AtomicCheckpointer",
    "BadInputError",
    "ColumnarError",
    "ColumnarResult",
    "Cuts",
    "EventsSchema",
    "FeatureConfig",
    "FeatureScorer",
    "MissingBranchError",
    "ModelFileError",
    "SemileptonicProcessor",
    "SystematicsConfig",
    "UnknownVariationError",
    "Variation",
    "default_features",
    "jet_columns",
    "make_executor",
    "prepare_fileset",
    "read_table",
    "required_branches",
    "resolve_variations",
    "run_columnar",
]
