"""Optuna samplers and pruners by name, seeded, for the scan's proposing process.

All proposals of a scan come from one Optuna study in the client process (ask/tell), so a
seed fixes the sequence of proposals; samplers are never copied into parallel workers.

Examples
--------
>>> from analysis_lib.scan.space import SearchSpace, Int
>>> type(make_sampler("grid", SearchSpace({"n": Int(1, 3)}), seed=0)).__name__
'ScanGridSampler'
>>> make_sampler("annealing", SearchSpace({"n": Int(1, 3)}), seed=0)
Traceback (most recent call last):
...
ValueError: unknown sampler 'annealing'; choose one of 'grid', 'random', 'tpe'
>>> type(make_pruner("median")).__name__
'MedianPruner'
"""

from __future__ import annotations

from typing import Any

import optuna

from .space import SearchSpace

__all__ = ["PRUNERS", "SAMPLERS", "ScanGridSampler", "make_pruner", "make_sampler"]

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("median", "successive_halving")


class ScanGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for ask/tell use.

    Optuna's ``GridSampler.after_trial`` calls ``study.stop()`` once the grid is used up,
    which raises outside ``study.optimize``; the scan stops at the grid size itself.
    """

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


def make_sampler(name: str, space: SearchSpace, *, seed: int | None) -> optuna.samplers.BaseSampler:
    """A seeded Optuna sampler: ``"tpe"``, ``"random"`` or ``"grid"`` over ``space``.

    Raises
    ------
    ValueError
        For an unknown name, or a grid over a continuous parameter.
    """
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return ScanGridSampler(space.grid_values(), seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(map(repr, SAMPLERS))}")


def make_pruner(pruner: Any) -> optuna.pruners.BasePruner:
    """An Optuna pruner: ``None`` (never prune), ``"median"``, ``"successive_halving"``.

    An Optuna pruner instance is passed through.
    """
    if pruner is None:
        return optuna.pruners.NopPruner()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    raise ValueError(
        f"unknown pruner {pruner!r}; choose None, an optuna pruner or one of "
        f"{', '.join(map(repr, PRUNERS))}"
    )
