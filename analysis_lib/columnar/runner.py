"""Run the processor over files on any executor and write one table per sample and variation.

:func:`run_columnar` is the whole pipeline, and what ``python -m analysis_lib.columnar``
calls:

1. **Check the inputs** (:func:`~analysis_lib.columnar.samples.prepare_fileset`): every file
   is opened once (on Dask by the workers, all at once); a missing, truncated or non-ROOT
   file raises
   :class:`~analysis_lib.columnar.errors.BadInputError` naming it — or, with
   ``skip_bad_files=True``, is left out and reported at the end. A missing branch raises
   :class:`~analysis_lib.columnar.errors.MissingBranchError` listing what the file has.
2. **Process** with :class:`coffea.processor.Runner` (as
   :class:`~analysis_lib.columnar.direct.DirectRunner`: each chunk's branches are read
   straight from the open tree, without building NanoEvents) on the chosen executor, with
   coffea's progress bar. ``executor="auto"`` uses the Dask ``client`` given, else the
   current default Dask client, else a new local Dask cluster
   (:func:`analysis_lib.compute.local_cluster`, closed afterwards); ``"futures"`` and
   ``"iterative"`` use coffea's process pool and the current process. Dask runs go through
   :class:`ClientExecutor` (each chunk a plain task, so chunks spread over the workers).
   A chunk whose baskets cannot be read (a corrupt file) is reported like a bad file: with
   ``skip_bad_files`` the whole file is left out (and the sample's Σ genWeight corrected),
   without it the run raises after the other chunks are done.
3. **Resume.** With an output directory, every finished chunk is checkpointed (coffea's
   checkpointer, :class:`~analysis_lib.columnar.checkpoint.AtomicCheckpointer`) under
   ``<output>/.checkpoints``; after an interruption the same command picks up the finished
   chunks and processes only the rest. The checkpoints are removed once the tables are
   written (unless ``keep_checkpoints``).
4. **Write** (:mod:`~analysis_lib.columnar.output`): ``<output>/<sample>/<variation>.parquet``
   with its metadata ``.json`` beside, and ``<output>/manifest.json``; each file atomically,
   so an interruption leaves no half-written table. Tables of variations that an earlier
   run into the same directory made and this one does not are removed from the samples'
   directories. The metadata's ``events`` says how many of the files' events were
   processed (fewer with ``maxchunks``: the weights are still those of the whole sample).

Examples
--------
>>> result = run_columnar(["ttbar.root"], output="out/")  # doctest: +SKIP
>>> result.table("ttbar", "jes_up").to_pandas().head()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from coffea import processor as coffea_processor
from coffea.processor.accumulator import accumulate
from coffea.processor.executor import ExecutorBase
from coffea.util import rich_bar

from .checkpoint import AtomicCheckpointer
from .chunking import check_chunksize
from .direct import DirectRunner, close_trees
from .errors import BadInputError, ColumnarError
from .output import (
    MANIFEST,
    check_sample_dirs,
    code_version,
    remove_temporaries,
    safe_name,
    utc_now,
    write_json,
    write_table,
)
from .processor import EventsSchema, SemileptonicProcessor
from .samples import Fileset, PreparedFileset, prepare_fileset
from .systematics import VARIATIONS

EXECUTORS = ("auto", "dask", "futures", "iterative")


@dataclass
class ColumnarResult:
    """What a run produced.

    Attributes
    ----------
    tables : dict
        ``tables[sample][variation]`` is a :class:`pyarrow.Table`.
    paths : dict
        ``paths[sample][variation]`` is the parquet file (empty without an output directory).
    cutflow : dict
        ``cutflow[sample][variation]`` is ``{"labels", "events", "sumw"}``.
    metadata : dict
        ``metadata[sample][variation]``: what was written beside each table.
    bad_files : dict
        File → why it was left out (only with ``skip_bad_files``).
    manifest : pathlib.Path or None
        ``<output>/manifest.json``.
    timing : dict
        Wall time, summed processing and inference time, events, chunks, resumed chunks.
    """

    tables: dict[str, dict[str, pa.Table]] = field(default_factory=dict)
    paths: dict[str, dict[str, Path]] = field(default_factory=dict)
    cutflow: dict[str, dict[str, dict]] = field(default_factory=dict)
    metadata: dict[str, dict[str, dict]] = field(default_factory=dict)
    bad_files: dict[str, str] = field(default_factory=dict)
    manifest: Path | None = None
    timing: dict[str, float] = field(default_factory=dict)

    def table(self, sample: str | None = None, variation: str = "nominal") -> pa.Table:
        """One table; ``sample`` may be omitted when there is only one."""
        if sample is None:
            if len(self.tables) != 1:
                raise ValueError(f"several samples, name one of: {', '.join(self.tables)}")
            sample = next(iter(self.tables))
        try:
            by_variation = self.tables[sample]
        except KeyError:
            raise KeyError(f"no sample {sample!r}; samples: {', '.join(self.tables)}") from None
        try:
            return by_variation[variation]
        except KeyError:
            raise KeyError(
                f"no variation {variation!r}; variations: {', '.join(by_variation)}"
            ) from None

    def to_pandas(self, sample: str | None = None, variation: str = "nominal"):
        """One table as a pandas DataFrame."""
        return self.table(sample, variation).to_pandas()


def make_executor(
    executor: str = "auto",
    *,
    client: Any = None,
    workers: int | None = None,
    progress: bool = True,
) -> tuple[Any, Callable[[], None]]:
    """A coffea executor and a function that releases what it started.

    Examples
    --------
    >>> ex, close = make_executor("iterative")
    >>> type(ex).__name__
    'IterativeExecutor'
    >>> close()
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if executor == "iterative":
        if not progress:
            return QuietIterativeExecutor(status=False), lambda: None
        return coffea_processor.IterativeExecutor(status=progress), lambda: None
    if executor == "futures":
        return (
            coffea_processor.FuturesExecutor(
                workers=workers or os.cpu_count() or 1, status=progress, compression=None
            ),
            lambda: None,
        )
    if client is None and executor in ("auto", "dask"):
        from distributed import default_client

        try:
            client = default_client()
        except ValueError:
            client = None
    if client is not None:
        return _dask_executor(client, progress), lambda: None
    from distributed import Client

    from analysis_lib.compute import local_cluster

    cluster = local_cluster(workers)
    try:
        own_client = Client(cluster)
    except BaseException:
        cluster.close()
        raise

    def close() -> None:
        own_client.close()
        cluster.close()

    return _dask_executor(own_client, progress), close


