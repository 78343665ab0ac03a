"""Columnar pipeline throughput against its baselines, on the same machine, in one run.

The benchmark writes a synthetic NanoAOD-like file (``tests/columnar_samples.py``, default
300 000 events, uproot's default compression) and measures the arms below. Each of the
first nine runs in a process of its own (:class:`ArmProcesses`), warmed up there, so that no
arm runs on the memory another arm just freed; the processes take turns, one sample at a
time, so that a change of the machine's speed during the run reaches every arm. A process
keeps a speed of its own from sample to sample (four processes of the raw read sampled in
turns: medians 0.326, 0.327, 0.328 and 0.352 s), so this is done in ``--rounds`` rounds
(default 3), each with fresh processes and ``--repeats`` samples per arm (default 5), and
the medians are over all samples of all rounds:

``raw``
    a plain uproot read of exactly the branches the pipeline reads
    (:func:`analysis_lib.columnar.inputs.input_branches`) into awkward arrays — fresh file
    handle, no array cache, one thread — in two ways: ``raw_chunked``, the pipeline's
    chunks (``tree.arrays(entry_start=..., entry_stop=...)`` per chunk of ``--chunksize``,
    cut as the pipeline cuts the file: :mod:`analysis_lib.columnar.chunking`), and
    ``raw_whole``, one ``tree.arrays`` call for the whole file. Both decode the ZLIB
    baskets with uproot's own decoder (Python's ``zlib``), as a plain uproot read does.
    The baseline is the faster of the two medians;
``raw_libdeflate`` (informational)
    ``raw_whole`` with the ZLIB baskets decoded by libdeflate, the decoder the pipeline
    chooses (:mod:`analysis_lib.columnar.zlib_decoder`): ``features_vs_raw_libdeflate``
    is the pipeline against a raw read that decodes as fast as it does, i.e. what its
    selection, features and output cost beyond reading;
``features``
    :func:`analysis_lib.columnar.run_columnar` with ``nominal`` plus two shape variations
    (``jes_up``, ``jes_down`` by default: selection, weights and features three times) on the
    iterative executor — one process, one thread, like ``raw``; tables kept in memory. The
    whole call is timed: checking the inputs, the Runner, reading (ZLIB baskets decoded by
    libdeflate, the pipeline's default), processing, assembling;
``read_only`` (informational)
    the same Runner reading the same chunks into numpy
    (:func:`~analysis_lib.columnar.inputs.read_inputs`) and doing nothing else: the floor the
    pipeline cannot go below, whatever its selection and features cost;
``features_nanoevents`` (informational)
    the pipeline with ``fast_read=False``: coffea's own work function, NanoEvents per chunk,
    columns through the NanoEvents records (the fallback path);
``features_one_chunk`` (informational)
    the pipeline with the whole file as one chunk;
``features_no_arithmetic`` (informational)
    the pipeline with its kernel's arithmetic left out (:mod:`benchmarks.kernel_floor`:
    the inputs read once, the same outputs allocated and written for the same rows):
    about the least time any kernel takes. ``kernel_arithmetic_s`` (``features`` minus this)
    is what the arithmetic costs, ``kernel_arithmetic_budget_s`` (``raw / 0.8`` minus
    this) what it may cost for the target;
``features_nominal_only`` (informational)
    the pipeline with no shape variation (``nominal`` only): ``variation_cost_s``, the
    difference to ``features`` divided by the number of shape variations, is what one
    shape variation adds to a run;
``features_parallel`` (informational)
    the same on a local Dask cluster of ``--workers`` processes (default: the CPU count),
    made as a run given no cluster makes it
    (:func:`analysis_lib.compute.local_cluster`), which is how the pipeline runs
    by default. This uses more cores than ``raw``, so it is reported but not used for the
    target.

``features_ratio = rate(features) / rate(raw)`` from the medians (target ≥ 0.8); the ratio of
the fastest samples (``features_best``) and the median of the per-repeat ratios
(``features_paired``: raw and features sampled back to back, which follows a machine
whose load changes during the run) are recorded too.

Inference: a small XGBoost model (``--trees`` trees of depth 6, trained on the file's own
features) applied inside the processor for the nominal and the two variations. The
processor times its scoring calls (building the padded matrix from the feature columns plus
the prediction); the baseline is ``booster.predict(xgboost.DMatrix(X))`` on the very matrices
of the produced tables, one call per variation. The in-processor scores must equal the bare
ones to 1e-6. ``inference_ratio = time(bare predict) / time(in-processor)`` (target ≥ 0.9);
``inplace_predict`` on the same matrices is recorded as a second baseline.

Results go to ``benchmarks/results/columnar.json`` (written atomically) with every sample,
medians, the ratios, the settings and the machine; a table is printed. Each arm's process
runs the arm twice before it is timed (imports, numba's compiled loops, the page cache).
Run it on a quiet machine::

    .venv/bin/python -m benchmarks.columnar
    .venv/bin/python -m benchmarks.columnar --events 200000 --rounds 2 --repeats 7 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import itertools
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from columnar_samples import write_sample  # noqa: E402

from benchmarks.report import machine_info, write_report  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "columnar.json"
FEATURES_TARGET = 0.8
INFERENCE_TARGET = 0.9


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def chunk_ranges(path: Path, branches: list[str], chunksize: int) -> list[tuple[int, int]]:
    """The entry ranges the pipeline cuts the file into (:mod:`analysis_lib.columnar.chunking`)."""
    import uproot

    from analysis_lib.columnar.chunking import chunk_boundaries, shared_boundaries

    with uproot.open(path) as f:
        tree = f["Events"]
        bounds = chunk_boundaries(shared_boundaries(tree, branches), tree.num_entries, chunksize)
    return list(itertools.pairwise(bounds))


def raw_read(path: Path, branches: list[str], ranges: list[tuple[int, int]] | None) -> float:
    """Seconds for a plain uproot read: per chunk of ``ranges``, or the whole file (None)."""
    import uproot

    gc.collect()
    tic = time.perf_counter()
    with uproot.open(path, array_cache=None, object_cache=None) as f:
        tree = f["Events"]
        if ranges is None:
            tree.arrays(branches)
        else:
            for start, stop in ranges:
                tree.arrays(branches, entry_start=start, entry_stop=stop)
    return time.perf_counter() - tic


def pipeline(path: Path, processor, **kwargs) -> tuple[float, Any]:
    from analysis_lib.columnar import run_columnar

    gc.collect()
    tic = time.perf_counter()
    result = run_columnar([path], processor, progress=False, **kwargs)
    return time.perf_counter() - tic, result


def read_only(path: Path, chunksize: int, btag_branch: str) -> float:
    """Seconds for the pipeline's Runner reading the chunks into numpy, nothing else."""
    from coffea import processor as coffea_processor

    from analysis_lib.columnar.direct import DirectRunner, close_trees
    from analysis_lib.columnar.inputs import read_inputs
    from analysis_lib.columnar.processor import EventsSchema
    from analysis_lib.columnar.runner import _progress_display
    from analysis_lib.columnar.samples import prepare_fileset

    class ReadOnly(coffea_processor.ProcessorABC):
        def process_tree(self, tree, metadata):
            chunk = read_inputs(
                tree(),
                entry_start=metadata["entrystart"],
                entry_stop=metadata["entrystop"],
                btag_branch=btag_branch,
            )
            return {"n": len(chunk)}

        def process(self, events):
            raise AssertionError("the direct path was not taken")

        def postprocess(self, accumulator):
            return accumulator

    gc.collect()
    tic = time.perf_counter()
    prepared = prepare_fileset([path], keep_open=True)
    try:
        runner = DirectRunner(
            executor=coffea_processor.IterativeExecutor(status=False),
            chunksize=chunksize,
            schema=EventsSchema,
            metadata_cache=prepared.metadata_cache(chunksize),
            align_clusters=True,
        )
        with _progress_display(False):
            runner(prepared.coffea_fileset(), ReadOnly(), treename="Events")
    finally:
        close_trees()
    return time.perf_counter() - tic


