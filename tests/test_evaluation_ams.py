"""AMS, AMS1 and the Asimov Z0 against the formulas evaluated independently at 50 digits."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal, getcontext

import numpy as np
import pytest

from analysis_lib.evaluation import B_REG, ams, ams1, asimov_z0, z_disc

getcontext().prec = 50

CASES = [(10.0, 100.0), (3.7, 0.42), (250.0, 1234.5), (0.01, 5.0), (40.0, 10.0), (1e-3, 1e4)]


def _d(x: float) -> Decimal:
    return Decimal(repr(x))


def ref_ams(s: float, b: float, b_reg: float = 10.0) -> float:
    """HiggsML: sqrt(2((s + b + b_reg) ln(1 + s/(b + b_reg)) - s)), written out literally."""
    s_, b_, r_ = _d(s), _d(b), _d(b_reg)
    inner = 2 * ((s_ + b_ + r_) * (1 + s_ / (b_ + r_)).ln() - s_)
    return float(inner.sqrt())


def ref_ams1(s: float, b: float, sigma_b: float) -> float:
    """HiggsML AMS1, as printed: sqrt(2((s+b) ln((s+b)/b0) - s - b + b0) + (b-b0)^2/sb^2),
    b0 = (b - sb^2 + sqrt((b - sb^2)^2 + 4 (s+b) sb^2)) / 2."""
    s_, b_, v = _d(s), _d(b), _d(sigma_b) ** 2
    b0 = (b_ - v + ((b_ - v) ** 2 + 4 * (s_ + b_) * v).sqrt()) / 2
    inner = 2 * ((s_ + b_) * ((s_ + b_) / b0).ln() - s_ - b_ + b0) + (b_ - b0) ** 2 / v
    return float(inner.sqrt())


def ref_z_disc(s: float, b: float, sigma_b: float) -> float:
    """Cowan 2012, the formula as printed:
    sqrt(2((s+b) ln((s+b)(b+sb^2)/(b^2+(s+b)sb^2)) - (b^2/sb^2) ln(1 + sb^2 s/(b(b+sb^2)))))."""
    s_, b_, v = _d(s), _d(b), _d(sigma_b) ** 2
    first = (s_ + b_) * ((s_ + b_) * (b_ + v) / (b_ * b_ + (s_ + b_) * v)).ln()
    second = b_ * b_ / v * (1 + v * s_ / (b_ * (b_ + v))).ln()
    return float((2 * (first - second)).sqrt())


@pytest.mark.parametrize(("s", "b"), CASES)
def test_ams_equals_the_higgsml_formula(s, b):
    assert B_REG == 10.0
    assert ams(s, b) == pytest.approx(ref_ams(s, b), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("s", "b"), CASES)
@pytest.mark.parametrize("relative", [0.01, 0.1, 0.5, 2.0])
def test_ams1_equals_the_higgsml_formula(s, b, relative):
    sigma_b = relative * b
    assert ams1(s, b, sigma_b) == pytest.approx(ref_ams1(s, b, sigma_b), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("s", "b"), CASES)
@pytest.mark.parametrize("relative", [0.01, 0.1, 0.5, 2.0])
def test_z_disc_equals_the_cowan_formula(s, b, relative):
    sigma_b = relative * b
    assert z_disc(s, b, sigma_b) == pytest.approx(ref_z_disc(s, b, sigma_b), rel=1e-9, abs=1e-12)


def test_hand_computed_values_with_plain_math():
    # s = 10, b = 100, b_reg = 10: sqrt(2 (120 ln(1 + 10/110) - 10))
    assert ams(10.0, 100.0) == pytest.approx(
        math.sqrt(2 * (120 * math.log(1 + 10 / 110) - 10)), rel=1e-12
    )
    # s = 10, b = 100, sigma_b = 10: b0 = (b - v + sqrt((b - v)^2 + 4 (s + b) v)) / 2
    s, b, v = 10.0, 100.0, 100.0
    b0 = (b - v + math.sqrt((b - v) ** 2 + 4 * (s + b) * v)) / 2
    z1 = math.sqrt(2 * ((s + b) * math.log((s + b) / b0) - s - b + b0) + (b - b0) ** 2 / v)
    assert ams1(s, b, 10.0) == pytest.approx(z1, rel=1e-9)
    z = math.sqrt(
        2 * ((s + b) * math.log((s + b) * (b + v) / (b * b + (s + b) * v)) - b * b / v
             * math.log(1 + v * s / (b * (b + v))))
    )  # fmt: skip
    assert z_disc(s, b, 10.0) == pytest.approx(z, rel=1e-9)


@pytest.mark.parametrize(("s", "b"), CASES)
def test_sigma_b_to_zero_is_the_asimov_formula(s, b):
    z0 = math.sqrt(2 * ((s + b) * math.log1p(s / b) - s))
    assert asimov_z0(s, b) == pytest.approx(z0, rel=1e-9)
    assert ams1(s, b, 0.0) == asimov_z0(s, b)
    assert ams1(s, b, 1e-7 * b) == pytest.approx(z0, rel=1e-9)
    assert z_disc(s, b, 0.0) == asimov_z0(s, b)
    assert z_disc(s, b, 1e-7 * b) == pytest.approx(z0, rel=1e-9)
    assert ams(s, b, b_reg=0.0) == pytest.approx(z0, rel=1e-12)


def test_limits():
    # s << b: Z0 -> s / sqrt(b); with uncertainty: s / sqrt(b + sigma_b^2)
    assert asimov_z0(1e-3, 1e4) == pytest.approx(1e-5, rel=1e-6)
    assert ams1(1.0, 1e4, 100.0) == pytest.approx(1 / math.sqrt(2e4), rel=1e-3)
    assert z_disc(1.0, 1e4, 100.0) == pytest.approx(1 / math.sqrt(2e4), rel=1e-3)
    # more background uncertainty, less significance
    values = [ams1(20.0, 50.0, sb) for sb in (0.0, 1.0, 5.0, 20.0, 100.0)]
    assert all(a > b for a, b in itertools.pairwise(values))
    assert ams(0.0, 7.0) == 0.0


def test_arrays_broadcast():
    s = np.array([1.0, 5.0, 20.0])
    b = np.array([[10.0], [100.0]])
    out = ams(s, b)
    assert out.shape == (2, 3)
    assert out[1, 2] == pytest.approx(ref_ams(20.0, 100.0), rel=1e-9)
    out1 = ams1(s, 100.0, 0.1 * 100.0)
    assert out1.shape == (3,)
    assert out1[0] == pytest.approx(ref_ams1(1.0, 100.0, 10.0), rel=1e-9)
    assert isinstance(ams(1.0, 2.0), float)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ams(-1.0, 5.0), r"s must be finite and >= 0, got -1.0"),
        (lambda: ams(1.0, -5.0), r"b must be finite and >= 0, got -5.0"),
        (lambda: ams(1.0, float("nan")), r"b must be finite and >= 0, got nan"),
        (lambda: ams1(1.0, 0.0, 1.0), r"b must be finite and > 0, got 0.0"),
        (lambda: ams1(1.0, 5.0, -0.1), r"sigma_b must be finite and >= 0, got -0.1"),
        (lambda: ams1(np.array([1.0, -2.0]), 5.0, 1.0), r"got -2.0 \(1 bad entries\)"),
        (lambda: asimov_z0(1.0, float("inf")), r"b must be finite and > 0, got inf"),
        (lambda: ams("many", 5.0), r"s must be a number or an array of numbers, got 'many'"),
    ],
)
def test_bad_counts_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