def _dask_executor(client: Any, progress: bool) -> ClientExecutor:
    return ClientExecutor(client=client, status=progress)


class QuietIterativeExecutor(coffea_processor.IterativeExecutor):
    """coffea's iterative executor without its progress display.

    coffea's draws a rich live display even with ``status=False`` (its refreshes cost
    tens of milliseconds a run); this one only maps and accumulates, in the same order.

    Examples
    --------
    >>> QuietIterativeExecutor()([1, 2, 3], lambda x: {"n": x}, None)
    ({'n': 6}, 0)
    """

    def __call__(self, items, function, accumulator):
        items = list(items)
        if not items:
            return accumulator
        return accumulate(map(function, items), accumulator), 0


@dataclass
class ClientExecutor(ExecutorBase):
    """A coffea executor that runs each work item as a plain task on a Dask client.

    coffea's :class:`~coffea.processor.DaskExecutor` sends the processor to one worker as a
    future every task depends on, and the scheduler then prefers that worker for every
    chunk (seen here: three chunks in a row on one of two idle workers). This executor
    maps the items directly (``client.map``), so any worker takes any chunk, merges the
    outputs on the client as they finish, and draws coffea's progress bar.

    Parameters
    ----------
    client : distributed.Client
        A client of any Dask cluster.
    retries : int
        Times a failing task is retried (default 0: a task whose worker vanished is
        rescheduled by Dask anyway, and unreadable chunks are reported, not raised).
    """

    client: Any = None
    retries: int = 0

    def __getstate__(self) -> dict:
        return dict(self.__dict__, client=None)

    def __call__(self, items, function, accumulator):
        from distributed import as_completed

        items = list(items)
        if not items:
            return accumulator, 0
        futures = self.client.map(function, items, pure=False, retries=self.retries)
        try:
            with rich_bar() as progress:
                task = progress.add_task(self.desc, total=len(items), unit=self.unit)

                def finished():
                    for future in as_completed(futures):
                        yield future.result()
                        progress.update(task, advance=1, refresh=True)

                return accumulate(finished(), accumulator), 0
        finally:
            self.client.cancel([f for f in futures if not f.done()])