#: The arms timed in processes of their own (see the module documentation), in the order
#: each repeat samples them.
ARMS = (
    "raw_chunked",
    "features",
    "raw_whole",
    "raw_libdeflate",
    "read_only",
    "features_nanoevents",
    "features_one_chunk",
    "features_no_arithmetic",
    "features_nominal_only",
)


def arm_sampler(
    name: str,
    path: Path,
    branches: list[str],
    ranges: list[tuple[int, int]],
    chunksize: int,
    n_events: int,
    variations: list[str],
) -> Callable[[], float]:
    """A function that times one run of the arm ``name`` (one of :data:`ARMS`)."""
    from analysis_lib.columnar import SemileptonicProcessor
    from analysis_lib.columnar.zlib_decoder import use_zlib_decoder

    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r} (known: {', '.join(ARMS)})")
    if name.startswith("raw_"):
        use_zlib_decoder("libdeflate" if name == "raw_libdeflate" else "zlib")
    if name == "raw_chunked":
        return lambda: raw_read(path, branches, ranges)
    if name in ("raw_whole", "raw_libdeflate"):
        return lambda: raw_read(path, branches, None)
    btag_branch = SemileptonicProcessor().btag_branch
    if name == "read_only":
        return lambda: read_only(path, chunksize, btag_branch)
    processor = SemileptonicProcessor(
        variations=[] if name == "features_nominal_only" else variations,
        fast_read=name != "features_nanoevents",
    )
    if name == "features_no_arithmetic":
        from benchmarks.kernel_floor import install

        install()  # for the life of this arm's process; its warm-up runs learn the rows
    size = n_events if name == "features_one_chunk" else chunksize
    return lambda: pipeline(path, processor, executor="iterative", chunksize=size)[0]


