r"""Expected discovery significance and expected sigma(mu) of a pyhf workspace, from Asimov data.

Both use the Asimov data set at ``mu = 1`` with the nuisance parameters at their nominal
values (Cowan, Cranmer, Gross, Vitells, arXiv:1007.1727, section 5), so their maximum
likelihood estimate is that point by construction:

* :func:`expected_discovery_significance` — :math:`Z_0 = \sqrt{q_{0,A}}`, the discovery
  test statistic (``pyhf.infer.test_statistics.q0``, Eq. 12 of arXiv:1007.1727) of the
  Asimov data, i.e. the median expected significance. Without nuisance parameters and with
  independent bins it equals :math:`\sqrt{\sum_i Z_{0,i}^2}` of the per-bin Asimov formula;
* :func:`expected_mu_uncertainty` — sigma(mu) from the inverse of the Hessian of
  :math:`-\ln L` at that point (``method="hessian"``, central finite differences of
  pyhf's ``logpdf``: nuisance parameters are profiled through the full covariance), or the
  half-width of the profile-likelihood interval where :math:`-2\Delta\ln L = 1`
  (``method="profile"``).

Models are built with smooth interpolation (``normsys`` code 4, ``histosys`` code 4p), so
the likelihood is twice differentiable at the nominal point.

Examples
--------
>>> from analysis_lib.evaluation.pyhf_model import build_workspace
>>> from analysis_lib.evaluation.templates import Template
>>> ws = build_workspace(Template([0.0, 1.0], [10.0]), Template([0.0, 1.0], [100.0]))
>>> round(expected_discovery_significance(ws), 4)  # asimov_z0(10, 100) = 0.98399
0.984
>>> round(expected_mu_uncertainty(ws), 4)  # sqrt(s + b) / s
1.0488
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyhf
from scipy.optimize import brentq
from scipy.stats import norm

__all__ = [
    "INTERPOLATION",
    "ExpectedSensitivity",
    "asimov_data",
    "expected_discovery_significance",
    "expected_mu_uncertainty",
    "expected_sensitivity",
    "make_model",
]

#: pyhf ``modifier_settings``: smooth interpolation of normsys (code4) and histosys (code4p).
INTERPOLATION = {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}}


def make_model(workspace: dict | pyhf.Workspace) -> pyhf.pdf.Model:
    """The pyhf model of a workspace (validated against pyhf's schema), smooth interpolation.

    Examples
    --------
    >>> from analysis_lib.evaluation.pyhf_model import build_workspace
    >>> from analysis_lib.evaluation.templates import Template
    >>> model = make_model(build_workspace(Template([0, 1], [1.0]), Template([0, 1], [9.0])))
    >>> model.config.poi_name, model.config.channels
    ('mu', ['score'])
    """
    with warnings.catch_warnings():
        # pyhf 0.7 validates with jsonschema.RefResolver, deprecated in jsonschema 4.18
        warnings.filterwarnings("ignore", message=".*RefResolver", category=DeprecationWarning)
        if not isinstance(workspace, pyhf.Workspace):
            try:
                workspace = pyhf.Workspace(workspace)
            except pyhf.exceptions.InvalidSpecification as err:
                raise ValueError(f"not a valid pyhf workspace: {err}") from err
        return workspace.model(modifier_settings=INTERPOLATION)


def _nominal_pars(model: pyhf.pdf.Model, mu: float) -> np.ndarray:
    pars = np.asarray(model.config.suggested_init(), dtype=np.float64)
    pars[model.config.poi_index] = mu
    return pars


def asimov_data(model: pyhf.pdf.Model, mu: float = 1.0) -> np.ndarray:
    """Expected main and auxiliary data at ``mu`` with the nuisance parameters nominal.

    Examples
    --------
    >>> from analysis_lib.evaluation.pyhf_model import build_workspace
    >>> from analysis_lib.evaluation.templates import Template
    >>> model = make_model(build_workspace(Template([0, 1], [1.0]), Template([0, 1], [9.0])))
    >>> asimov_data(model).tolist()
    [10.0]
    """
    return np.asarray(model.expected_data(_nominal_pars(model, mu)), dtype=np.float64)


def expected_discovery_significance(workspace: dict | pyhf.Workspace) -> float:
    """Median expected discovery significance :math:`\\sqrt{q_{0,A}}` at ``mu = 1``.

    Parameters
    ----------
    workspace : dict or pyhf.Workspace
        For example from :func:`~analysis_lib.evaluation.pyhf_model.build_workspace`.

    Returns
    -------
    float

    Examples
    --------
    >>> from analysis_lib.evaluation.pyhf_model import build_workspace
    >>> from analysis_lib.evaluation.templates import Template
    >>> ws = build_workspace(Template([0, 1, 2], [5.0, 5.0]), Template([0, 1, 2], [50.0, 5.0]))
    >>> round(expected_discovery_significance(ws), 3)
    2.085
    """
    model = make_model(workspace)
    data = asimov_data(model)
    q0 = pyhf.infer.test_statistics.q0(
        0.0,
        data,
        model,
        model.config.suggested_init(),
        model.config.suggested_bounds(),
        model.config.suggested_fixed(),
    )
    return math.sqrt(max(float(q0), 0.0))


def _free_indices(model: pyhf.pdf.Model) -> list[int]:
    return [i for i, fixed in enumerate(model.config.suggested_fixed()) if not fixed]


def _nll_hessian(model: pyhf.pdf.Model, data: np.ndarray, pars: np.ndarray) -> np.ndarray:
    """Hessian of -ln L over the free parameters, central differences."""
    free = _free_indices(model)
    steps = 1e-4 * np.maximum(1.0, np.abs(pars[free]))

    def nll(delta: dict[int, float]) -> float:
        p = pars.copy()
        for k, d in delta.items():
            p[free[k]] += d
        return -float(model.logpdf(p, data)[0])

    n = len(free)
    hess = np.empty((n, n))
    f0 = nll({})
    for i in range(n):
        hi = steps[i]
        hess[i, i] = (nll({i: hi}) - 2.0 * f0 + nll({i: -hi})) / hi**2
        for j in range(i):
            hj = steps[j]
            value = (
                nll({i: hi, j: hj})
                - nll({i: hi, j: -hj})
                - nll({i: -hi, j: hj})
                + nll({i: -hi, j: -hj})
            ) / (4.0 * hi * hj)
            hess[i, j] = hess[j, i] = value
    return hess


def _hessian_sigma(model: pyhf.pdf.Model) -> float:
    data = asimov_data(model)
    pars = _nominal_pars(model, 1.0)
    hess = _nll_hessian(model, data, pars)
    cov = np.linalg.inv(hess)
    k = _free_indices(model).index(model.config.poi_index)
    variance = float(cov[k, k])
    if not variance > 0:
        raise ValueError(
            f"the Hessian at the Asimov point is not positive definite (var(mu) = {variance!r}); "
            "the model has a parameter the data cannot constrain"
        )
    return math.sqrt(variance)


def _profile_sigma(model: pyhf.pdf.Model, guess: float) -> float:
    data = asimov_data(model)
    best = -2.0 * float(model.logpdf(_nominal_pars(model, 1.0), data)[0])
    lo, hi = model.config.suggested_bounds()[model.config.poi_index]

    def excess(mu: float) -> float:
        # sqrt(-2 Δln L) - 1: nearly linear in mu, so the root finder needs few fits
        _, twice_nll = pyhf.infer.mle.fixed_poi_fit(mu, data, model, return_fitted_val=True)
        return math.sqrt(max(float(twice_nll) - best, 0.0)) - 1.0

    crossings = []
    for sign, bound in ((1.0, hi), (-1.0, lo)):
        step = 1.5 * guess  # just past the crossing when the likelihood is near-parabolic
        while True:
            edge = 1.0 + sign * step
            if (sign > 0 and edge >= bound) or (sign < 0 and edge <= bound):
                edge = bound
            if excess(edge) > 0:
                break
            if edge == bound:
                raise ValueError(
                    f"-2 Δln L does not reach 1 before the bound mu = {float(bound)!r}; widen "
                    "poi_bounds in build_workspace"
                )
            step *= 2.0
        a, b = sorted((1.0, edge))
        crossings.append(brentq(excess, a, b, xtol=1e-6 * guess))
    upper, lower = crossings
    return (upper - lower) / 2.0


def expected_mu_uncertainty(
    workspace: dict | pyhf.Workspace, *, method: Literal["hessian", "profile"] = "hessian"
) -> float:
    """Expected uncertainty sigma(mu) of the signal strength from the Asimov data at ``mu = 1``.

    Parameters
    ----------
    workspace : dict or pyhf.Workspace
    method : {"hessian", "profile"}
        Inverse Hessian of :math:`-\\ln L` (default; about 2 n^2 likelihood evaluations for
        n parameters), or the half-width of the interval where the profile likelihood ratio
        :math:`-2\\Delta\\ln L` reaches 1 (about ten fits: seconds for tens of parameters).

    Returns
    -------
    float

    Examples
    --------
    >>> from analysis_lib.evaluation.pyhf_model import build_workspace
    >>> from analysis_lib.evaluation.templates import Template
    >>> ws = build_workspace(Template([0, 1], [20.0]), Template([0, 1], [80.0]))
    >>> round(expected_mu_uncertainty(ws), 4)
    0.5
    >>> round(expected_mu_uncertainty(ws, method="profile"), 2)
    0.5
    """
    if method not in ("hessian", "profile"):
        raise ValueError(f"method must be 'hessian' or 'profile', got {method!r}")
    model = make_model(workspace)
    sigma = _hessian_sigma(model)
    if method == "hessian":
        return sigma
    return _profile_sigma(model, sigma)


@dataclass(frozen=True)
class ExpectedSensitivity:
    """Expected discovery significance ``z0``, its p-value ``p0`` and sigma(mu) ``sigma_mu``."""

    z0: float
    p0: float
    sigma_mu: float


def expected_sensitivity(
    workspace: dict | pyhf.Workspace, *, method: Literal["hessian", "profile"] = "hessian"
) -> ExpectedSensitivity:
    """Both numbers of a workspace: :func:`expected_discovery_significance` and sigma(mu).

    Examples
    --------
    >>> from analysis_lib.evaluation.pyhf_model import build_workspace
    >>> from analysis_lib.evaluation.templates import Template
    >>> result = expected_sensitivity(build_workspace(Template([0, 1], [20.0]),
    ...                                               Template([0, 1], [80.0])))
    >>> round(result.z0, 3), round(result.sigma_mu, 3)
    (2.151, 0.5)
    """
    z0 = expected_discovery_significance(workspace)
    return ExpectedSensitivity(
        z0=z0,
        p0=float(norm.sf(z0)),
        sigma_mu=expected_mu_uncertainty(workspace, method=method),
    )
