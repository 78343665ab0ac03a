"""Search spaces: integer, real (linear or log) and categorical parameters.

A search space maps parameter names to parameter objects. It is validated once, turned into
Optuna distributions for the samplers, enumerated for grid scans, and described as plain JSON
for the trial store (so a store can tell a different space from its own).

Examples
--------
>>> space = SearchSpace({"max_depth": Int(2, 6), "learning_rate": Float(0.01, 0.3, log=True),
...                      "booster": Categorical(["gbtree", "dart"])})
>>> sorted(space.names)
['booster', 'learning_rate', 'max_depth']
>>> SearchSpace({"depth": Int(2, 4), "loss": Categorical(["a", "b"])}).grid_size()
6
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = ["Categorical", "Float", "Int", "Parameter", "SearchSpace"]

Scalar = bool | int | float | str | None


class Parameter:
    """Base class of one search-space dimension."""

    def to_optuna(self) -> BaseDistribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def grid_values(self, name: str) -> list[Scalar]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Int(Parameter):
    """An integer in ``[low, high]`` (both included).

    Parameters
    ----------
    low, high : int
        The bounds, ``low <= high``.
    step : int
        Spacing of the allowed values (linear scale only).
    log : bool
        Sample on a log scale (``low >= 1``).

    Examples
    --------
    >>> Int(1, 7, step=3).grid_values("n")
    [1, 4, 7]
    """

    low: int
    high: int
    step: int = 1
    log: bool = False

    def __post_init__(self) -> None:
        for field in ("low", "high", "step"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Int {field} must be an int, got {value!r}")
        if self.low > self.high:
            raise ValueError(f"Int low={self.low} is above high={self.high}")
        if self.step < 1:
            raise ValueError(f"Int step must be >= 1, got {self.step}")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError(f"Int log=True needs low >= 1 and step=1, got {self}")

    def to_optuna(self) -> IntDistribution:
        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def grid_values(self, name: str) -> list[Scalar]:
        return list(range(self.low, self.high + 1, self.step))

    def describe(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "step": self.step,
                "log": self.log}  # fmt: skip


@dataclass(frozen=True)
class Float(Parameter):
    """A real number in ``[low, high]``.

    Parameters
    ----------
    low, high : float
        The bounds, ``low <= high``.
    log : bool
        Sample on a log scale (``low > 0``).
    step : float, optional
        Discretise the range (linear scale only); required for grid scans.

    Examples
    --------
    >>> Float(0.0, 1.0, step=0.5).grid_values("x")
    [0.0, 0.5, 1.0]
    """

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        for field in ("low", "high"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"Float {field} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Float {field} must be finite, got {value!r}")
        if self.low > self.high:
            raise ValueError(f"Float low={self.low} is above high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"Float log=True needs low > 0, got low={self.low}")
        if self.step is not None and (self.log or not self.step > 0):
            raise ValueError(f"Float step must be > 0 and not combined with log, got {self}")

    def to_optuna(self) -> FloatDistribution:
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def grid_values(self, name: str) -> list[Scalar]:
        if self.step is None:
            raise ValueError(
                f"parameter {name!r} is continuous ({self}); a grid scan needs Float(step=...) "
                "or a Categorical"
            )
        n = math.floor((self.high - self.low) / self.step + 1e-9)
        return [round(self.low + i * self.step, 12) for i in range(n + 1)]

    def describe(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log,
                "step": self.step}  # fmt: skip


@dataclass(frozen=True)
class Categorical(Parameter):
    """One of a fixed list of choices (``None``, bools, numbers or strings).

    Examples
    --------
    >>> Categorical(["gbtree", "dart"]).grid_values("booster")
    ['gbtree', 'dart']
    """

    choices: tuple[Scalar, ...]

    def __init__(self, choices: Sequence[Scalar]) -> None:
        if isinstance(choices, str) or not isinstance(choices, Sequence):
            raise TypeError(f"Categorical choices must be a list, got {choices!r}")
        choices = tuple(choices)
        if not choices:
            raise ValueError("Categorical needs at least one choice, got []")
        for choice in choices:
            if choice is not None and not isinstance(choice, bool | int | float | str):
                raise TypeError(
                    f"Categorical choice {choice!r} is not None, bool, int, float or str"
                )
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"Categorical choices repeat a value: {list(choices)}")
        object.__setattr__(self, "choices", choices)

    def to_optuna(self) -> CategoricalDistribution:
        return CategoricalDistribution(self.choices)

    def grid_values(self, name: str) -> list[Scalar]:
        return list(self.choices)

    def describe(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)}


class SearchSpace(Mapping[str, Parameter]):
    """A validated mapping of parameter names to :class:`Parameter` objects.

    Parameters
    ----------
    params : mapping of str to Parameter
        At least one parameter. A plain list is taken as a :class:`Categorical`; a tuple
        is refused, since ``(low, high)`` reads as a range in other tools.

    Raises
    ------
    ValueError
        If the space is empty or a name is not a non-empty string.
    TypeError
        If a value is neither a :class:`Parameter` nor a list of choices.

    Examples
    --------
    >>> SearchSpace({"eta": (0.01, 0.3)})
    Traceback (most recent call last):
    ...
    TypeError: parameter 'eta' is a tuple (0.01, 0.3), which is ambiguous: write Float(0.01, ...
    >>> space = SearchSpace({"n": Int(1, 3), "kind": ["a", "b"]})
    >>> space["kind"]
    Categorical(choices=('a', 'b'))
    >>> space.grid()[:2]
    [{'n': 1, 'kind': 'a'}, {'n': 1, 'kind': 'b'}]
    """

    def __init__(self, params: Mapping[str, Parameter | Sequence[Scalar]]) -> None:
        if isinstance(params, SearchSpace):
            params = dict(params)
        if not isinstance(params, Mapping):
            raise TypeError(f"a search space is a dict of name -> parameter, got {params!r}")
        if not params:
            raise ValueError("the search space is empty: give at least one parameter")
        checked: dict[str, Parameter] = {}
        for name, value in params.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"parameter names must be non-empty strings, got {name!r}")
            if isinstance(value, tuple):
                # other tools read (low, high) as a range; here it would be two choices
                bounds = ", ".join(map(repr, value))
                raise TypeError(
                    f"parameter {name!r} is a tuple {value!r}, which is ambiguous: write "
                    f"Float({bounds}) or Int({bounds}) for a range, or a list [{bounds}] "
                    "for choices"
                )
            if isinstance(value, list):
                value = Categorical(value)
            if not isinstance(value, Parameter):
                raise TypeError(
                    f"parameter {name!r} must be Int, Float, Categorical or a list of "
                    f"choices, got {value!r}"
                )
            checked[name] = value
        self._params = checked

    def __getitem__(self, name: str) -> Parameter:
        return self._params[name]

    def __iter__(self):
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"SearchSpace({self._params!r})"

    @property
    def names(self) -> list[str]:
        """Parameter names in the order given."""
        return list(self._params)

    def to_optuna(self) -> dict[str, BaseDistribution]:
        """Optuna distributions, one per parameter."""
        return {name: p.to_optuna() for name, p in self._params.items()}

    def grid_values(self) -> dict[str, list[Scalar]]:
        """The values of every parameter for a grid scan (raises for continuous ones)."""
        return {name: p.grid_values(name) for name, p in self._params.items()}

    def grid(self) -> list[dict[str, Scalar]]:
        """Every point of the grid, in lexicographic order of the given parameters."""
        values = self.grid_values()
        combos = itertools.product(*values.values())
        return [dict(zip(values, combo, strict=True)) for combo in combos]

    def grid_size(self) -> int:
        """The number of grid points."""
        return math.prod(len(v) for v in self.grid_values().values())

    def finite_size(self) -> int | None:
        """The number of distinct points if the space is finite, else ``None``."""
        try:
            return self.grid_size()
        except ValueError:
            return None

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description (stored with the scan)."""
        return {name: p.describe() for name, p in self._params.items()}
