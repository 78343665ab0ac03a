"""From input files to a coffea fileset: samples, their normalization, and bad-file checks.

Each file is opened once before processing (:func:`inspect_file`): it must be a complete
ROOT file (its size matches the header) with an ``Events`` tree holding the needed branches.
The ``Runs`` tree gives Σ genWeight (``genEventSumw``, or ``genEventSumw_`` in older NanoAOD)
and the metadata JSON beside our generated files (``<file>.json``) gives the sample name and
cross-section. Files are grouped into samples by that name, else by the file's stem.

The event weight is ``cross_section_pb x lumi_pb x genWeight / Σ genWeight`` (Σ over the
sample's readable files) times the scale factors. Without a cross-section (real NanoAOD
has no JSON) or without ``Runs``, the normalization is 1 and the weight is ``genWeight``
times the scale factors; in collision data (no ``genWeight``) it is 1.

Examples
--------
>>> group_files({"tt": "a.root"})
{'tt': ['a.root']}
>>> group_files(["x/ttbar_1.root", "x/ttbar_2.root"])  # no JSON beside them: the stems
{'ttbar_1': ['x/ttbar_1.root'], 'ttbar_2': ['x/ttbar_2.root']}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from .chunking import chunk_boundaries, shared_boundaries
from .direct import close_trees, keep_tree
from .errors import BadInputError, MissingBranchError
from .inputs import DEFAULT_BTAG_BRANCH, check_branches, required_branches

TREE = "Events"
Fileset = str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, Any]


@dataclass
class InputFile:
    """What :func:`inspect_file` learnt about one file."""

    path: str
    sample: str
    n_entries: int
    uuid: bytes
    simulation: bool
    gen_event_sumw: float | None = None
    gen_event_count: int | None = None
    info: dict | None = None
    #: Entries where the baskets of all the branches the pipeline reads begin or end
    #: (:func:`~analysis_lib.columnar.chunking.shared_boundaries`); empty: only 0 and the end.
    boundaries: list[int] = field(default_factory=list)

    def describe(self) -> dict:
        """JSON-able summary (for the metadata)."""
        return {
            "path": self.path,
            "n_entries": self.n_entries,
            "uuid": self.uuid.hex(),
            "simulation": self.simulation,
            "gen_event_sumw": self.gen_event_sumw,
            "gen_event_count": self.gen_event_count,
            "info": self.info,
        }


@dataclass
class Sample:
    """A sample: its readable files and normalization inputs."""

    name: str
    files: list[InputFile] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)

    @property
    def info(self) -> dict:
        """The metadata JSON of the first file that has one ({} when none has)."""
        return next((f.info for f in self.files if f.info), {})

    @property
    def cross_section_pb(self) -> float | None:
        """The cross-section of the files' JSON (None without one; see :meth:`check`)."""
        values = {_cross_section(f) for f in self.files}
        if len(values) != 1:
            return None
        (value,) = values
        return value

    def check(self) -> None:
        """Every file gives the same cross-section, or none does.

        A sample is normalized with one cross-section over the Σ genWeight of all its
        files; files of different processes or bins (different cross-sections) need
        samples of their own.

        Raises
        ------
        ValueError
            Naming the files and their cross-sections.
        """
        values = {_cross_section(f) for f in self.files}
        if len(values) <= 1:
            return
        listed = ", ".join(
            f"{f.path}: {'none' if _cross_section(f) is None else f'{_cross_section(f)!r} pb'}"
            for f in self.files
        )
        raise ValueError(
            f"the files of sample {self.name!r} do not share one cross-section ({listed}); "
            "a sample is normalized with one cross-section over all its files, so give "
            "files of other processes or bins samples of their own"
        )

    @property
    def gen_event_sumw(self) -> float | None:
        """Σ genWeight over the files, if every file has a ``Runs`` tree."""
        sums = [f.gen_event_sumw for f in self.files]
        if not sums or any(s is None for s in sums):
            return None
        return float(sum(sums))

    def coffea_metadata(self) -> dict:
        """What the processor needs, for the fileset's ``metadata``."""
        return {"cross_section_pb": self.cross_section_pb, "gen_event_sumw": self.gen_event_sumw}

    def describe(self, lumi_pb: float) -> dict:
        """Sample metadata for the output (generator settings from the JSON)."""
        info = self.info
        xsec, sumw = self.cross_section_pb, self.gen_event_sumw
        normalized = xsec is not None and bool(sumw)
        return {
            "sample": self.name,
            "process": info.get("process"),
            "mass": info.get("mass"),
            "cross_section_pb": xsec,
            "lumi_pb": lumi_pb,
            "gen_event_sumw": sumw,
            "normalization": xsec * lumi_pb / sumw if normalized else 1.0,
            "weight_definition": (
                "cross_section_pb * lumi_pb * genWeight / gen_event_sumw * btag_sf * lepton_sf"
                if normalized
                else "genWeight * btag_sf * lepton_sf (no cross-section or Runs tree: "
                "not normalized to luminosity); 1 for collision data"
            ),
            "generator": {
                "seeds": [f.info.get("seed") for f in self.files if f.info],
                "n_events": [f.info.get("n_events") for f in self.files if f.info],
                "settings": info.get("settings"),
            },
            "files": [f.describe() for f in self.files],
        }


