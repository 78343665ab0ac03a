"""The task a worker runs for one trial, turning whatever happens into a trial record.

:func:`execute_trial` never lets the objective's own exception escape: it becomes a
``failed`` record with the traceback (so Dask does not retry it), :class:`TrialPruned`
becomes a ``pruned`` record, and a number becomes a ``done`` record. Only infrastructure
problems escape as task errors — the worker died (Dask reschedules the task) or the data
are not on the worker yet (the scan resubmits).

Examples
--------
>>> spec = TrialSpec(number=0, trial_id="t0", params={"x": 2.0}, attempt=1)
>>> out = execute_trial(lambda params, data, trial: (params["x"] ** 2, None), spec)
>>> out["record"]["state"], out["record"]["value"]
('done', 4.0)
>>> def bad(params, data, trial):
...     raise ValueError("boom")
>>> rec = execute_trial(bad, spec)["record"]
>>> rec["state"], rec["error"], "ValueError: boom" in rec["traceback"]
('failed', "ValueError('boom')", True)
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import os
import pickle
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .shipping import get_data
from .trial import TrialContext, TrialPruned

__all__ = ["TrialSpec", "execute_trial", "pickled_model"]


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial except the objective and the data."""

    number: int
    trial_id: str
    params: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    data_token: str | None = None
    channel: str | None = None


def _where() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def execute_trial(
    objective: Callable[[dict[str, Any], Any, TrialContext], tuple[Any, Any]], spec: TrialSpec
) -> dict[str, Any]:
    """Run ``objective`` for ``spec`` and return ``{"record": ..., "model": ...}``.

    ``model`` is the fitted model pickled (:func:`pickled_model`), or None.
    """
    data = get_data(spec.data_token) if spec.data_token is not None else None
    ctx = TrialContext(
        number=spec.number,
        trial_id=spec.trial_id,
        params=spec.params,
        channel=spec.channel,
        attempt=spec.attempt,
    )
    record: dict[str, Any] = {
        "trial_id": spec.trial_id,
        "number": spec.number,
        "params": spec.params,
        "worker": _where(),
        "pid": os.getpid(),
    }
    model = None
    start = time.perf_counter()
    try:
        value, model = objective(dict(spec.params), data, ctx)
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            # None (a forgotten return), "0.5" or True would be taken as numbers otherwise
            raise TypeError(f"the objective returned {value!r}, not a number")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"the objective returned {value!r}, not a finite number")
        record.update(state="done", value=value)
    except TrialPruned:
        last = ctx.intermediate[max(ctx.intermediate)] if ctx.intermediate else None
        record.update(state="pruned", value=last)
        model = None
    except Exception as exc:  # the trial's own failure: recorded, not retried
        record.update(
            state="failed",
            value=None,
            error=repr(exc),
            traceback="".join(traceback.format_exception(exc)),
        )
        model = None
    record["duration_s"] = time.perf_counter() - start
    record["intermediate"] = {str(k): v for k, v in sorted(ctx.intermediate.items())}
    record["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    if model is not None:
        try:
            model = pickled_model(model)
        except Exception as exc:  # the trial is done; only its model cannot be kept
            record["model_error"] = f"the model cannot be pickled: {exc!r}"
            model = None
    return {"record": record, "model": model}


def pickled_model(model: Any) -> bytes:
    """``model`` as the bytes the trial store keeps (pickle; cloudpickle if needed).

    Made on the worker: the client writes the bytes as they come and never loads the
    model (loading and re-pickling every trial's model cost the client's CPU, which the
    workers share on a small machine).

    Examples
    --------
    >>> import pickle
    >>> pickle.loads(pickled_model({"trees": 3}))
    {'trees': 3}
    """
    try:
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle

        return cloudpickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
