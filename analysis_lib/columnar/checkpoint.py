"""Resuming an interrupted run: coffea's checkpointer, with atomic saves and config keys.

coffea's :class:`~coffea.processor.Runner` asks its checkpointer for each chunk before
processing it and hands it the chunk's output afterwards. :class:`AtomicCheckpointer`
extends coffea's :class:`~coffea.processor.SimpleCheckpointer` in two ways:

* a checkpoint is written to a temporary name and renamed, so an interruption never
  leaves a half-written checkpoint behind (coffea writes in place);
* checkpoints live under the processor's fingerprint (a hash of its settings, the code
  and the model), and each chunk's name carries a hash of the sample's metadata that the
  chunk's weights come from (cross-section, Σ genWeight of all the sample's files), so a
  rerun with other settings, another cross-section or more files in the sample does not
  reuse stale chunks.

The path of a chunk is
``<dir>/<fingerprint>/<dataset>/<file uuid>/<tree>/<start>-<stop>-<metadata hash>.coffea``.
A chunk that could not be read (a bad file) is not checkpointed, so a rerun tries it again.

Examples
--------
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     cp = AtomicCheckpointer(tmp, fingerprint="abc")
...     meta = {"dataset": "tt", "fileuuid": "u", "treename": "Events",
...             "entrystart": 0, "entrystop": 10}
...     cp.save({"out": {"chunks": [{"bad": None}]}}, meta, None)
...     print(cp.load(meta, None), cp.count())
{'out': {'chunks': [{'bad': None, 'resumed': True}]}} 1
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cloudpickle
from coffea.processor import SimpleCheckpointer

from .output import safe_name

#: The keys of a chunk's metadata that say where the chunk is; the others (the sample's
#: metadata: cross-section, Σ genWeight, ...) go into :func:`sample_tag`.
POSITION_KEYS = frozenset(
    {"dataset", "filename", "treename", "entrystart", "entrystop", "fileuuid"}
)


def sample_tag(metadata: Mapping[str, Any]) -> str:
    """A short hash of a chunk's metadata other than its position (:data:`POSITION_KEYS`).

    Examples
    --------
    >>> where = {"dataset": "tt", "entrystart": 0, "entrystop": 10}
    >>> sample_tag({**where, "cross_section_pb": 1.5}) == sample_tag({"cross_section_pb": 1.5})
    True
    >>> sample_tag({"cross_section_pb": 1.5}) == sample_tag({"cross_section_pb": 3.0})
    False
    """
    rest = {str(k): v for k, v in metadata.items() if k not in POSITION_KEYS}
    blob = json.dumps(rest, sort_keys=True, default=repr).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


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
            / f"{metadata['entrystart']}-{metadata['entrystop']}-{sample_tag(metadata)}.coffea"
        )

    def load(self, metadata: Any, processor_instance: Any) -> Any:
        """The chunk's kept output, its records marked ``"resumed": True``; or None."""
        output = super().load(metadata, processor_instance)
        if isinstance(output, dict):
            for chunk in (output.get("out") or {}).get("chunks", []):
                chunk["resumed"] = True
        return output

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
