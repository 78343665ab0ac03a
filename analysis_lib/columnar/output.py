"""Writing the tables: one parquet file per sample and variation, metadata beside, atomically.

Layout under the output directory::

    <output>/<sample>/<variation>.parquet   the table
    <output>/<sample>/<variation>.json      its metadata (also in the parquet schema, key
                                            ``hepml``)
    <output>/manifest.json                  the run: samples, variations, files, bad files

Every file is written to a temporary name in the same directory (``.<name>.tmp-…``) and
renamed into place (:func:`atomic_path`), so a reader sees either the previous complete file
or the new complete one — never a half-written table, even if the writer is interrupted or
killed. Temporaries an interrupted run leaves behind are removed by the next run
(:func:`remove_temporaries`).

Examples
--------
>>> import tempfile, pyarrow as pa
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = write_table(pa.table({"x": [1.0, 2.0]}), f"{tmp}/s/nominal.parquet",
...                        metadata={"variation": "nominal"})
...     table, meta = read_table(path)
...     print(table.num_rows, meta["variation"], sorted(p.name for p in path.parent.iterdir()))
2 nominal ['nominal.json', 'nominal.parquet']
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"hepml"
_TMP_MARK = ".tmp-"


#: The run's manifest in the output directory (no sample directory may take its name).
MANIFEST = "manifest.json"


def safe_name(name: str) -> str:
    """A sample name usable as a directory name (other characters become ``_``).

    Examples
    --------
    >>> safe_name("ttbar/2018 v1")
    'ttbar_2018_v1'
    """
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    return out or "sample"


def check_sample_dirs(samples: Iterable[str]) -> None:
    """Raise if two samples would write into one directory (:func:`safe_name` of both).

    Examples
    --------
    >>> check_sample_dirs(["ttbar", "zprime"])
    >>> check_sample_dirs(["tt/2018", "tt 2018"])
    Traceback (most recent call last):
    ...
    ValueError: samples 'tt/2018' and 'tt 2018' would both write to the directory tt_2018
    """
    owners: dict[str, str] = {}
    for sample in samples:
        directory = safe_name(sample)
        if directory == MANIFEST:
            raise ValueError(
                f"sample {sample!r} would write to the directory {directory}, the name of "
                "the run's manifest; rename the sample"
            )
        if directory in owners:
            raise ValueError(
                f"samples {owners[directory]!r} and {sample!r} would both write to the "
                f"directory {directory}"
            )
        owners[directory] = sample


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    On any exception (``KeyboardInterrupt`` included) the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_table(
    table: pa.Table,
    path: str | os.PathLike,
    *,
    metadata: dict | None = None,
    compression: str = "zstd",
) -> Path:
    """Write ``table`` to ``path`` (parquet) and ``metadata`` to ``path`` with ``.json``.

    The metadata also goes into the parquet schema under the key ``hepml``. Both files are
    written atomically, the table first.
    """
    path = Path(path)
    if metadata is not None:
        blob = json.dumps(metadata, default=_json_default).encode()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: blob})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression=compression)
    if metadata is not None:
        write_json(path.with_suffix(".json"), metadata)
    return path


def read_table(path: str | os.PathLike) -> tuple[pa.Table, dict]:
    """Read a table written by :func:`write_table` and its metadata."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    return table, (json.loads(raw) if raw else {})


def remove_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete temporaries that interrupted writers left under ``directory``."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for p in directory.rglob(f".*{_TMP_MARK}*"):
            if p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


@functools.cache
def _git_commit() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return commit or None, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return None, None


@functools.cache
def _distribution_version(dist: str) -> str | None:
    # importlib.metadata scans the environment (milliseconds per call); an installed
    # version does not change while the process runs
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def code_version(*, git: bool = True) -> dict:
    """Versions of this code and the libraries that shape the output.

    ``git`` adds the commit of the checkout (and whether it has uncommitted changes) when
    the package runs from a git checkout.
    """

    version = _distribution_version
    out = {
        "hepml_hub": version("hepml-hub"),
        "coffea": version("coffea"),
        "uproot": version("uproot"),
        "awkward": version("awkward"),
        "numpy": version("numpy"),
        "python": platform.python_version(),
    }
    if git:
        out["git_commit"], out["git_dirty"] = _git_commit()
    return out


def utc_now() -> str:
    """The current time, ISO 8601 in UTC."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
