"""The trial store: one directory per scan, one JSON file per finished trial.

Layout::

    <store>/scan.json            what the scan is (space, sampler, seed, objective, ...)
    <store>/trials/<id>.json     one record per finished trial (done, failed or pruned)
    <store>/models/<id>.pkl      the fitted model of a trial, when models are kept

Every file is written to a temporary name in the same directory and renamed with
:func:`os.replace`, so a reader never sees half a record, whatever happens to the writer.
Only the scan's client writes; a record is written once per trial id (re-executions of the
same trial after a worker death never add a second record).

Examples
--------
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     store = TrialStore(tmp)
...     store.check_meta({"space": {"x": {"type": "int"}}, "sampler": "random", "seed": 1})
...     store.write_record({"trial_id": "abc", "number": 0, "state": "done", "value": 1.5,
...                         "params": {"x": 3}})
...     print(store.records()["abc"]["value"], store.to_dataframe()["param_x"].tolist())
1.5 [3]
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["StoreMismatchError", "TrialStore", "atomic_write_bytes"]

META = "scan.json"
#: Fields of the scan description that older stores do not have (not compared there).
RECORDED_LATER = ("data", "objective_settings", "objective_code", "sampler_seed")
STATES = ("done", "failed", "pruned")


class StoreMismatchError(ValueError):
    """The store directory holds a different scan than the one being run."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the data reach the disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class TrialStore:
    """Read and write the records of one scan in ``root``.

    Parameters
    ----------
    root : str or Path
        The store directory (created when the first file is written).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"store {str(self.root)!r} exists and is not a directory")

    def __repr__(self) -> str:
        return f"TrialStore({str(self.root)!r})"

    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def meta(self) -> dict[str, Any] | None:
        """The stored scan description, or ``None`` for a new store."""
        path = self.root / META
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def check_meta(self, meta: dict[str, Any]) -> None:
        """Claim a new store for ``meta`` or check that an existing one holds the same scan.

        Raises
        ------
        StoreMismatchError
            Naming the fields that differ, if the store belongs to another scan.
        """
        meta = json.loads(json.dumps(meta))  # what JSON keeps (tuples become lists)
        stored = self.meta()
        if stored is None:
            if self.trials_dir.exists() and any(self.trials_dir.glob("*.json")):
                raise StoreMismatchError(
                    f"store {str(self.root)!r} has trial records but no {META}: not a scan store"
                )
            atomic_write_bytes(self.root / META, json.dumps(meta, indent=2).encode())
            return
        # a store written before a field was recorded cannot be checked on it
        unrecorded = {k for k in RECORDED_LATER if k not in stored}
        diff = sorted(
            k for k in (set(meta) | set(stored)) - unrecorded if meta.get(k) != stored.get(k)
        )
        if diff:
            details = "; ".join(
                f"{k}: stored {stored.get(k)!r}, given {meta.get(k)!r}" for k in diff
            )
            raise StoreMismatchError(
                f"store {str(self.root)!r} belongs to a different scan ({details}); "
                "use another store directory for this scan"
            )

    def record_path(self, tid: str) -> Path:
        return self.trials_dir / f"{tid}.json"

    def model_path(self, tid: str) -> Path:
        return self.models_dir / f"{tid}.pkl"

    def has(self, tid: str) -> bool:
        """Whether trial ``tid`` has a record."""
        return self.record_path(tid).exists()

    def ids(self) -> set[str]:
        """The ids of all recorded trials (one directory listing)."""
        if not self.trials_dir.exists():
            return set()
        return {
            name[: -len(".json")]
            for name in os.listdir(self.trials_dir)
            if name.endswith(".json") and not name.startswith(".")
        }

    def write_record(self, record: dict[str, Any]) -> None:
        """Write one trial's record atomically (replacing an older one for the same id)."""
        if record.get("state") not in STATES:
            raise ValueError(f"record state must be one of {STATES}, got {record.get('state')!r}")
        data = json.dumps(record, indent=1, default=_json_default).encode()
        atomic_write_bytes(self.record_path(record["trial_id"]), data)

    def write_model_bytes(self, tid: str, data: bytes) -> None:
        """Keep a model, pickled on the worker, atomically."""
        atomic_write_bytes(self.model_path(tid), data)

    def load_model(self, tid: str) -> Any:
        """Unpickle the model of trial ``tid``."""
        path = self.model_path(tid)
        if not path.exists():
            raise FileNotFoundError(
                f"no model kept for trial {tid!r} in {str(self.root)!r}: models are kept by "
                "estimator scans with keep_models=True; an objective function returns none"
            )
        with path.open("rb") as f:
            return pickle.load(f)

    def read_record(self, tid: str) -> dict[str, Any] | None:
        """Trial ``tid``'s record; None if it is damaged (then set aside, see
        :meth:`_read`)."""
        return self._read(self.record_path(tid))

    def _read(self, path: Path) -> dict[str, Any] | None:
        """A record file, or None when it is not a whole record (a crash of a machine or a
        network file system can leave one empty): it is renamed ``*.damaged``, with a
        warning naming it, so that the trial counts as not done and a resume runs it."""
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or "trial_id" not in record:
                raise ValueError("not a trial record")
        except ValueError as exc:
            aside = path.with_suffix(".damaged")
            with contextlib.suppress(OSError):
                os.replace(path, aside)
            warnings.warn(
                f"damaged trial record {path} ({exc}); set aside as {aside.name}: a resumed "
                "scan runs that trial again",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        return record

    def records(self) -> dict[str, dict[str, Any]]:
        """All records, keyed by trial id (temporary and damaged files are left out)."""
        if not self.trials_dir.exists():
            return {}
        out = {}
        for path in sorted(self.trials_dir.glob("*.json")):
            record = self._read(path)
            if record is not None:
                out[record["trial_id"]] = record
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """The records as a table, one row per trial, sorted by trial number.

        Columns: ``number``, ``trial_id``, ``state``, ``value``, one ``param_<name>`` per
        parameter, ``duration_s``, ``worker``, ``attempts``, ``error``, ``traceback``,
        ``n_reports``, ``finished_at``.
        """
        return records_to_dataframe(self.records().values())


def records_to_dataframe(records: Any) -> pd.DataFrame:
    """Turn trial records into the table described in :meth:`TrialStore.to_dataframe`."""
    rows = []
    for r in records:
        row = {
            "number": r.get("number"),
            "trial_id": r["trial_id"],
            "state": r["state"],
            "value": r.get("value"),
        }
        row.update({f"param_{k}": v for k, v in (r.get("params") or {}).items()})
        row.update(
            duration_s=r.get("duration_s"),
            worker=r.get("worker"),
            attempts=r.get("attempts"),
            error=r.get("error"),
            traceback=r.get("traceback"),
            n_reports=len(r.get("intermediate") or {}),
            finished_at=r.get("finished_at"),
        )
        rows.append(row)
    columns = ["number", "trial_id", "state", "value"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=columns)
    df["value"] = df["value"].astype(float)
    return df.sort_values("number", kind="stable").reset_index(drop=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {value!r} ({type(value).__name__}) in a trial record")
