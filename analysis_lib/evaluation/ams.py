r"""Approximate median significance: AMS (HiggsML, b_reg = 10), AMS1 (with sigma_b), Asimov Z0.

For a counting experiment with expected signal ``s`` and background ``b`` (weighted event
sums above a cut):

* :func:`asimov_z0` — the median discovery significance from the Asimov data set
  (Cowan, Cranmer, Gross, Vitells, Eur. Phys. J. C 71 (2011) 1554, arXiv:1007.1727, Eq. 97):

  .. math:: Z_0 = \sqrt{2\left((s+b)\ln\left(1+\frac{s}{b}\right)-s\right)};

* :func:`ams` — the HiggsML challenge metric, :math:`Z_0` with a regularisation term added to
  the background (Adam-Bourdarios et al., *The Higgs boson machine learning challenge*,
  JMLR W&CP 42 (2015) 19, and the challenge documentation, with :math:`b_\mathrm{reg}=10`):

  .. math:: \mathrm{AMS} = \sqrt{2\left((s+b+b_\mathrm{reg})
            \ln\left(1+\frac{s}{b+b_\mathrm{reg}}\right)-s\right)};

* :func:`ams1` — the HiggsML significance with an absolute background uncertainty
  :math:`\sigma_b`, from the profile likelihood of a Poisson count with a Gaussian constraint
  on the background (HiggsML challenge documentation, Adam-Bourdarios et al. 2014, "AMS1"):

  .. math:: \mathrm{AMS1} = \sqrt{2\left((s+b)\ln\frac{s+b}{b_0}-s-b+b_0\right)
            +\frac{(b-b_0)^2}{\sigma_b^2}},\quad
            b_0=\tfrac12\left(b-\sigma_b^2+\sqrt{(b-\sigma_b^2)^2+4(s+b)\sigma_b^2}\right),

  where :math:`b_0` is the background fitted under the background-only hypothesis;

* :func:`z_disc` — the same question with the background uncertainty modelled as an auxiliary
  Poisson measurement instead (G. Cowan, *Discovery sensitivity for a counting experiment with
  background uncertainty*, 2012, www.pp.rhul.ac.uk/~cowan/stat/medsig; :math:`Z_\mathrm{disc}`
  in Bhattiprolu, Martin, Wells, Eur. Phys. J. C (2021), arXiv:2009.07249):

  .. math:: Z_\mathrm{disc} = \sqrt{2\left((s+b)\ln\frac{(s+b)(b+\sigma_b^2)}
            {b^2+(s+b)\sigma_b^2}-\frac{b^2}{\sigma_b^2}
            \ln\left(1+\frac{\sigma_b^2 s}{b(b+\sigma_b^2)}\right)\right)}.

  Both tend to :math:`Z_0` as :math:`\sigma_b \to 0` (and are exactly :math:`Z_0` at
  :math:`\sigma_b = 0`); they differ at large :math:`\sigma_b`.

All accept scalars or arrays (broadcast together) and are evaluated in a form that
stays accurate for small ``s/b`` and small ``sigma_b`` (see :func:`ams1`). Negative or
non-finite ``s``, ``b``, ``sigma_b`` raise a ValueError naming the value.

Examples
--------
>>> round(ams(10.0, 100.0), 6)
0.939537
>>> round(asimov_z0(10.0, 100.0), 6)
0.983992
>>> round(ams1(10.0, 100.0, sigma_b=10.0), 6)
0.695787
>>> round(z_disc(10.0, 100.0, sigma_b=10.0), 6)
0.690196
>>> float(ams1(10.0, 100.0, sigma_b=0.0)) == float(asimov_z0(10.0, 100.0))
True
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["B_REG", "ams", "ams1", "asimov_z0", "z_disc"]

#: The HiggsML regularisation term added to the background in :func:`ams`.
B_REG: float = 10.0


def _counts(name: str, value: ArrayLike, *, positive: bool = False) -> NDArray[np.float64]:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    bad = ~np.isfinite(arr) | (arr <= 0 if positive else arr < 0)
    if np.any(bad):
        first = arr[bad].flat[0] if arr.ndim else arr
        where = "" if arr.ndim == 0 else f" ({int(bad.sum())} bad entries)"
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be finite and {need}, got {float(first)!r}{where}")
    return arr


def _with_uncertainty(
    s: ArrayLike, b: ArrayLike, sigma_b: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Checked ``s``, ``b`` (> 0) and ``sigma_b**2``, broadcast together."""
    s_arr = _counts("s", s)
    b_arr = _counts("b", b, positive=True)
    sig2 = _counts("sigma_b", sigma_b) ** 2
    return tuple(np.broadcast_arrays(s_arr, b_arr, sig2))  # type: ignore[return-value]