@dataclass
class PreparedFileset:
    """The samples, the coffea fileset, and the files that could not be read."""

    samples: dict[str, Sample]
    bad_files: dict[str, str]

    def coffea_fileset(self) -> dict:
        """``{sample: {"treename", "files", "metadata"}}`` for :class:`coffea.processor.Runner`."""
        return {
            name: {
                "treename": TREE,
                "files": [f.path for f in sample.files],
                "metadata": sample.coffea_metadata(),
            }
            for name, sample in self.samples.items()
            if sample.files
        }

    def metadata_cache(self, chunksize: int | None = None) -> dict:
        """Pre-filled coffea metadata cache, so the Runner does not open each file again.

        With ``chunksize``, each file's ``clusters`` are its chunk boundaries
        (:func:`~analysis_lib.columnar.chunking.chunk_boundaries`), which a Runner with
        ``align_clusters=True`` cuts the file at.
        """
        from coffea.processor.executor import FileMeta

        cache = {}
        for name, sample in self.samples.items():
            user = sample.coffea_metadata()
            for f in sample.files:
                meta = {**user, "numentries": f.n_entries, "uuid": f.uuid}
                if chunksize is not None:
                    meta["clusters"] = chunk_boundaries(f.boundaries, f.n_entries, chunksize)
                cache[FileMeta(name, f.path, TREE)] = meta
        return cache


def _cross_section(f: InputFile) -> float | None:
    value = f.info.get("cross_section_pb") if f.info else None
    return None if value is None else float(value)


def read_info(path: str | os.PathLike) -> dict | None:
    """The metadata JSON beside a file (``<file>.json``), or None."""
    meta = Path(f"{os.fspath(path)}.json")
    if not meta.is_file():
        return None
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise BadInputError(str(meta), f"unreadable metadata JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise BadInputError(
            str(meta), f"the metadata JSON must be an object ({{...}}), not a {type(info).__name__}"
        )
    xsec = info.get("cross_section_pb")
    if xsec is not None and not _positive_number(xsec):
        raise BadInputError(
            str(meta), f"cross_section_pb must be a positive number (in pb), got {xsec!r}"
        )
    return info


