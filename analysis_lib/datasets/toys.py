"""Toy benchmarks from three machine-learning-for-HEP papers, as numpy arrays.

Each generator is fully specified by the paper (or, where the paper and the
authors' code disagree, by the code; see the Notes of each function), takes its
nuisance parameters explicitly, and is deterministic for a ``seed`` (an ``int``
or a :class:`numpy.random.Generator`). All arrays returned are ``float64``.

Benchmarks
----------
Parameterised network 1D toy
    Baldi, Cranmer, Faucett, Sadowski, Whiteson, *Parameterized neural networks
    for high-energy physics*, Eur. Phys. J. C 76 (2016) 235, arXiv:1601.07913:
    :func:`make_pnn_toy`, :func:`pnn_toy_log_likelihood_ratio`,
    :func:`pnn_toy_bayes_auc`.
Pivot toy
    Louppe, Kagan, Cranmer, *Learning to Pivot with Adversarial Networks*,
    NIPS 2017, arXiv:1611.01046, section 5.1: :func:`make_pivot_toy`,
    :func:`pivot_toy_log_likelihood_ratio`.
INFERNO synthetic 3D mixture
    de Castro, Dorigo, *INFERNO: Inference-Aware Neural Optimisation*,
    Comput. Phys. Commun. 244 (2019) 170, arXiv:1806.04743: :class:`InfernoParams`,
    :func:`make_inferno_toy`, :func:`sample_inferno_pseudo_data`,
    :func:`sample_inferno_signal`, :func:`sample_inferno_background`,
    :func:`inferno_signal_logpdf`, :func:`inferno_background_logpdf`,
    :func:`inferno_mixture_logpdf`, :func:`inferno_expected_counts`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "INFERNO_BACKGROUND_COV",
    "INFERNO_SIGNAL_RATE",
    "PIVOT_COV_0",
    "PIVOT_COV_1",
    "PIVOT_MEAN_0",
    "PIVOT_MEAN_1",
    "PNN_THETA_TRAIN",
    "InfernoParams",
    "PnnToyParams",
    "inferno_background_logpdf",
    "inferno_expected_counts",
    "inferno_mixture_logpdf",
    "inferno_signal_logpdf",
    "make_inferno_toy",
    "make_pivot_toy",
    "make_pnn_toy",
    "pivot_toy_log_likelihood_ratio",
    "pnn_toy_bayes_auc",
    "pnn_toy_log_likelihood_ratio",
    "sample_inferno_background",
    "sample_inferno_pseudo_data",
    "sample_inferno_signal",
]

Seed = int | np.random.Generator | None
FloatArray = NDArray[np.float64]

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- helpers


def _rng(seed: Seed) -> np.random.Generator:
    """A Generator from an int seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(seed, bool) or not (
        seed is None or isinstance(seed, numbers.Integral | np.random.Generator)
    ):
        raise ValueError(f"seed must be an int, a numpy.random.Generator or None, got {seed!r}")
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    return np.random.default_rng(seed)


def _params(value: object, kind: type) -> Any:
    """The toy's parameters: ``value`` itself, or the defaults for None; anything else is a
    TypeError naming it."""
    if value is None:
        return kind()
    if isinstance(value, kind):
        return value
    hint = f" (for a dict: {kind.__name__}(**params))" if isinstance(value, Mapping) else ""
    raise TypeError(f"params must be a {kind.__name__} or None, got {value!r}{hint}")


def _count(name: str, value: object) -> int:
    """A non-negative integer event count, or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _finite(name: str, value: object) -> float:
    """A finite float, or a ValueError naming it."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


def _positive(name: str, value: object) -> float:
    """A finite float > 0, or a ValueError naming it."""
    out = _finite(name, value)
    if out <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return out


def _non_negative(name: str, value: object) -> float:
    """A finite float >= 0, or a ValueError naming it."""
    out = _finite(name, value)
    if out < 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return out