def _result(z2: NDArray[np.float64]) -> NDArray[np.float64] | float:
    # rounding can make 0 come out as -1e-17: clip before the square root
    z = np.sqrt(np.clip(z2, 0.0, None))
    return float(z) if np.ndim(z) == 0 else z


def _h(u: NDArray[np.float64]) -> NDArray[np.float64]:
    """h(u) = (1 + u) ln(1 + u) - u, to full precision also for small u (a series there)."""
    u = np.asarray(u, dtype=np.float64)
    small = np.abs(u) < 1e-2
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = (1.0 + u) * np.log1p(u) - u
    # h(u) = sum_{k>=2} (-1)^k u^k / (k (k - 1)); |u| < 1e-2 converges to 1e-20 by k = 12
    series = np.zeros_like(u)
    for k in range(12, 1, -1):
        series = series * u + (-1.0) ** k / (k * (k - 1))
    series = series * u * u
    return np.where(small, series, direct)


def _z0_squared(s: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    # 2 ((s + b) ln(1 + s/b) - s) = 2 b h(s/b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * b * _h(s / b)


def asimov_z0(s: ArrayLike, b: ArrayLike) -> NDArray[np.float64] | float:
    r"""Median discovery significance :math:`\sqrt{2((s+b)\ln(1+s/b)-s)}` (arXiv:1007.1727).

    Parameters
    ----------
    s : float or array_like
        Expected signal, >= 0.
    b : float or array_like
        Expected background, > 0.

    Returns
    -------
    float or ndarray
        A float for scalar input, else an array of the broadcast shape.

    Examples
    --------
    >>> round(asimov_z0(5.0, 25.0), 6)
    0.969172
    >>> asimov_z0(5.0, 0.0)
    Traceback (most recent call last):
    ...
    ValueError: b must be finite and > 0, got 0.0
    """
    return _result(_z0_squared(_counts("s", s), _counts("b", b, positive=True)))


def ams(s: ArrayLike, b: ArrayLike, *, b_reg: float = B_REG) -> NDArray[np.float64] | float:
    r"""The HiggsML approximate median significance with regularisation ``b_reg`` (10).

    :math:`\sqrt{2((s+b+b_\mathrm{reg})\ln(1+s/(b+b_\mathrm{reg}))-s)}`, i.e.
    :func:`asimov_z0` of ``s`` and ``b + b_reg``.

    Parameters
    ----------
    s, b : float or array_like
        Expected (weighted) signal and background, >= 0.
    b_reg : float
        Regularisation added to ``b``; the challenge used 10. ``b + b_reg`` must be > 0.

    Examples
    --------
    >>> round(ams(0.0, 0.0), 6), round(ams(20.0, 0.0), 6)
    (0.0, 5.090848)
    >>> ams(-1.0, 5.0)
    Traceback (most recent call last):
    ...
    ValueError: s must be finite and >= 0, got -1.0
    """
    s_arr = _counts("s", s)
    b_arr = _counts("b", b)
    reg = _counts("b_reg", b_reg)
    b_tot = b_arr + reg
    if np.any(b_tot <= 0):
        raise ValueError(f"b + b_reg must be > 0, got b_reg={b_reg!r} with b = 0")
    return _result(_z0_squared(s_arr, b_tot))


def ams1(s: ArrayLike, b: ArrayLike, sigma_b: ArrayLike) -> NDArray[np.float64] | float:
    r"""HiggsML AMS1: discovery significance with an absolute background uncertainty ``sigma_b``.

    .. math:: \sqrt{2\left((s+b)\ln\frac{s+b}{b_0}-s-b+b_0\right)+\frac{(b-b_0)^2}{\sigma_b^2}},
              \quad b_0=\tfrac12\left(b-\sigma_b^2+\sqrt{(b-\sigma_b^2)^2+4(s+b)\sigma_b^2}
              \right)

    (see the module documentation). Evaluated without cancellation: with
    :math:`D = \sqrt{(b-\sigma_b^2)^2+4(s+b)\sigma_b^2}` and :math:`c = b+\sigma_b^2+D`,
    :math:`b_0 - b = 2s\sigma_b^2/c` and :math:`s+b-b_0 = 2sb_0/c`, so the expression under
    the root is :math:`2b_0\,h\!\left(\frac{s+b-b_0}{b_0}\right)+4s^2\sigma_b^2/c^2` with
    :math:`h(u) = (1+u)\ln(1+u) - u`; ``sigma_b = 0`` gives :func:`asimov_z0` exactly.

    Parameters
    ----------
    s : float or array_like
        Expected signal, >= 0.
    b : float or array_like
        Expected background, > 0.
    sigma_b : float or array_like
        Absolute uncertainty on ``b`` (not relative: for 10 % pass ``0.1 * b``), >= 0.

    Examples
    --------
    >>> round(ams1(50.0, 100.0, 5.0), 6)
    4.125684
    >>> bool(ams1(50.0, 100.0, 5.0) < asimov_z0(50.0, 100.0))
    True
    """
    s_arr, b_arr, sig2 = _with_uncertainty(s, b, sigma_b)
    n = s_arr + b_arr
    d = np.sqrt((b_arr - sig2) ** 2 + 4.0 * n * sig2)
    c = b_arr + sig2 + d
    b0 = b_arr + 2.0 * s_arr * sig2 / c
    excess = 2.0 * s_arr * b0 / c  # s + b - b0
    return _result(2.0 * b0 * _h(excess / b0) + 4.0 * s_arr**2 * sig2 / c**2)


def z_disc(s: ArrayLike, b: ArrayLike, sigma_b: ArrayLike) -> NDArray[np.float64] | float:
    r"""Cowan's discovery significance, ``sigma_b`` from an auxiliary Poisson measurement.

    .. math:: \sqrt{2\left((s+b)\ln\frac{(s+b)(b+\sigma_b^2)}{b^2+(s+b)\sigma_b^2}
              -\frac{b^2}{\sigma_b^2}\ln\left(1+\frac{\sigma_b^2 s}{b(b+\sigma_b^2)}\right)
              \right)}

    (Cowan 2012; see the module documentation). Evaluated in the equivalent form
    :math:`2b\,(h(t) - h(tq)/q)` with :math:`t = s/b`, :math:`q = \sigma_b^2/(b+\sigma_b^2)`
    and :math:`h(u) = (1+u)\ln(1+u) - u`, which keeps full precision for ``s << b`` and
    small ``sigma_b``; ``sigma_b = 0`` gives :func:`asimov_z0` exactly.

    Parameters
    ----------
    s : float or array_like
        Expected signal, >= 0.
    b : float or array_like
        Expected background, > 0.
    sigma_b : float or array_like
        Absolute uncertainty on ``b`` (not relative: for 10 % pass ``0.1 * b``), >= 0.

    Examples
    --------
    >>> round(z_disc(50.0, 100.0, 5.0), 6)
    4.098577
    >>> bool(z_disc(50.0, 100.0, 5.0) < asimov_z0(50.0, 100.0))
    True
    """
    s_arr, b_arr, sig2 = _with_uncertainty(s, b, sigma_b)
    # With t = s/b and q = sigma_b^2 / (b + sigma_b^2), the expression under the root is
    # 2 b (h(t) - h(t q) / q), h(u) = (1 + u) ln(1 + u) - u: the same algebra, without
    # the cancellation between terms of order s that the printed form suffers for s << b.
    t_ = s_arr / b_arr
    q = sig2 / (b_arr + sig2)
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(q > 0, _h(t_ * q) / np.where(q > 0, q, 1.0), 0.0)
    return _result(2.0 * b_arr * (_h(t_) - shrink))
