"""One trial as the objective sees it: its parameters, and a reporter for pruning.

A trial is identified by a deterministic id computed from its parameters, so the same point
always maps to the same record in the trial store (this is what makes re-running a scan
recompute nothing that has finished).

The objective of a scan may take a ``trial`` argument, a :class:`TrialContext`. On a remote
worker, ``trial.report(value, step)`` sends the intermediate value to the scan's client,
where the Optuna pruner runs, and ``trial.should_prune()`` waits for its decision. Raise
:class:`TrialPruned` to stop the trial.

Examples
--------
>>> trial_id({"depth": 3, "eta": 0.1}) == trial_id({"eta": 0.1, "depth": 3})
True
>>> ctx = TrialContext(number=0, trial_id="t0", params={"x": 1.0})
>>> ctx.report(0.5, step=0)
>>> ctx.should_prune(), ctx.intermediate
(False, {0: 0.5})
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from optuna import TrialPruned

__all__ = ["TrialContext", "TrialPruned", "canonical_params", "trial_id"]

#: How long ``should_prune`` waits for the client's decision before carrying on.
DECISION_TIMEOUT_S = 60.0


def canonical_params(params: Mapping[str, Any]) -> str:
    """The parameters as canonical JSON (sorted keys, plain Python scalars)."""
    return json.dumps({k: _plain(v) for k, v in params.items()}, sort_keys=True)


def trial_id(params: Mapping[str, Any]) -> str:
    """A short deterministic id of a point of the search space (16 hex digits)."""
    return hashlib.sha256(canonical_params(params).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """numpy scalars to Python scalars (Optuna may hand out either)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


class TrialContext:
    """What the objective gets as ``trial``: parameters, reports and pruning decisions.

    Parameters
    ----------
    number : int
        The trial's number in the scan (0, 1, ...).
    trial_id : str
        Its deterministic id (:func:`trial_id`).
    params : dict
        The proposed parameters.
    channel : str, optional
        The scan's event topic on the Dask scheduler; ``None`` when the scan has no pruner
        (reports are then only recorded).
    attempt : int
        Which submission of this trial this is (1 for the first).
    """

    def __init__(
        self,
        *,
        number: int,
        trial_id: str,
        params: dict[str, Any],
        channel: str | None = None,
        attempt: int = 1,
    ) -> None:
        self.number = number
        self.trial_id = trial_id
        self.params = dict(params)
        self.channel = channel
        self.attempt = attempt
        self.intermediate: dict[int, float] = {}
        self._last_step: int | None = None

    def report(self, value: float, step: int) -> None:
        """Report an intermediate objective value at ``step`` (e.g. boosting round)."""
        value = float(value)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        self.intermediate[step] = value
        self._last_step = step
        if self.channel is not None:
            from distributed import get_worker

            # an event on the scan's topic: the scheduler forwards it to the scan's client
            message = ["report", self.trial_id, self.attempt, step, value]
            get_worker().log_event(self.channel, message)

    def should_prune(self) -> bool:
        """Whether the scan's pruner wants this trial stopped after the last report.

        Without a pruner, or before any report, this is ``False``. The question goes to the
        scan's client as an event; the answer arrives in its own Dask ``Variable``, which
        this waits for (no polling) and deletes. If the client does not answer within a
        minute (e.g. it was interrupted), the trial carries on.
        """
        if self.channel is None or self._last_step is None:
            return False
        from distributed import Variable, get_worker

        step = self._last_step
        get_worker().log_event(self.channel, ["ask", self.trial_id, self.attempt, step])
        var = Variable(decision_name(self.channel, self.trial_id, self.attempt, step))
        try:
            decision = var.get(timeout=DECISION_TIMEOUT_S)
        except TimeoutError:
            return False
        # the client deletes what is left when the trial ends
        with contextlib.suppress(Exception):
            var.delete()
        return bool(decision.get("prune")) if isinstance(decision, dict) else False


def decision_name(channel: str, tid: str, attempt: int, step: int) -> str:
    """Name of the Dask ``Variable`` that carries the pruning decision for one report."""
    return f"{channel}-decision-{tid}-{attempt}-{step}"
