"""The outcome of a scan, read from its trial store.

Examples
--------
>>> import tempfile
>>> from analysis_lib.scan.store import TrialStore
>>> with tempfile.TemporaryDirectory() as tmp:
...     store = TrialStore(tmp)
...     store.check_meta({"direction": "maximize"})
...     for n, v in enumerate([0.2, 0.7, 0.5]):
...         store.write_record({"trial_id": f"t{n}", "number": n, "state": "done",
...                             "value": v, "params": {"x": n}})
...     result = load_scan(tmp)
...     print(result.best_params, result.best_value, len(result.to_dataframe()))
{'x': 1} 0.7 3
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from .store import TrialStore

__all__ = ["ScanResult", "load_scan"]


class ScanResult:
    """The trials of a scan, as records and as a table, with the best trial.

    Parameters
    ----------
    store : TrialStore
        The scan's store.
    direction : str, optional
        ``"minimize"`` or ``"maximize"``; default: the one stored with the scan.
    executed : int
        How many trials this run of the scan executed (not counting resumed ones).
    """

    def __init__(self, store: TrialStore, *, direction: str | None = None, executed: int = 0):
        self.store = store
        meta = store.meta() or {}
        self.direction = direction or meta.get("direction", "minimize")
        self.executed = executed
        self._records = store.records()

    def __repr__(self) -> str:
        counts = self.counts()
        return f"<ScanResult {self.store.root}: {counts}>"

    @property
    def records(self) -> list[dict[str, Any]]:
        """All trial records, by trial number."""
        return sorted(self._records.values(), key=lambda r: r.get("number", 0))

    def counts(self) -> dict[str, int]:
        """Number of trials per state."""
        out = {"done": 0, "failed": 0, "pruned": 0}
        for r in self._records.values():
            out[r["state"]] = out.get(r["state"], 0) + 1
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """One row per trial (see :meth:`TrialStore.to_dataframe`)."""
        return self.store.to_dataframe()

    @property
    def best_trial(self) -> dict[str, Any]:
        """The record of the best ``done`` trial."""
        done = [r for r in self.records if r["state"] == "done"]
        if not done:
            raise ValueError(f"no trial of the scan in {str(self.store.root)!r} is done")
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda r: r["value"])

    @property
    def best_params(self) -> dict[str, Any]:
        """Parameters of the best trial."""
        return dict(self.best_trial["params"])

    @property
    def best_value(self) -> float:
        """Metric of the best trial."""
        return float(self.best_trial["value"])

    def best_model(self) -> Any:
        """The fitted model of the best trial, from the store.

        Raises
        ------
        FileNotFoundError
            If the scan did not keep models (``keep_models=False`` or an objective function
            that returns no model).
        """
        return self.store.load_model(self.best_trial["trial_id"])


def load_scan(store: str | os.PathLike[str]) -> ScanResult:
    """Open the result of a scan from its store directory (while it runs or after)."""
    trial_store = TrialStore(store)
    if trial_store.meta() is None:
        raise FileNotFoundError(f"{str(store)!r} is not a scan store (no scan.json)")
    return ScanResult(trial_store)
