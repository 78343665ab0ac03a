"""Evaluating classifiers for a search: ROC/AUC, AMS/AMS1, thresholds, pyhf significance, plots.

* :mod:`.roc` — :func:`roc_curve`, :func:`roc_auc`: weighted, negative weights kept (signed
  sums) by default, ``"clip"`` or ``"error"`` on request;
* :mod:`.ams` — :func:`ams` (HiggsML, ``b_reg = 10``), :func:`ams1` (absolute background
  uncertainty sigma_b, HiggsML), :func:`z_disc` (the same, Cowan 2012), :func:`asimov_z0`
  (arXiv:1007.1727);
* :mod:`.thresholds` — :func:`scan_thresholds`: the best cut on the score for any metric
  ``metric(s, b)``, and the whole curve;
* :mod:`.templates` — :class:`Template`, :func:`make_template`,
  :func:`template_from_variations`: score histograms per sample with the systematic
  variations named as in the columnar pipeline (``jes``, ``jer``, ``btag_sf``,
  ``lepton_sf``);
* :mod:`.pyhf_model` — :func:`build_workspace`: the pyhf workspace as plain data (signal
  ``normfactor`` μ; per variation ``normsys`` when it only changes the normalisation,
  ``histosys`` otherwise; optional MC-statistics ``staterror``);
* :mod:`.significance` — :func:`expected_discovery_significance` (Asimov
  :math:`\\sqrt{q_0}`), :func:`expected_mu_uncertainty` (sigma(mu) from the Hessian or the
  profile likelihood), :func:`expected_sensitivity` (both);
* :mod:`.plots` — :func:`plot_roc`, :func:`plot_score_distributions`,
  :func:`plot_template`, :func:`plot_significance_vs_threshold`,
  :func:`plot_auc_vs_parameter` (mplhep; each returns its matplotlib ``Axes``).

Bad input (NaN/inf scores, mismatched lengths, empty arrays, a single class, negative
yields, unknown variations, mismatched binnings) raises a ``ValueError`` that names the
offending value.

Examples
--------
From classifier scores to a cut, its AMS, and the binned pyhf significance with
systematics. A toy: 2000 signal events (weight 0.01 each: 20 expected) and 20000
background events (weight 0.05: 1000 expected) with Beta-distributed scores.

>>> import numpy as np
>>> from analysis_lib.evaluation import (ams, ams1, build_workspace, expected_sensitivity,
...                                      make_template, roc_auc, scan_thresholds)
>>> rng = np.random.default_rng(7)
>>> y = np.r_[np.ones(2000), np.zeros(20000)]
>>> scores = np.r_[rng.beta(5, 2, 2000), rng.beta(2, 5, 20000)]
>>> w = np.where(y == 1, 0.01, 0.05)
>>> round(roc_auc(y, scores, sample_weight=w), 3)
0.962

The cut that maximises the HiggsML AMS (``b_reg = 10``), and AMS1 with a 10 % background
uncertainty, keeping at least 5 expected background events above the cut:

>>> scan = scan_thresholds(y, scores, sample_weight=w)
>>> round(scan.best_threshold, 3), round(scan.best_value, 3)
(0.708, 2.413)
>>> s, b = scan.s[scan.best_index], scan.b[scan.best_index]  # weighted yields above the cut
>>> round(float(s), 2), round(float(b), 2), round(ams(s, b), 3), round(ams(s, b, b_reg=0), 3)
(11.35, 8.65, 2.413, 3.29)
>>> scan1 = scan_thresholds(y, scores, sample_weight=w, min_background=5.0,
...                         metric=lambda s, b: ams1(s, b, 0.1 * b))
>>> round(scan1.best_threshold, 3), round(scan1.best_value, 3)
(0.741, 3.422)

The whole score distribution in 5 bins, with a 5 % b-tag scale-factor uncertainty (a pure
normalisation: ``normsys``) and a ±3 % score shift standing in for the jet energy scale
(``histosys``) on the background, plus the MC statistical uncertainty:

>>> sig, bkg = y == 1, y == 0
>>> signal = make_template(scores[sig], w[sig], bins=5)
>>> background = make_template(
...     scores[bkg], w[bkg], bins=5,
...     weight_variations={"btag_sf": (1.05 * w[bkg], 0.95 * w[bkg])},
...     shape_variations={"jes": ((1.03 * scores[bkg], w[bkg]), (0.97 * scores[bkg], w[bkg]))})
>>> workspace = build_workspace(signal, background, staterror=True)
>>> [m["type"] for m in workspace["channels"][0]["samples"][1]["modifiers"]]
['normsys', 'histosys', 'staterror']
>>> result = expected_sensitivity(workspace)
>>> round(result.z0, 2), round(result.sigma_mu, 3)
(3.27, 0.407)

Without the systematics the same histograms give a larger significance and a smaller sigma(mu):

>>> plain = expected_sensitivity(build_workspace(signal, make_template(scores[bkg], w[bkg],
...                                                                    bins=5)))
>>> round(plain.z0, 2), round(plain.sigma_mu, 3)
(4.52, 0.36)
"""

from importlib import import_module
from typing import TYPE_CHECKING

# numpy-only modules, imported now (``ams`` must be the function, not its submodule)
from .ams import B_REG, ams, ams1, asimov_z0, z_disc
from .pyhf_model import POI, VARIATION_SOURCES, build_workspace, known_variation_sources
from .roc import RocCurve, roc_auc, roc_curve
from .templates import Template, histogram, make_template, template_from_variations
from .thresholds import ThresholdScan, scan_thresholds

# pyhf (significance) and matplotlib (plots) are imported on first use (PEP 562), so that
# roc/AMS/threshold work on a Dask worker does not pay for them.
_LAZY: dict[str, tuple[str, ...]] = {
    "plots": (
        "plot_auc_vs_parameter",
        "plot_roc",
        "plot_score_distributions",
        "plot_significance_vs_threshold",
        "plot_template",
    ),
    "significance": (
        "INTERPOLATION",
        "ExpectedSensitivity",
        "asimov_data",
        "expected_discovery_significance",
        "expected_mu_uncertainty",
        "expected_sensitivity",
        "make_model",
    ),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:
    from .plots import (
        plot_auc_vs_parameter,
        plot_roc,
        plot_score_distributions,
        plot_significance_vs_threshold,
        plot_template,
    )
    from .significance import (
        INTERPOLATION,
        ExpectedSensitivity,
        asimov_data,
        expected_discovery_significance,
        expected_mu_uncertainty,
        expected_sensitivity,
        make_model,
    )


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "B_REG",
    "INTERPOLATION",
    "POI",
    "VARIATION_SOURCES",
    "ExpectedSensitivity",
    "RocCurve",
    "Template",
    "ThresholdScan",
    "ams",
    "ams1",
    "asimov_data",
    "asimov_z0",
    "build_workspace",
    "expected_discovery_significance",
    "expected_mu_uncertainty",
    "expected_sensitivity",
    "histogram",
    "known_variation_sources",
    "make_model",
    "make_template",
    "plot_auc_vs_parameter",
    "plot_roc",
    "plot_score_distributions",
    "plot_significance_vs_threshold",
    "plot_template",
    "roc_auc",
    "roc_curve",
    "scan_thresholds",
    "template_from_variations",
    "z_disc",
]