@contextlib.contextmanager
def _progress_display(progress: bool):
    """coffea's iterative executor draws its bar even with ``status=False``: mute its console."""
    from coffea.util import coffea_console

    quiet = coffea_console.quiet
    coffea_console.quiet = quiet or not progress
    try:
        yield
    finally:
        coffea_console.quiet = quiet


def _columnar_error(exc: BaseException) -> ColumnarError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ColumnarError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _check_optional_count(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``value`` unless it is None or an integer of at least 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, not {value!r}")


def run_columnar(
    fileset: Fileset,
    processor: SemileptonicProcessor | None = None,
    *,
    output: str | os.PathLike | None = None,
    executor: str = "auto",
    client: Any = None,
    workers: int | None = None,
    chunksize: int = 100_000,
    maxchunks: int | None = None,
    skip_bad_files: bool = False,
    progress: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    keep_checkpoints: bool = False,
) -> ColumnarResult:
    """Select, build features, vary and score; one table per sample and variation.

    Parameters
    ----------
    fileset : path, list of paths, or mapping of sample to path(s)
        NanoAOD files. Without a mapping, the sample is the ``sample`` of the file's metadata
        JSON, or the file's stem.
    processor : SemileptonicProcessor, optional
        The processor (its variations, cuts, model ...); a default one when None.
    output : path, optional
        Directory for the tables (see :mod:`~analysis_lib.columnar.output`); None keeps them
        in memory only.
    executor : {"auto", "dask", "futures", "iterative"}
        Where chunks run (see the module documentation).
    client : distributed.Client, optional
        A Dask client of any cluster.
    workers : int, optional
        Workers of a new local cluster (default: the session's cores, see
        :func:`analysis_lib.compute.local_cluster`) or process pool (default: CPU count).
    chunksize : int
        Events per chunk, at least. Chunks start where the baskets of all the branches the
        run reads start (:mod:`~analysis_lib.columnar.chunking`: a basket cut by a chunk
        boundary would be decompressed twice), so a chunk holds ``chunksize`` events or
        more (except the last of a file): less than twice as many when the baskets are
        smaller than ``chunksize``, less than three times in any case.
    maxchunks : int, optional
        Stop after this many chunks per sample (for a quick look).
    skip_bad_files : bool
        Leave unreadable files out and report them (in the result, the metadata and the
        manifest) instead of raising.
    progress : bool
        Show coffea's progress bar.
    checkpoint_dir : path or URL, optional
        Where chunk checkpoints go (default ``<output>/.checkpoints``; none without output).
        Dask workers must be able to write there.
    keep_checkpoints : bool
        Keep the checkpoints after the tables are written.

    Returns
    -------
    ColumnarResult

    Raises
    ------
    BadInputError
        An unreadable file (without ``skip_bad_files``).
    MissingBranchError
        A needed branch is absent (the message lists the file's branches).
    ColumnarError
        ``output`` cannot be made a directory (the message names it and why).
    """
    started = time.perf_counter()
    chunksize = check_chunksize(chunksize)
    _check_optional_count("maxchunks", maxchunks)
    _check_optional_count("workers", workers)
    processor = processor or SemileptonicProcessor()
    output = Path(output) if output is not None else None
    ex, close = make_executor(executor, client=client, workers=workers, progress=progress)
    try:
        # on Dask the files are inspected by the workers, all at once; with the iterative
        # executor they stay open for the chunks (processed in this thread), so that they
        # are not opened and parsed a second time
        prepared = prepare_fileset(
            fileset,
            btag_branch=processor.btag_branch,
            skip_bad_files=skip_bad_files,
            keep_open=processor.fast_read and executor == "iterative",
            client=getattr(ex, "client", None),
        )
        try:
            if output is not None:
                check_sample_dirs(prepared.samples)
            records, resumed, checkpointer = _process(
                processor, prepared, ex, output, checkpoint_dir, chunksize, maxchunks, progress
            )
        finally:
            close_trees()
    finally:
        close()

    result = _assemble(processor, prepared, records, skip_bad_files=skip_bad_files)
    result.timing.update(
        {
            "resumed_chunks": resumed,
            "n_chunks": len(records),
            "n_events": int(sum(r["n_events"] for r in records)),
            "process_s": float(sum(r["timing"].get("total_s", 0.0) for r in records)),
            "inference_s": float(sum(r["timing"].get("inference_s", 0.0) for r in records)),
        }
    )
    if output is not None:
        _write(result, output)
        if checkpointer is not None and not keep_checkpoints:
            checkpointer.clear()
    result.timing["wall_s"] = time.perf_counter() - started
    return result


def _process(
    processor: SemileptonicProcessor,
    prepared: PreparedFileset,
    ex: Any,
    output: Path | None,
    checkpoint_dir: str | os.PathLike | None,
    chunksize: int,
    maxchunks: int | None,
    progress: bool,
) -> tuple[list[dict], int, AtomicCheckpointer | None]:
    """Run the chunks of ``prepared`` on ``ex``: their records, the chunks resumed."""
    if output is not None:
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ColumnarError(f"{output}: cannot create the output directory ({reason})") from exc
        remove_temporaries(output)
    if checkpoint_dir is None and output is not None:
        checkpoint_dir = output / ".checkpoints"
    checkpointer = None
    if checkpoint_dir is not None:
        checkpointer = AtomicCheckpointer(
            os.fspath(checkpoint_dir), fingerprint=processor.fingerprint()
        )
    fileset_dict = prepared.coffea_fileset()
    if not fileset_dict:
        return [], 0, checkpointer
    runner = DirectRunner(
        executor=ex,
        chunksize=chunksize,
        maxchunks=maxchunks,
        schema=EventsSchema,
        metadata_cache=prepared.metadata_cache(chunksize),
        align_clusters=True,  # at the boundaries chunk_boundaries chose (see .chunking)
        checkpointer=checkpointer,
    )
    try:
        with warnings.catch_warnings(), _progress_display(progress):
            # the NanoAOD schema's notes about branches it derives itself
            warnings.filterwarnings("ignore", message="Missing cross-reference")
            warnings.filterwarnings("ignore", message="Branch .* already exists")
            out = runner(
                fileset_dict, _copy_with(processor, record_bad_input=True), treename="Events"
            )
    except Exception as exc:
        inner = _columnar_error(exc)
        if inner is not None:
            raise inner from exc
        raise
    records = list(out.get("chunks", []))
    resumed = sum(1 for record in records if record.pop("resumed", False))
    return records, resumed, checkpointer


def _copy_with(processor: SemileptonicProcessor, **changes) -> SemileptonicProcessor:
    import copy

    proc = copy.copy(processor)
    for key, value in changes.items():
        setattr(proc, key, value)
    return proc


def _assemble(
    processor: SemileptonicProcessor,
    prepared: PreparedFileset,
    records: list[dict],
    *,
    skip_bad_files: bool,
) -> ColumnarResult:
    bad_runtime: dict[str, tuple[str, str]] = {}
    for r in records:
        if r["bad"] and r["filename"] not in bad_runtime:
            bad_runtime[r["filename"]] = (r["dataset"], r["bad"])
    if bad_runtime and not skip_bad_files:
        first, (_, reason) = next(iter(bad_runtime.items()))
        others = [f for f in bad_runtime if f != first]
        suffix = f" (also unreadable: {', '.join(others)})" if others else ""
        raise BadInputError(first, reason + suffix)
    result = ColumnarResult(
        bad_files={**prepared.bad_files, **{p: m for p, (_, m) in bad_runtime.items()}}
    )
    versions = code_version()
    config = processor.config()
    variations = [v.name for v in processor.variations]
    kinds = {v.name: v.kind for v in processor.variations}
    for name, sample in prepared.samples.items():
        # the chunks were normalized with the Σ genWeight of the files checked beforehand;
        # if some turned out unreadable while processing, use the Σ of those that remain
        sumw_checked = sample.gen_event_sumw
        for path, (dataset, message) in bad_runtime.items():
            if dataset == name:
                sample.bad[path] = message
        sample.files = [f for f in sample.files if f.path not in sample.bad]
        scale = 1.0
        if sumw_checked and sample.gen_event_sumw:
            scale = sumw_checked / sample.gen_event_sumw
        order = {f.path: i for i, f in enumerate(sample.files)}
        recs = sorted(
            (r for r in records if r["dataset"] == name and r["filename"] in order),
            key=lambda r: (order[r["filename"]], r["entrystart"]),
        )
        info = sample.describe(processor.lumi_pb)
        in_files = int(sum(f.n_entries for f in sample.files))
        processed = int(sum(r["n_events"] for r in recs))
        info["events"] = {
            "in_files": in_files,
            "processed": processed,
            # False after maxchunks: the weights are still the whole sample's
            "complete": processed == in_files,
        }
        result.tables[name], result.cutflow[name], result.metadata[name] = {}, {}, {}
        if not recs:
            continue
        nominal = _chunked([r["tables"]["nominal"] for r in recs])
        for variation in variations:
            if kinds[variation] == "weight":
                columns = dict(nominal)
                columns["weight"] = pa.chunked_array([r["weights"][variation] for r in recs])
            elif variation == "nominal":
                columns = nominal
            else:
                columns = _chunked([r["tables"][variation] for r in recs])
            if scale != 1.0:
                columns = {
                    **columns,
                    "weight": pa.chunked_array(
                        [np.asarray(c) * scale for c in columns["weight"].chunks],
                        type=columns["weight"].type,
                    ),
                }
            table = pa.table(columns)
            cutflow = _sum_cutflows([r["cutflow"][variation] for r in recs], scale)
            result.tables[name][variation] = table
            result.cutflow[name][variation] = cutflow
            result.metadata[name][variation] = {
                **info,
                "variation": variation,
                "variation_kind": kinds[variation],
                "n_rows": table.num_rows,
                "sum_weights": float(
                    sum(np.sum(np.asarray(c), dtype=np.float64) for c in columns["weight"].chunks)
                ),
                "columns": table.column_names,
                "cutflow": cutflow,
                "bad_files": dict(sample.bad),
                "processor": config,
                "code_version": versions,
                "created": utc_now(),
            }
    return result


def _chunked(tables: list[dict[str, np.ndarray]]) -> dict[str, pa.ChunkedArray]:
    """The chunks' columns as Arrow chunked arrays: the numpy buffers are shared, not copied."""
    return {c: pa.chunked_array([t[c] for t in tables]) for c in tables[0]}


def _sum_cutflows(cutflows: list[dict], scale: float) -> dict:
    first = cutflows[0]
    return {
        "labels": list(first["labels"]),
        "events": [int(sum(c["events"][i] for c in cutflows)) for i in range(len(first["labels"]))],
        "sumw": [
            float(sum(c["sumw"][i] for c in cutflows) * scale) for i in range(len(first["labels"]))
        ],
    }


def _write(result: ColumnarResult, output: Path) -> None:
    manifest: dict[str, Any] = {"created": utc_now(), "samples": {}, "bad_files": result.bad_files}
    for sample, tables in result.tables.items():
        directory = output / safe_name(sample)
        _remove_stale_tables(directory, keep=set(tables))
        result.paths[sample] = {}
        entry: dict[str, Any] = {"directory": directory.name, "tables": {}}
        for variation, table in tables.items():
            path = write_table(
                table,
                directory / f"{variation}.parquet",
                metadata=result.metadata[sample][variation],
            )
            result.paths[sample][variation] = path
            entry["tables"][variation] = {
                "path": str(path.relative_to(output)),
                "n_rows": table.num_rows,
                "cutflow": result.cutflow[sample][variation],
            }
        if tables:
            first = next(iter(result.metadata[sample].values()))
            entry.update(
                {
                    k: first[k]
                    for k in ("process", "cross_section_pb", "lumi_pb", "normalization", "events")
                }
            )
            entry["files"] = [f["path"] for f in first["files"]]
            manifest["processor"] = first["processor"]
            manifest["code_version"] = first["code_version"]
        manifest["samples"][sample] = entry
    result.manifest = write_json(output / MANIFEST, manifest)


def _remove_stale_tables(directory: Path, keep: set[str]) -> None:
    """Remove the tables of variations this run does not make from a sample's directory.

    A rerun into the same ``DIR`` with fewer variations (or other settings) would otherwise
    leave an older run's tables beside the new ones, and ``DIR/<sample>/*.parquet`` would
    mix two configurations. Only files named after a known variation are touched.
    """
    if not directory.is_dir():
        return
    for path in directory.glob("*.parquet"):
        if path.stem in VARIATIONS and path.stem not in keep:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