def _features(name: str, X: ArrayLike, n_features: int) -> FloatArray:
    """``X`` as a float64 (n, n_features) array, or a ValueError naming its shape."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_features:
        raise ValueError(f"{name} must have shape (n, {n_features}), got shape {arr.shape}")
    return arr


def _norm_cdf(x: FloatArray) -> FloatArray:
    """Standard normal CDF, accurate in both tails (math.erfc, no scipy needed)."""
    erfc = np.vectorize(math.erfc, otypes=[np.float64])
    return 0.5 * erfc(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0))


def _gauss2_logpdf(X: FloatArray, mean: FloatArray, cov: FloatArray) -> FloatArray:
    """Log-density of a bivariate normal at the rows of ``X``."""
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, (X - mean).T)
    log_det = 2.0 * np.sum(np.log(np.diag(chol)))
    return -0.5 * np.sum(white**2, axis=0) - 0.5 * log_det - _LOG_2PI


def _frozen(values: ArrayLike) -> FloatArray:
    """A read-only float64 array, for module constants that generation depends on."""
    arr = np.array(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


def _shuffled(rng: np.random.Generator, shuffle: bool, *arrays: FloatArray) -> tuple:
    """The arrays permuted by one common random permutation (or as they are)."""
    if not shuffle:
        return arrays
    order = rng.permutation(len(arrays[0]))
    return tuple(a[order] for a in arrays)


# ------------------------------------------------------------ parameterised network toy

PNN_THETA_TRAIN: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0)
"""The paper's training values of the signal parameter θ (arXiv:1601.07913, Fig. 2)."""


@dataclass(frozen=True)
class PnnToyParams:
    """Shape of the parameterised-network 1D toy (arXiv:1601.07913).

    Parameters
    ----------
    sigma : float
        Standard deviation of the Gaussian signal ``x ~ N(θ, sigma)``; the paper's 0.25.
    low, high : float
        Support of the uniform background ``x ~ U[low, high]``; the paper's [-4, 4].

    Examples
    --------
    >>> PnnToyParams()
    PnnToyParams(sigma=0.25, low=-4.0, high=4.0)
    >>> PnnToyParams(sigma=0.0)
    Traceback (most recent call last):
    ...
    ValueError: sigma must be > 0, got 0.0
    """

    sigma: float = 0.25
    low: float = -4.0
    high: float = 4.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", _positive("sigma", self.sigma))
        object.__setattr__(self, "low", _finite("low", self.low))
        object.__setattr__(self, "high", _finite("high", self.high))
        if self.high <= self.low:
            raise ValueError(f"high must be > low, got low={self.low!r}, high={self.high!r}")


