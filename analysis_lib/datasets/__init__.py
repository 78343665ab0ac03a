"""Event generators and the sample registry.

- :mod:`~analysis_lib.datasets.registry` -- samples addressed by name (``ttbar_semilep``,
  ``zprime_m1000``, ...), generated on demand with Pythia 8 into NanoAOD-like ROOT files
  and cached by configuration;
- :mod:`~analysis_lib.datasets.pythia` and :mod:`~analysis_lib.datasets.detector` -- the
  generator and its documented parametrised detector response;
- :mod:`~analysis_lib.datasets.toys` -- the papers' toy benchmarks as numpy arrays
  (parameterised 1D toy, pivot toy, INFERNO 3D mixture);
- :mod:`~analysis_lib.datasets.cms` -- real CMS NanoAOD files for compatibility checks.

Examples
--------
>>> from analysis_lib.datasets import list_samples
>>> "zprime_m1000" in list_samples()
True
"""

from analysis_lib.datasets.detector import DetectorModel
from analysis_lib.datasets.registry import (
    SAMPLES,
    UnknownSampleError,
    generate,
    list_samples,
    load_metadata,
    luminosity_weight,
    sample_info,
    sample_path,
)
from analysis_lib.datasets.toys import (
    InfernoParams,
    PnnToyParams,
    make_inferno_toy,
    make_pivot_toy,
    make_pnn_toy,
)

__all__ = [
    "SAMPLES",
    "DetectorModel",
    "InfernoParams",
    "PnnToyParams",
    "UnknownSampleError",
    "generate",
    "list_samples",
    "load_metadata",
    "luminosity_weight",
    "make_inferno_toy",
    "make_pivot_toy",
    "make_pnn_toy",
    "sample_info",
    "sample_path",
]