def _serve_arm(conn, name: str, *args: Any) -> None:
    """Time the arm ``name`` whenever the parent asks, in this process (see ``ArmProcesses``)."""
    try:
        sample = arm_sampler(name, *args)
        sample()  # warm up: imports, the compiled loops, the page cache, the allocator
        sample()
        conn.send(("ready", None))
        while conn.recv():
            conn.send(("sample", sample()))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class ArmProcesses:
    """One process per arm, each warmed up, sampled one at a time on request.

    An arm run in the same process as the others inherits the memory the previous arm
    freed: whether its arrays find pages already mapped or must fault fresh ones in
    depends on that arm, not on itself (a change of the pipeline's memory use once moved
    the raw read by 15-40 % this way). In a process of its own, each arm repeats in its
    own steady state, as a user running it in a loop sees it; the parent still alternates
    the arms, so that a change of the machine's speed during the run reaches all of them.
    """

    def __init__(self, names: tuple[str, ...], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._conns = {}
        self._procs = []
        for name in names:
            parent, child = context.Pipe()
            proc = context.Process(target=_serve_arm, args=(child, name, *args), daemon=True)
            proc.start()
            child.close()
            self._conns[name] = parent
            self._procs.append(proc)
        try:
            for name in names:
                self._receive(name, "ready")
        except BaseException:
            self.close()
            raise

    def _receive(self, name: str, kind: str) -> Any:
        try:
            got, value = self._conns[name].recv()
        except EOFError:
            raise RuntimeError(f"the process of arm {name!r} died") from None
        if got == "error":
            raise RuntimeError(f"arm {name!r} failed:\n{value}")
        assert got == kind, (got, kind)
        return value

    def sample(self, name: str) -> float:
        """Seconds of one run of the arm ``name``."""
        self._conns[name].send(True)
        return self._receive(name, "sample")

    def close(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(False)
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()

    def __enter__(self) -> ArmProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def matrices(result, features: list[str], variations: list[str]) -> list[np.ndarray]:
    sample = next(iter(result.tables))
    return [
        result.tables[sample][v].select(features).to_pandas().to_numpy(np.float32)
        for v in variations
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument(
        "--repeats", type=int, default=5, help="samples per arm and round (default 5)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds, each with fresh processes for the arms (default 3)",
    )
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--variations", default="jes_up,jes_down")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--no-parallel", action="store_true", help="skip the Dask measurement")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import xgboost

    from analysis_lib.columnar import SemileptonicProcessor, default_features
    from analysis_lib.columnar.inputs import input_branches
    from analysis_lib.columnar.output import code_version
    from analysis_lib.columnar.zlib_decoder import zlib_decoder

    variations = [v for v in args.variations.split(",") if v]
    all_variations = ["nominal", *variations]
    features = default_features()

    with tempfile.TemporaryDirectory(prefix="bench-columnar-") as tmp:
        path = Path(tmp) / "ttbar.root"
        tic = time.perf_counter()
        write_sample(path, args.events, process="ttbar", seed=2014)
        generation_s = time.perf_counter() - tic
        processor = SemileptonicProcessor(variations=variations)
        branches = input_branches(processor.btag_branch)
        ranges = chunk_ranges(path, branches, args.chunksize)
        kwargs = {"executor": "iterative", "chunksize": args.chunksize}

        # the tables (for the checks and the model below); warms up the page cache
        _, warm = pipeline(path, processor, **kwargs)
        pipeline_decoder = zlib_decoder()
        n_rows = {v: warm.table(variation=v).num_rows for v in all_variations}
        assert warm.timing["n_chunks"] == len(ranges), "the raw read's chunks differ"

        samples: dict[str, list[float]] = {name: [] for name in ARMS}
        round_medians: dict[str, list[float]] = {name: [] for name in ARMS}
        for _ in range(args.rounds):
            with ArmProcesses(
                ARMS, path, branches, ranges, args.chunksize, args.events, variations
            ) as arms:
                this_round: dict[str, list[float]] = {name: [] for name in ARMS}
                for _ in range(args.repeats):
                    for name in ARMS:
                        this_round[name].append(arms.sample(name))
            for name in ARMS:
                samples[name] += this_round[name]
                round_medians[name].append(statistics.median(this_round[name]))

        parallel_s: list[float] = []
        if not args.no_parallel:
            from distributed import Client

            from analysis_lib.compute import local_cluster

            with local_cluster(args.workers) as cluster, Client(cluster) as client:
                pipeline(path, processor, client=client, chunksize=args.chunksize)
                for _ in range(args.repeats * args.rounds):
                    parallel_s.append(
                        pipeline(path, processor, client=client, chunksize=args.chunksize)[0]
                    )

        # inference: a model trained on the file's own nominal features
        X_train = matrices(warm, features, ["nominal"])[0]
        column = X_train[:, features.index("m_wwbb")]
        y = (column > np.nanmedian(column)).astype(int)
        booster = xgboost.train(
            {"objective": "binary:logistic", "max_depth": 6},
            xgboost.DMatrix(X_train, label=y),
            num_boost_round=args.trees,
        )
        scored = SemileptonicProcessor(variations=variations, model=booster)
        pipeline(path, scored, **kwargs)  # warm up
        inproc_s, bare_s, inplace_s = [], [], []
        max_diff = 0.0
        for _ in range(args.repeats * args.rounds):
            _, result = pipeline(path, scored, **kwargs)
            inproc_s.append(result.timing["inference_s"])
            mats = matrices(result, features, all_variations)
            tic = time.perf_counter()
            bare = [booster.predict(xgboost.DMatrix(m)) for m in mats]
            bare_s.append(time.perf_counter() - tic)
            tic = time.perf_counter()
            for m in mats:
                booster.inplace_predict(m)
            inplace_s.append(time.perf_counter() - tic)
            sample = next(iter(result.tables))
            for v, b in zip(all_variations, bare, strict=True):
                score = result.tables[sample][v]["score"].to_numpy()
                max_diff = max(max_diff, float(np.max(np.abs(score - b), initial=0.0)))
        if max_diff > 1e-6:
            raise AssertionError(f"in-processor scores differ from bare predict by {max_diff}")

    med = {k: statistics.median(v) for k, v in samples.items()}
    raw_kind = min(("raw_chunked", "raw_whole"), key=med.__getitem__)
    raw_med, feat_med = med[raw_kind], med["features"]
    raw_s = samples[raw_kind]
    report: dict[str, Any] = {
        "benchmark": "columnar",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": {
            "events": args.events,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "chunksize": args.chunksize,
            "chunks": ranges,
            "variations": all_variations,
            "branches": branches,
            "workers": args.workers,
            "trees": args.trees,
            "generation_s": generation_s,
            "zlib_decoder": {"raw": "zlib", "pipeline": pipeline_decoder},
            "isolation": (
                f"one process per arm and round, {args.rounds} rounds: {', '.join(ARMS)}"
            ),
        },
        "machine": {**machine_info(), "versions": code_version()},
        "rows": n_rows,
        "seconds": {
            **{
                k: {"samples": v, "round_medians": round_medians[k], **_summary(v)}
                for k, v in samples.items()
            },
            "inference_in_processor": {"samples": inproc_s, **_summary(inproc_s)},
            "bare_predict": {"samples": bare_s, **_summary(bare_s)},
            "bare_inplace_predict": {"samples": inplace_s, **_summary(inplace_s)},
        },
        "rates_hz": {
            "raw": args.events / raw_med,
            "features": args.events / feat_med,
        },
        "ratios": {
            "raw_baseline": raw_kind,
            "features": raw_med / feat_med,
            "features_best": min(raw_s) / min(samples["features"]),
            "features_paired": statistics.median(
                r / f for r, f in zip(raw_s, samples["features"], strict=True)
            ),
            "features_vs_raw_chunked": med["raw_chunked"] / feat_med,
            "features_vs_raw_whole": med["raw_whole"] / feat_med,
            "features_vs_raw_libdeflate": med["raw_libdeflate"] / feat_med,
            "raw_libdeflate_speedup": med["raw_whole"] / med["raw_libdeflate"],
            "features_target": FEATURES_TARGET,
            "features_nanoevents": raw_med / med["features_nanoevents"],
            "features_one_chunk": raw_med / med["features_one_chunk"],
            "read_only": raw_med / med["read_only"],
            "features_no_arithmetic": raw_med / med["features_no_arithmetic"],
            "features_nominal_only": raw_med / med["features_nominal_only"],
            "inference": statistics.median(bare_s) / statistics.median(inproc_s),
            "inference_vs_inplace": statistics.median(inplace_s) / statistics.median(inproc_s),
            "inference_target": INFERENCE_TARGET,
        },
        "max_score_difference": max_diff,
        "kernel_arithmetic_s": feat_med - med["features_no_arithmetic"],
        "kernel_arithmetic_budget_s": raw_med / FEATURES_TARGET - med["features_no_arithmetic"],
        # what one shape variation adds to a run, and what the target leaves for each
        "variation_cost_s": (feat_med - med["features_nominal_only"]) / len(variations)
        if variations
        else None,
        "variation_budget_s": (raw_med / FEATURES_TARGET - med["features_nominal_only"])
        / len(variations)
        if variations
        else None,
    }
    if parallel_s:
        par_med = statistics.median(parallel_s)
        report["seconds"]["features_parallel"] = {"samples": parallel_s, **_summary(parallel_s)}
        report["rates_hz"]["features_parallel"] = args.events / par_med
        report["ratios"]["features_parallel"] = raw_med / par_med
        report["ratios"]["features_parallel_note"] = (
            f"{args.workers} Dask worker processes against a one-thread raw read"
        )
    write_report(args.output, report)

    r = report["ratios"]

    def line(label: str, seconds: float, extra: str = "") -> None:
        print(f"  {label:36s} {seconds:8.3f} s  {args.events / seconds / 1e6:6.3f} MHz  {extra}")

    print(
        f"columnar benchmark: {args.events} events, {args.rounds} rounds of fresh processes, "
        f"{args.repeats} repeats each, medians"
    )
    line("raw uproot read, pipeline's chunks", med["raw_chunked"])
    line("raw uproot read, whole file", med["raw_whole"], f"(baseline: {raw_kind})")
    line(
        "raw uproot read, libdeflate",
        med["raw_libdeflate"],
        f"features vs it {r['features_vs_raw_libdeflate']:.2f}",
    )
    line("read-only Runner (the floor)", med["read_only"], f"ratio {r['read_only']:.2f}")
    line(
        "features, " + "+".join(all_variations),
        feat_med,
        f"ratio {r['features']:.2f} (target >= {FEATURES_TARGET}); "
        f"paired {r['features_paired']:.2f}, best {r['features_best']:.2f}",
    )
    line(
        "  same, NanoEvents path",
        med["features_nanoevents"],
        f"ratio {r['features_nanoevents']:.2f}",
    )
    line(
        "  same, the file as one chunk",
        med["features_one_chunk"],
        f"ratio {r['features_one_chunk']:.2f}",
    )
    line(
        "  same, no kernel arithmetic",
        med["features_no_arithmetic"],
        f"ratio {r['features_no_arithmetic']:.2f}: the arithmetic takes "
        f"{report['kernel_arithmetic_s'] * 1e3:.0f} ms, "
        f"{report['kernel_arithmetic_budget_s'] * 1e3:.0f} ms for the target",
    )
    if variations:
        line(
            "  same, nominal only",
            med["features_nominal_only"],
            f"ratio {r['features_nominal_only']:.2f}: a shape variation adds "
            f"{report['variation_cost_s'] * 1e3:.0f} ms, "
            f"{report['variation_budget_s'] * 1e3:.0f} ms for the target",
        )
    if parallel_s:
        print(
            f"  {f'  same, {args.workers} Dask workers':36s} {par_med:8.3f} s  "
            f"{args.events / par_med / 1e6:6.3f} MHz  ratio {r['features_parallel']:.2f} "
            "(more cores than raw)"
        )
    print(
        f"  {'inference in processor':36s} {statistics.median(inproc_s):8.3f} s  "
        f"ratio {r['inference']:.2f} (target >= {INFERENCE_TARGET})"
    )
    print(f"  {'bare predict(DMatrix)':36s} {statistics.median(bare_s):8.3f} s")
    print(
        f"  {'bare inplace_predict':36s} {statistics.median(inplace_s):8.3f} s  "
        f"ratio {r['inference_vs_inplace']:.2f}"
    )
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