def _thetas(thetas: ArrayLike) -> FloatArray:
    values = np.atleast_1d(np.asarray(thetas, dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"thetas must be a non-empty 1D list of values, got {thetas!r}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"thetas must all be finite, got {thetas!r}")
    return values


def make_pnn_toy(
    n_per_theta: int,
    thetas: Sequence[float] | ArrayLike = PNN_THETA_TRAIN,
    *,
    n_background: int | None = None,
    params: PnnToyParams | None = None,
    seed: Seed = None,
    shuffle: bool = True,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Events of the parameterised-network 1D toy, with θ as a second input column.

    Signal at each ``θ`` in ``thetas`` is ``x ~ N(θ, sigma)``; background is
    ``x ~ U[low, high]`` whatever θ. Background events are given θ values drawn
    from the signal's θ distribution (uniform over the entries of ``thetas``):
    every entry appears ``n_background // len(thetas)`` times, the remainder are
    distinct entries chosen at random, so the two θ marginals agree to within one
    event per entry and θ alone carries no information about the class.

    Parameters
    ----------
    n_per_theta : int
        Signal events generated at each entry of ``thetas``.
    thetas : sequence of float, default ``PNN_THETA_TRAIN`` = (-2, -1, 0, 1, 2)
        Signal parameter values; a single value gives an evaluation sample at that θ.
    n_background : int, optional
        Number of background events; by default as many as signal events in all,
        ``n_per_theta * len(thetas)``.
    params : PnnToyParams, optional
        Signal width and background support; the paper's by default.
    seed : int or numpy.random.Generator, optional
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same events.
    shuffle : bool, default True
        Shuffle the events; if False, signal (θ by θ, in ``thetas`` order) comes first.

    Returns
    -------
    X : ndarray of shape (n, 2)
        Columns ``[x, θ]``.
    y : ndarray of shape (n,)
        1.0 for signal, 0.0 for background.
    weights : ndarray of shape (n,)
        1.0 for signal; ``n_signal / n_background`` for background, so both classes
        carry the same total weight (all ones in the default, balanced case).

    Raises
    ------
    ValueError
        Negative ``n_per_theta`` or ``n_background``, empty or non-finite ``thetas``.

    Notes
    -----
    The paper writes the signal as a Gaussian of mean θ and width 0.25. Width means
    standard deviation: with it the Bayes-optimal AUC at any θ well inside the
    background support is 0.9501 (:func:`pnn_toy_bayes_auc`), the value quoted for
    this benchmark; a variance of 0.25 (sigma = 0.5) would give 0.9003.

    Examples
    --------
    >>> X, y, w = make_pnn_toy(1000, seed=1)
    >>> X.shape, y.shape, w.shape, X.dtype
    ((10000, 2), (10000,), (10000,), dtype('float64'))
    >>> sorted(set(X[:, 1].tolist()))
    [-2.0, -1.0, 0.0, 1.0, 2.0]
    >>> float(y.mean()), float(w.sum())
    (0.5, 10000.0)
    """
    n_per_theta = _count("n_per_theta", n_per_theta)
    theta_values = _thetas(thetas)
    p = _params(params, PnnToyParams)
    n_signal = n_per_theta * theta_values.size
    n_bkg = n_signal if n_background is None else _count("n_background", n_background)
    rng = _rng(seed)

    theta_sig = np.repeat(theta_values, n_per_theta)
    x_sig = theta_sig + p.sigma * rng.standard_normal(n_signal)

    x_bkg = rng.uniform(p.low, p.high, size=n_bkg)
    whole, rest = divmod(n_bkg, theta_values.size)
    theta_bkg = np.concatenate(
        [np.tile(theta_values, whole), rng.choice(theta_values, size=rest, replace=False)]
    )
    theta_bkg = rng.permutation(theta_bkg)

    X = np.column_stack([np.concatenate([x_sig, x_bkg]), np.concatenate([theta_sig, theta_bkg])])
    y = np.concatenate([np.ones(n_signal), np.zeros(n_bkg)])
    w_bkg = n_signal / n_bkg if n_signal > 0 and n_bkg > 0 else 1.0
    w = np.concatenate([np.ones(n_signal), np.full(n_bkg, w_bkg)])
    X, y, w = _shuffled(rng, shuffle, X, y, w)
    return X, y, w


def pnn_toy_log_likelihood_ratio(
    x: ArrayLike, theta: ArrayLike, *, params: PnnToyParams | None = None
) -> FloatArray:
    """Bayes-optimal log likelihood ratio ``log p_s(x | θ) / p_b(x)`` of the 1D toy.

    Parameters
    ----------
    x : array_like
        Observed values (the first column of :func:`make_pnn_toy`'s ``X``).
    theta : array_like
        Signal parameter, broadcast against ``x`` (e.g. the second column).
    params : PnnToyParams, optional
        Signal width and background support; the paper's by default.

    Returns
    -------
    ndarray
        ``log N(x; θ, sigma) + log(high - low)`` inside the background support,
        ``+inf`` outside it (where only signal can be).

    Examples
    --------
    >>> float(pnn_toy_log_likelihood_ratio(0.0, 0.0).round(4))  # log(8 / (0.25 sqrt(2 pi)))
    2.5468
    >>> float(pnn_toy_log_likelihood_ratio(5.0, 0.0))
    inf
    """
    p = _params(params, PnnToyParams)
    xs = np.asarray(x, dtype=np.float64)
    th = np.asarray(theta, dtype=np.float64)
    t = (xs - th) / p.sigma
    log_sig = -0.5 * t**2 - math.log(p.sigma) - 0.5 * _LOG_2PI
    inside = (xs >= p.low) & (xs <= p.high)
    return np.where(inside, log_sig + math.log(p.high - p.low), np.inf)


def pnn_toy_bayes_auc(
    theta: float, *, params: PnnToyParams | None = None, n_nodes: int = 128
) -> float:
    """ROC AUC of the Bayes-optimal classifier of the 1D toy at signal parameter θ.

    The likelihood ratio falls with ``|x - θ|`` inside the background support and is
    infinite outside it, so the AUC, ``P(LR(x_s) > LR(x_b))``, has a closed form in
    the normal CDF for each background value ``x_b``; it is integrated over the
    uniform ``x_b`` by Gauss-Legendre quadrature on the pieces where it is smooth.

    Parameters
    ----------
    theta : float
        Signal parameter.
    params : PnnToyParams, optional
        Signal width and background support; the paper's by default.
    n_nodes : int, default 128
        Quadrature nodes per smooth piece (the result is converged to ~1e-12).

    Returns
    -------
    float
        The AUC. Deep inside the support it is ``1 - 2 sigma sqrt(2/pi) / (high - low)``
        (both tails of the signal fit inside), 0.950133 for the paper's values.

    Examples
    --------
    >>> round(pnn_toy_bayes_auc(0.0), 4)
    0.9501
    >>> round(pnn_toy_bayes_auc(1.5), 4), round(pnn_toy_bayes_auc(4.0), 4)
    (0.9501, 0.9875)
    """
    theta = _finite("theta", theta)
    p = _params(params, PnnToyParams)
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, numbers.Integral) or n_nodes < 2:
        raise ValueError(f"n_nodes must be an integer >= 2, got {n_nodes!r}")
    a = (p.low - theta) / p.sigma  # support edges in units of the signal width
    b = (p.high - theta) / p.sigma

    def win(xb: FloatArray) -> FloatArray:
        u = np.abs(xb - theta) / p.sigma
        # signal beats this background event if |t| < u, or if it lies outside the
        # support (infinite ratio) with |t| >= u; the three sets are disjoint
        return (
            (2.0 * _norm_cdf(u) - 1.0) + _norm_cdf(-np.maximum(b, u)) + _norm_cdf(np.minimum(a, -u))
        )

    kinks = [p.low, p.high, theta, 2.0 * theta - p.high, 2.0 * theta - p.low]
    edges = np.unique(np.clip(kinks, p.low, p.high))
    nodes, weights = np.polynomial.legendre.leggauss(int(n_nodes))
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        half = 0.5 * (hi - lo)
        total += half * float(np.sum(weights * win(lo + half * (nodes + 1.0))))
    return float(total / (p.high - p.low))


# -------------------------------------------------------------------------- pivot toy

PIVOT_MEAN_0 = _frozen([0.0, 0.0])
"""Mean of class Y=0 in the pivot toy (arXiv:1611.01046, section 5.1)."""
PIVOT_COV_0 = _frozen([[1.0, -0.5], [-0.5, 1.0]])
"""Covariance of class Y=0 in the pivot toy."""
PIVOT_MEAN_1 = _frozen([1.0, 1.0])
"""Mean of class Y=1 at nominal nuisance Z=0; its second component is ``1 + Z``."""
PIVOT_COV_1 = _frozen(np.eye(2))
"""Covariance of class Y=1 in the pivot toy."""


def make_pivot_toy(
    n_per_class: int,
    *,
    z: float | None = None,
    z_sigma: float = 1.0,
    seed: Seed = None,
    shuffle: bool = True,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Events of the toy of *Learning to Pivot* (section 5.1), with the nuisance per event.

    With equal priors,

    - ``Y = 0``: ``x ~ N((0, 0), [[1, -0.5], [-0.5, 1]])``,
    - ``Y = 1``: ``x | Z=z ~ N((1, 1 + z), [[1, 0], [0, 1]])``,

    with the continuous nuisance ``Z ~ N(0, 1)`` shifting the second coordinate of the
    ``Y = 1`` class only.

    Parameters
    ----------
    n_per_class : int
        Events of each class (the paper's equal priors).
    z : float, optional
        Fix the nuisance to this value for every event (to evaluate at, e.g.,
        Z = -1, 0, +1 as in the paper's Fig. 2). By default each event draws its own
        ``z ~ N(0, z_sigma)``, independently of its class.
    z_sigma : float, default 1.0
        Standard deviation of the nuisance prior (the paper's 1).
    seed : int or numpy.random.Generator, optional
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same events.
    shuffle : bool, default True
        Shuffle the events; if False, class 0 comes first.

    Returns
    -------
    X : ndarray of shape (2 * n_per_class, 2)
    y : ndarray of shape (2 * n_per_class,)
        The paper's ``Y``: 0.0 for the correlated Gaussian, 1.0 for the shifted one.
    z : ndarray of shape (2 * n_per_class,)
        The nuisance value of each event, the adversary's target. For ``Y = 0`` it is
        drawn from the same prior but does not affect ``x`` (the paper trains on
        samples ``{x_i, y_i, z_i}`` of the joint with ``Z`` independent of ``Y``);
        select ``y == 1`` for an adversary conditional on the class.

    Raises
    ------
    ValueError
        Negative ``n_per_class``, ``z_sigma <= 0``, non-finite ``z``.

    Notes
    -----
    Means and covariances are those of the paper's section 5.1, as in its NIPS 2017
    text (``tex/nips/nips_2017.tex`` of the authors' repository
    ``glouppe/paper-learning-to-pivot``), where the nuisance-free class is ``Y = 0``. The paper
    does not call either class signal or background; the returned ``y`` follows the
    paper's labels, so a classifier output ``f(x) ≈ P(Y=1 | x)`` matches its figures.

    Examples
    --------
    >>> X, y, z = make_pivot_toy(500, seed=7)
    >>> X.shape, y.shape, z.shape, float(y.mean())
    ((1000, 2), (1000,), (1000,), 0.5)
    >>> X, y, z = make_pivot_toy(10, z=1.0, seed=7)
    >>> set(z.tolist())
    {1.0}
    """
    n_per_class = _count("n_per_class", n_per_class)
    z_sigma = _positive("z_sigma", z_sigma)
    fixed_z = None if z is None else _finite("z", z)
    rng = _rng(seed)

    n_all = 2 * n_per_class
    z_all = z_sigma * rng.standard_normal(n_all) if fixed_z is None else np.full(n_all, fixed_z)
    x0 = PIVOT_MEAN_0 + rng.standard_normal((n_per_class, 2)) @ np.linalg.cholesky(PIVOT_COV_0).T
    x1 = PIVOT_MEAN_1 + rng.standard_normal((n_per_class, 2)) @ np.linalg.cholesky(PIVOT_COV_1).T
    x1[:, 1] += z_all[n_per_class:]

    X = np.concatenate([x0, x1])
    y = np.concatenate([np.zeros(n_per_class), np.ones(n_per_class)])
    X, y, z_all = _shuffled(rng, shuffle, X, y, z_all)
    return X, y, z_all


def pivot_toy_log_likelihood_ratio(
    X: ArrayLike, *, z: float | None = None, z_sigma: float = 1.0
) -> FloatArray:
    """Exact ``log p(x | Y=1) / p(x | Y=0)`` of the pivot toy.

    Parameters
    ----------
    X : array_like of shape (n, 2)
        Events.
    z : float, optional
        Condition on this nuisance value. By default ``Z ~ N(0, z_sigma)`` is
        marginalised: ``x | Y=1 ~ N((1, 1), diag(1, 1 + z_sigma**2))``, which makes
        ``sigmoid`` of the result the optimal classifier of ``Y | X`` the paper trains
        without adversary.
    z_sigma : float, default 1.0
        Standard deviation of the nuisance prior, used when ``z`` is None.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> llr = pivot_toy_log_likelihood_ratio([[0.0, 0.0], [1.0, 1.0]])
    >>> bool(llr[0] < 0 < llr[1])
    True
    """
    X = _features("X", X, 2)
    z_sigma = _positive("z_sigma", z_sigma)
    if z is None:
        mean1, cov1 = PIVOT_MEAN_1, PIVOT_COV_1 + np.diag([0.0, z_sigma**2])
    else:
        mean1, cov1 = PIVOT_MEAN_1 + np.array([0.0, _finite("z", z)]), PIVOT_COV_1
    return _gauss2_logpdf(X, mean1, cov1) - _gauss2_logpdf(X, PIVOT_MEAN_0, PIVOT_COV_0)


# ------------------------------------------------------------------- INFERNO 3D mixture

INFERNO_SIGNAL_RATE = 2.0
"""Rate of the signal's exponential third feature, ``x2 ~ Exp(2)`` (density ``2 e^{-2 x2}``)."""
INFERNO_BACKGROUND_COV = _frozen([[5.0, 0.0], [0.0, 9.0]])
"""Covariance (variances on the diagonal) of the background's first two features."""


@dataclass(frozen=True)
class InfernoParams:
    """Parameters of the INFERNO synthetic 3D mixture (arXiv:1806.04743, section 4).

    Parameters
    ----------
    r : float, default 0.0
        Background shift nuisance: background ``(x0, x1)`` has mean ``(2 + r, 0)``.
    lam : float, default 3.0
        Background exponential rate nuisance: ``x2 ~ Exp(lam)``, mean ``1 / lam``.
    s : float, default 50.0
        Expected number of signal events (the parameter of interest).
    b : float, default 1000.0
        Expected number of background events.

    Examples
    --------
    >>> InfernoParams()
    InfernoParams(r=0.0, lam=3.0, s=50.0, b=1000.0)
    >>> InfernoParams(lam=-1)
    Traceback (most recent call last):
    ...
    ValueError: lam must be > 0, got -1
    """

    r: float = 0.0
    lam: float = 3.0
    s: float = 50.0
    b: float = 1000.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "r", _finite("r", self.r))
        object.__setattr__(self, "lam", _positive("lam", self.lam))
        object.__setattr__(self, "s", _non_negative("s", self.s))
        object.__setattr__(self, "b", _non_negative("b", self.b))


def inferno_expected_counts(params: InfernoParams | None = None) -> tuple[float, float]:
    """Expected signal and background counts ``(s, b)``; nominal ``(50, 1000)``.

    Examples
    --------
    >>> inferno_expected_counts()
    (50.0, 1000.0)
    >>> inferno_expected_counts(InfernoParams(s=0.0))
    (0.0, 1000.0)
    """
    p = _params(params, InfernoParams)
    return p.s, p.b


def _inferno_signal_from(std: FloatArray, expo: FloatArray) -> FloatArray:
    return np.column_stack([std[:, 0], std[:, 1], expo / INFERNO_SIGNAL_RATE])


def _inferno_background_from(std: FloatArray, expo: FloatArray, p: InfernoParams) -> FloatArray:
    sd = np.sqrt(np.diag(INFERNO_BACKGROUND_COV))
    return np.column_stack([2.0 + p.r + sd[0] * std[:, 0], sd[1] * std[:, 1], expo / p.lam])


def sample_inferno_signal(n: int, *, seed: Seed = None) -> FloatArray:
    """Signal events of the INFERNO 3D mixture: ``(x0, x1) ~ N((0, 0), I)``, ``x2 ~ Exp(2)``.

    Parameters
    ----------
    n : int
        Number of events.
    seed : int or numpy.random.Generator, optional
        Seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    ndarray of shape (n, 3)

    Notes
    -----
    The signal has no nuisance. Its location is the authors' code's (0, 0)
    (``pablodecm/paper-inferno``, ``code/synthetic_3D_example.py``); the paper's text
    writes (1, 1), which is reported not to reproduce the paper's own tables.

    Examples
    --------
    >>> sample_inferno_signal(4, seed=0).shape
    (4, 3)
    """
    n = _count("n", n)
    rng = _rng(seed)
    return _inferno_signal_from(rng.standard_normal((n, 2)), rng.standard_exponential(n))


def sample_inferno_background(
    n: int, params: InfernoParams | None = None, *, seed: Seed = None
) -> FloatArray:
    """Background events: ``(x0, x1) ~ N((2 + r, 0), [[5, 0], [0, 9]])``, ``x2 ~ Exp(lam)``.

    Events are a fixed transformation of standard normal and standard exponential
    draws, ``x0 = 2 + r + sqrt(5) n0``, ``x1 = 3 n1``, ``x2 = e / lam``, so the same
    seed at different ``(r, lam)`` gives the same underlying draws (common random
    numbers): ``x0`` moves by the change in ``r`` and ``x2`` scales by the ratio of
    rates, as in the authors' ``transform_bkg``.

    Parameters
    ----------
    n : int
        Number of events.
    params : InfernoParams, optional
        Nuisances ``r`` and ``lam`` (``s`` and ``b`` are not used); nominal by default.
    seed : int or numpy.random.Generator, optional
        Seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    ndarray of shape (n, 3)

    Notes
    -----
    ``diag(5, 9)`` is the covariance matrix, i.e. variances 5 and 9 (standard
    deviations sqrt(5) and 3): the authors' code builds
    ``MultivariateNormalFullCovariance(loc=[r_dist, 0], covariance_matrix=[[5, 0], [0, 9]])``.
    Their ``r_dist`` (default 2.0) is the full mean ``2 + r`` of this module's ``r``.
    ``Exp(lam)`` is parameterised by its rate, as ``tfp.distributions.Exponential(rate=...)``.

    Examples
    --------
    >>> a = sample_inferno_background(3, seed=5)
    >>> b = sample_inferno_background(3, InfernoParams(r=0.5, lam=1.5), seed=5)
    >>> bool(np.allclose(b[:, 0] - a[:, 0], 0.5) and np.allclose(b[:, 2] / a[:, 2], 2.0))
    True
    """
    n = _count("n", n)
    p = _params(params, InfernoParams)
    rng = _rng(seed)
    return _inferno_background_from(rng.standard_normal((n, 2)), rng.standard_exponential(n), p)


def inferno_signal_logpdf(X: ArrayLike) -> FloatArray:
    """Log-density of the INFERNO signal at the rows of ``X`` (``-inf`` where ``x2 < 0``).

    Examples
    --------
    >>> float(inferno_signal_logpdf([[0.0, 0.0, 0.0]]).round(6)[0])  # log(2 / (2 pi))
    -1.14473
    """
    X = _features("X", X, 3)
    gauss = -0.5 * (X[:, 0] ** 2 + X[:, 1] ** 2) - _LOG_2PI
    expo = math.log(INFERNO_SIGNAL_RATE) - INFERNO_SIGNAL_RATE * X[:, 2]
    return np.where(X[:, 2] >= 0.0, gauss + expo, -np.inf)


def inferno_background_logpdf(X: ArrayLike, params: InfernoParams | None = None) -> FloatArray:
    """Log-density of the INFERNO background at nuisances ``(r, lam)`` at the rows of ``X``.

    Examples
    --------
    >>> lp = inferno_background_logpdf([[2.0, 0.0, 0.0], [2.5, 0.0, 0.0]], InfernoParams(r=0.5))
    >>> bool(lp[1] > lp[0])  # the mode moves with r
    True
    """
    X = _features("X", X, 3)
    p = _params(params, InfernoParams)
    var = np.diag(INFERNO_BACKGROUND_COV)
    gauss = (
        -0.5 * ((X[:, 0] - 2.0 - p.r) ** 2 / var[0] + X[:, 1] ** 2 / var[1])
        - 0.5 * math.log(var[0] * var[1])
        - _LOG_2PI
    )
    expo = math.log(p.lam) - p.lam * X[:, 2]
    return np.where(X[:, 2] >= 0.0, gauss + expo, -np.inf)


def inferno_mixture_logpdf(X: ArrayLike, params: InfernoParams | None = None) -> FloatArray:
    """Log-density of the mixture ``(s f_s + b f_b) / (s + b)`` at the rows of ``X``.

    With the Poisson count term this gives the exact extended likelihood
    ``sum(log(s f_s + b f_b)) - (s + b)`` of a sample, the reference against which
    learned summary statistics are compared.

    Examples
    --------
    >>> x = [[0.0, 0.0, 0.1]]
    >>> mix = inferno_mixture_logpdf(x, InfernoParams(s=1.0, b=0.0))
    >>> bool(np.allclose(mix, inferno_signal_logpdf(x)))
    True
    """
    p = _params(params, InfernoParams)
    if p.s + p.b <= 0.0:
        raise ValueError(f"s + b must be > 0 for a mixture, got s={p.s!r}, b={p.b!r}")
    X = _features("X", X, 3)
    with np.errstate(divide="ignore"):
        log_fs = np.log(p.s / (p.s + p.b)) + inferno_signal_logpdf(X)
        log_fb = np.log(p.b / (p.s + p.b)) + inferno_background_logpdf(X, p)
    return np.logaddexp(log_fs, log_fb)


def make_inferno_toy(
    n_signal: int,
    n_background: int,
    params: InfernoParams | None = None,
    *,
    seed: Seed = None,
    shuffle: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """A labelled INFERNO training sample with fixed numbers of each component.

    The authors train on 100 000 events of each component (``train_data``), not on
    the ``s : b`` mixture; weight by ``s / n_signal`` and ``b / n_background`` for
    expected yields. Signal comes from the first draws of the generator, so at a
    fixed seed it does not change with the nuisances, and the background uses common
    random numbers (see :func:`sample_inferno_background`).

    Parameters
    ----------
    n_signal, n_background : int
        Events of each component.
    params : InfernoParams, optional
        Background nuisances ``r`` and ``lam``; nominal by default.
    seed : int or numpy.random.Generator, optional
        Seed for :func:`numpy.random.default_rng`.
    shuffle : bool, default True
        Shuffle the events; if False, signal comes first.

    Returns
    -------
    X : ndarray of shape (n_signal + n_background, 3)
    y : ndarray of shape (n_signal + n_background,)
        1.0 for signal, 0.0 for background.

    Examples
    --------
    >>> X, y = make_inferno_toy(100, 200, seed=3)
    >>> X.shape, float(y.sum())
    ((300, 3), 100.0)
    """
    n_signal = _count("n_signal", n_signal)
    n_background = _count("n_background", n_background)
    p = _params(params, InfernoParams)
    rng = _rng(seed)
    x_sig = _inferno_signal_from(
        rng.standard_normal((n_signal, 2)), rng.standard_exponential(n_signal)
    )
    x_bkg = _inferno_background_from(
        rng.standard_normal((n_background, 2)), rng.standard_exponential(n_background), p
    )
    X = np.concatenate([x_sig, x_bkg])
    y = np.concatenate([np.ones(n_signal), np.zeros(n_background)])
    return _shuffled(rng, shuffle, X, y)


def sample_inferno_pseudo_data(
    params: InfernoParams | None = None, *, seed: Seed = None, shuffle: bool = True
) -> tuple[FloatArray, FloatArray]:
    """One pseudo-experiment: ``Poisson(s)`` signal and ``Poisson(b)`` background events.

    Parameters
    ----------
    params : InfernoParams, optional
        All four parameters; nominal (s=50, b=1000, r=0, lam=3) by default.
    seed : int or numpy.random.Generator, optional
        Seed for :func:`numpy.random.default_rng`.
    shuffle : bool, default True
        Shuffle the events; if False, signal comes first.

    Returns
    -------
    X : ndarray of shape (n, 3)
    y : ndarray of shape (n,)
        True component of each event (1.0 signal), for checks only.

    Examples
    --------
    >>> X, y = sample_inferno_pseudo_data(seed=11)
    >>> X.shape[1], 850 < len(X) < 1250
    (3, True)
    """
    p = _params(params, InfernoParams)
    rng = _rng(seed)
    n_signal, n_background = (int(k) for k in rng.poisson([p.s, p.b]))
    return make_inferno_toy(n_signal, n_background, p, seed=rng, shuffle=shuffle)