def _positive_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def group_files(fileset: Fileset) -> dict[str, list[str]]:
    """``{sample: [file, ...]}`` from a path, a list of paths or a mapping.

    A mapping's keys are the samples (its values a path or a list of paths). Otherwise a
    file's sample is the ``sample`` of its metadata JSON, or its stem.

    Raises
    ------
    ValueError
        An empty sample name, or a file given twice for one sample (its events would be
        counted twice).

    Examples
    --------
    >>> group_files({"tt": ["a.root", "b.root"], "dy": "c.root"})
    {'tt': ['a.root', 'b.root'], 'dy': ['c.root']}
    >>> group_files({"tt": ["a.root", "./a.root"]})
    Traceback (most recent call last):
    ...
    ValueError: sample 'tt': ./a.root is the same file as a.root; its events would count twice
    """
    if isinstance(fileset, (str, os.PathLike)):
        fileset = [fileset]
    out: dict[str, list[str]] = {}
    if isinstance(fileset, Mapping):
        for sample, files in fileset.items():
            if isinstance(files, Mapping):  # coffea style {"files": [...], ...}
                files = files["files"]
            if isinstance(files, (str, os.PathLike)):
                files = [files]
            out[str(sample)] = [os.fspath(f) for f in files]
    else:
        for f in fileset:
            path = os.fspath(f)
            info = None
            try:
                info = read_info(path)
            except BadInputError:
                info = None
            name = (info or {}).get("sample") or Path(path).stem
            out.setdefault(str(name), []).append(path)
    for sample, paths in out.items():
        if not sample.strip():
            raise ValueError(f"empty sample name {sample!r} for {', '.join(paths)}")
        seen: dict[str, str] = {}
        for path in paths:
            key = os.path.realpath(path) if "://" not in path else path
            if key in seen:
                raise ValueError(
                    f"sample {sample!r}: {path} is the same file as {seen[key]}; "
                    "its events would count twice"
                )
            seen[key] = path
    return out


def _runs_sums(file) -> tuple[float | None, int | None]:
    try:
        runs = file["Runs"]
    except (KeyError, uproot.KeyInFileError):
        return None, None
    keys = set(runs.keys())
    sumw_key = next((k for k in ("genEventSumw", "genEventSumw_") if k in keys), None)
    count_key = next((k for k in ("genEventCount", "genEventCount_") if k in keys), None)
    sumw = float(np.sum(runs[sumw_key].array(library="np"))) if sumw_key else None
    count = int(np.sum(runs[count_key].array(library="np"))) if count_key else None
    return sumw, count


def inspect_file(
    path: str | os.PathLike,
    *,
    sample: str | None = None,
    btag_branch: str = DEFAULT_BTAG_BRANCH,
    keep_open: bool = False,
) -> InputFile:
    """Open a file, check it and read its bookkeeping.

    With ``keep_open`` the open file and its parsed ``Events`` tree stay in this thread's
    cache of :func:`~analysis_lib.columnar.direct.open_tree`, so processing the file in
    this thread does not open and parse it again (close them with
    :func:`~analysis_lib.columnar.direct.close_trees`). Like the files ``open_tree``
    opens, it keeps no array cache: the chunks are read once.

    Raises
    ------
    BadInputError
        The file is missing, not ROOT, truncated, or has no ``Events`` tree.
    MissingBranchError
        A needed branch is absent.
    """
    path = os.fspath(path)
    info = read_info(path)
    try:
        file = uproot.open(path, array_cache=None)
    except FileNotFoundError as exc:
        raise BadInputError(path, "no such file") from exc
    except Exception as exc:
        raise BadInputError(
            path, f"not a readable ROOT file ({type(exc).__name__}: {exc})"
        ) from exc
    kept = False
    try:
        size = getattr(file.file.source, "num_bytes", None)
        if size is not None and file.file.fEND > size:
            raise BadInputError(
                path,
                f"truncated ROOT file: its header says {file.file.fEND} bytes, the file has {size}",
            )
        try:
            tree = file[TREE]
        except Exception as exc:
            keys = ", ".join(sorted({k.split(";")[0] for k in file.keys(recursive=False)}))
            raise BadInputError(
                path, f"no {TREE!r} tree (the file has: {keys or 'nothing'})"
            ) from exc
        try:
            branches = tree.keys()
            n_entries = tree.num_entries
            sumw, count = _runs_sums(file)
        except Exception as exc:
            raise BadInputError(
                path, f"cannot read the file's trees ({type(exc).__name__}: {exc})"
            ) from exc
        simulation = check_branches(path, branches, btag_branch)
        present = set(branches)
        read = [b for b in required_branches(btag_branch, simulation=simulation) if b in present]
        try:
            boundaries = shared_boundaries(tree, read)
        except Exception as exc:
            raise BadInputError(
                path, f"cannot read the baskets' entry ranges ({type(exc).__name__}: {exc})"
            ) from exc
        uuid = bytes(file.file.fUUID)
        if keep_open:
            keep_tree(path, TREE, file, tree)
            kept = True
    finally:
        if not kept:
            file.close()
    return InputFile(
        path=path,
        sample=sample or (info or {}).get("sample") or Path(path).stem,
        n_entries=int(n_entries),
        uuid=uuid,
        simulation=simulation,
        gen_event_sumw=sumw,
        gen_event_count=count,
        info=info,
        boundaries=boundaries,
    )


