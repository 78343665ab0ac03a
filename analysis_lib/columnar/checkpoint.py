"""Resuming an interrupted run: coffea's checkpointer, with atomic saves and config keys.

coffea's :class:`~coffea.processor.Runner` asks its checkpointer for each chunk before
processing it and hands it the chunk's output afterwards. :class:`AtomicCheckpointer`
extends coffea's :class:`~coffea.processor.SimpleCheckpointer` in two ways:

* a checkpoint is written to a temporary name and renamed, so an interruption never
  leaves a half-written checkpoint behind (coffea writes in place);
* checkpoints live under the processor's fingerprint (a hash of its settings, the code
  version and the model), so a rerun with other settings does not reuse stale chunks.

The path of a chunk is
``<dir>/<fingerprint>/<dataset>/<file uuid>/<tree>/<start>-<stop>.coffea``. A chunk that
could not be read (a bad file) is not checkpointed, so a rerun tries it again.

Examples
--------
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     cp = AtomicCheckpointer(tmp, fingerprint="abc")
...     meta = {"dataset": "tt", "fileuuid": "u", "treename": "Events",
...             "entrystart": 0, "entrystop": 10}
...     cp.save({"out": {"chunks": [{"bad": None}]}}, meta, None)
...     print(cp.load(meta, None), cp.count())
{'out': {'chunks': [{'bad': None}]}} 1
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import cloudpickle
from coffea.processor import SimpleCheckpointer

from .output import safe_name


class AtomicCheckpointer(SimpleCheckpointer):
    """coffea checkpointer with atomic saves, keyed by the processor's fingerprint.

    Parameters
    ----------
    checkpoint_dir : str
        The directory (any fsspec URL).
    fingerprint : str
        Sub-directory for this configuration (``SemileptonicProcessor.fingerprint()``).
    verbose : bool
        Print what is loaded and saved.
    """

    def __init__(self, checkpoint_dir: str, *, fingerprint: str, verbose: bool = False) -> None:
        super().__init__(str(checkpoint_dir), verbose=verbose, overwrite=True)
        self.fingerprint = fingerprint

    @property
    def root(self) -> str:
        """The directory of this configuration's checkpoints."""
        return str(Path(self.checkpoint_dir) / self.fingerprint)

    def filepath(self, metadata: Any, processor_instance: Any) -> str:
        del processor_instance
        return str(
            Path(self.root)
            / safe_name(metadata["dataset"])
            / str(metadata["fileuuid"] or "no-uuid")
            / safe_name(metadata["treename"])
            / f"{metadata['entrystart']}-{metadata['entrystop']}.coffea"
        )

    def save(self, output: Any, metadata: Any, processor_instance: Any) -> None:
        """Write the chunk's output atomically (skipped for unreadable chunks)."""
        chunks = (output.get("out") or {}).get("chunks", []) if isinstance(output, dict) else []
        if any(c.get("bad") for c in chunks):
            return
        fs = self.fs
        path = self.filepath(metadata, processor_instance)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            fs.mkdirs(str(Path(path).parent), exist_ok=True)
            with fs.open(tmp, "wb", compression="lz4") as fout:
                cloudpickle.dump(output, fout)
            fs.mv(tmp, path)
        except Exception as exc:  # a failed checkpoint must not fail the run
            warnings.warn(f"could not save checkpoint {path}: {exc}", RuntimeWarning, stacklevel=2)
        finally:
            with contextlib.suppress(Exception):
                if fs.exists(tmp):
                    fs.rm(tmp)

    def count(self) -> int:
        """How many chunks of this configuration are checkpointed."""
        if not self.fs.exists(self.root):
            return 0
        return sum(1 for p in self.fs.find(self.root) if p.endswith(".coffea"))

    def clear(self) -> None:
        """Remove this configuration's checkpoints (and the directory if it is then empty)."""
        if self.fs.exists(self.root):
            self.fs.rm(self.root, recursive=True)
        base = Path(self.checkpoint_dir)
        if base.is_dir() and not any(base.iterdir()):
            shutil.rmtree(base, ignore_errors=True)