def prepare_fileset(
    fileset: Fileset,
    *,
    btag_branch: str = DEFAULT_BTAG_BRANCH,
    skip_bad_files: bool = False,
    keep_open: bool = False,
    client: Any = None,
) -> PreparedFileset:
    """Inspect every file and group them into samples.

    Parameters
    ----------
    fileset : path, list of paths or mapping
        See :func:`group_files`.
    btag_branch : str
        Checked to exist in every file.
    skip_bad_files : bool
        Record unreadable files in ``bad_files`` instead of raising. Missing branches are
        always an error (a configuration problem, not a bad file).
    keep_open : bool
        Keep the files open for processing in this thread (see :func:`inspect_file`).
    client : distributed.Client, optional
        Inspect the files on this Dask client's workers, all at once, instead of one after
        the other here: opening a file parses its ``Events`` tree, ~0.3 s for a real
        NanoAOD file with its ~1500 branches. (``keep_open`` does not apply then.)

    Raises
    ------
    BadInputError
        An unreadable file, unless ``skip_bad_files``.
    MissingBranchError
        A needed branch is absent from a file.
    ValueError
        The files of a sample give different cross-sections (:meth:`Sample.check`).
    """
    groups = group_files(fileset)
    if not any(groups.values()):
        raise ValueError("no input files")
    samples: dict[str, Sample] = {}
    bad: dict[str, str] = {}
    jobs = [(name, path) for name, paths in groups.items() for path in paths]
    if client is not None:
        futures = client.map(
            _inspect_or_error,
            [path for _, path in jobs],
            [name for name, _ in jobs],
            btag_branch=btag_branch,
            pure=False,
        )
        outcomes = iter(client.gather(futures))
    else:
        outcomes = (
            _inspect_or_error(path, name, btag_branch=btag_branch, keep_open=keep_open)
            for name, path in jobs
        )
    try:
        for (name, path), outcome in zip(jobs, outcomes, strict=True):
            sample = samples.setdefault(name, Sample(name))
            if isinstance(outcome, InputFile):
                sample.files.append(outcome)
            elif isinstance(outcome, MissingBranchError) or not skip_bad_files:
                raise outcome
            else:
                # keyed by the file: the reason alone, without the file name again
                bad[path] = sample.bad[path] = getattr(outcome, "reason", str(outcome))
        for sample in samples.values():
            sample.check()
    except BaseException:
        if keep_open:
            close_trees()
        raise
    return PreparedFileset(samples=samples, bad_files=bad)


def _inspect_or_error(
    path: str, sample: str, *, btag_branch: str, keep_open: bool = False
) -> InputFile | BadInputError | MissingBranchError:
    """:func:`inspect_file` with its input errors returned, not raised (so a map goes on)."""
    try:
        return inspect_file(path, sample=sample, btag_branch=btag_branch, keep_open=keep_open)
    except (BadInputError, MissingBranchError) as exc:
        return exc
