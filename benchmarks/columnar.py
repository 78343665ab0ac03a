"""Columnar pipeline throughput against its baselines, on the same machine, in one run.

The benchmark writes a synthetic NanoAOD-like file (``tests/columnar_samples.py``, default
300 000 events, uproot's default compression) and measures, interleaved, ``--repeats``
times each:

``raw``
    ``uproot.open(file)["Events"].arrays(branches)`` — a plain read of exactly the branches
    the processor reads (fresh file handle, no array cache), one thread;
``features``
    :func:`analysis_lib.columnar.run_columnar` with ``nominal`` plus two shape variations
    (``jes_up``, ``jes_down`` by default: selection, weights and features three times) on the
    iterative executor — one process, one thread, like ``raw``; tables kept in memory;
``read_only`` (informational)
    coffea's Runner with a processor that only loads the same columns into numpy
    (``analysis_lib.columnar.inputs.load_inputs``) and does nothing else: the floor the
    pipeline cannot go below, whatever its selection and features cost;
``features_one_chunk`` (informational)
    the same with the whole file as one chunk (``--chunksize`` is the default 100 000): what
    the per-chunk cost of opening the file and building NanoEvents adds;
``features_parallel`` (informational)
    the same on a local Dask cluster of ``--workers`` processes (default: the CPU count),
    which is how the pipeline runs by default. This uses more cores than ``raw``, so it is
    reported but not used for the target.

``features_ratio = rate(features) / rate(raw)`` from the medians (target ≥ 0.8); the ratio of
the fastest samples is recorded too (``features_best``).

Inference: a small XGBoost model (``--trees`` trees of depth 6, trained on the file's own
features) applied inside the processor for the nominal and the two variations. The
processor times its scoring calls (building the padded matrix from the feature columns plus
the prediction); the baseline is ``booster.predict(xgboost.DMatrix(X))`` on the very matrices
of the produced tables, one call per variation. The in-processor scores must equal the bare
ones to 1e-6. ``inference_ratio = time(bare predict) / time(in-processor)`` (target ≥ 0.9);
``inplace_predict`` on the same matrices is recorded as a second baseline.

Results go to ``benchmarks/results/columnar.json`` (written atomically) with every sample,
medians, the ratios, the settings and the machine; a table is printed. Numba's compiled
loops and the imports are warmed up before measuring. Run it on a quiet machine::

    .venv/bin/python -m benchmarks.columnar
    .venv/bin/python -m benchmarks.columnar --events 200000 --repeats 7 --workers 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import sys
import tempfile
import time
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


def raw_read(path: Path, branches: list[str]) -> float:
    import uproot

    gc.collect()
    tic = time.perf_counter()
    with uproot.open(path, array_cache=None, object_cache=None) as f:
        f["Events"].arrays(branches)
    return time.perf_counter() - tic


def pipeline(path: Path, processor, **kwargs) -> tuple[float, Any]:
    from analysis_lib.columnar import run_columnar

    gc.collect()
    tic = time.perf_counter()
    result = run_columnar([path], processor, progress=False, **kwargs)
    return time.perf_counter() - tic, result


def read_only(path: Path, chunksize: int) -> float:
    from coffea import processor as coffea_processor

    from analysis_lib.columnar.inputs import load_inputs
    from analysis_lib.columnar.processor import EventsSchema
    from analysis_lib.columnar.runner import _progress_display
    from analysis_lib.columnar.samples import prepare_fileset

    class ReadOnly(coffea_processor.ProcessorABC):
        def process(self, events):
            load_inputs(events)
            return {"n": len(events)}

        def postprocess(self, accumulator):
            return accumulator

    gc.collect()
    tic = time.perf_counter()
    prepared = prepare_fileset([path])
    runner = coffea_processor.Runner(
        executor=coffea_processor.IterativeExecutor(status=False),
        chunksize=chunksize,
        schema=EventsSchema,
        metadata_cache=prepared.metadata_cache(),
    )
    with _progress_display(False):
        runner(prepared.coffea_fileset(), ReadOnly(), treename="Events")
    return time.perf_counter() - tic


def matrices(result, features: list[str], variations: list[str]) -> list[np.ndarray]:
    sample = next(iter(result.tables))
    return [
        result.tables[sample][v].select(features).to_pandas().to_numpy(np.float32)
        for v in variations
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--variations", default="jes_up,jes_down")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--no-parallel", action="store_true", help="skip the Dask measurement")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import xgboost

    from analysis_lib.columnar import SemileptonicProcessor, default_features, required_branches
    from analysis_lib.columnar.output import code_version

    variations = [v for v in args.variations.split(",") if v]
    all_variations = ["nominal", *variations]
    features = default_features()

    with tempfile.TemporaryDirectory(prefix="bench-columnar-") as tmp:
        path = Path(tmp) / "ttbar.root"
        tic = time.perf_counter()
        write_sample(path, args.events, process="ttbar", seed=2014)
        generation_s = time.perf_counter() - tic
        processor = SemileptonicProcessor(variations=variations)
        branches = required_branches(processor.btag_branch)
        kwargs = {"executor": "iterative", "chunksize": args.chunksize}

        # warm up: imports, numba's compiled loops, the page cache
        raw_read(path, branches)
        _, warm = pipeline(path, processor, **kwargs)
        n_rows = {v: warm.table(variation=v).num_rows for v in all_variations}

        one_chunk = {"executor": "iterative", "chunksize": args.events}
        read_only(path, args.chunksize)
        raw_s, features_s, one_chunk_s, read_only_s = [], [], [], []
        for _ in range(args.repeats):
            raw_s.append(raw_read(path, branches))
            read_only_s.append(read_only(path, args.chunksize))
            features_s.append(pipeline(path, processor, **kwargs)[0])
            one_chunk_s.append(pipeline(path, processor, **one_chunk)[0])

        parallel_s: list[float] = []
        if not args.no_parallel:
            from distributed import Client, LocalCluster

            with (
                LocalCluster(
                    n_workers=args.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):
                pipeline(path, processor, client=client, chunksize=args.chunksize)
                for _ in range(args.repeats):
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
        for _ in range(args.repeats):
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

    raw_med, feat_med = statistics.median(raw_s), statistics.median(features_s)
    report: dict[str, Any] = {
        "benchmark": "columnar",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": {
            "events": args.events,
            "repeats": args.repeats,
            "chunksize": args.chunksize,
            "variations": all_variations,
            "branches": branches,
            "workers": args.workers,
            "trees": args.trees,
            "generation_s": generation_s,
        },
        "machine": {**machine_info(), "versions": code_version()},
        "rows": n_rows,
        "seconds": {
            "raw": {"samples": raw_s, **_summary(raw_s)},
            "read_only": {"samples": read_only_s, **_summary(read_only_s)},
            "features": {"samples": features_s, **_summary(features_s)},
            "features_one_chunk": {"samples": one_chunk_s, **_summary(one_chunk_s)},
            "inference_in_processor": {"samples": inproc_s, **_summary(inproc_s)},
            "bare_predict": {"samples": bare_s, **_summary(bare_s)},
            "bare_inplace_predict": {"samples": inplace_s, **_summary(inplace_s)},
        },
        "rates_hz": {
            "raw": args.events / raw_med,
            "features": args.events / feat_med,
        },
        "ratios": {
            "features": raw_med / feat_med,
            "features_best": min(raw_s) / min(features_s),
            "features_target": FEATURES_TARGET,
            "features_one_chunk": raw_med / statistics.median(one_chunk_s),
            "read_only": raw_med / statistics.median(read_only_s),
            "inference": statistics.median(bare_s) / statistics.median(inproc_s),
            "inference_vs_inplace": statistics.median(inplace_s) / statistics.median(inproc_s),
            "inference_target": INFERENCE_TARGET,
        },
        "max_score_difference": max_diff,
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
    print(f"columnar benchmark: {args.events} events, {args.repeats} repeats, medians")
    print(f"  {'raw uproot read':34s} {raw_med:8.3f} s  {args.events / raw_med / 1e6:6.3f} MHz")
    ro_med = statistics.median(read_only_s)
    print(
        f"  {'read-only processor (the floor)':34s} {ro_med:8.3f} s  "
        f"{args.events / ro_med / 1e6:6.3f} MHz  ratio {r['read_only']:.2f}"
    )
    print(
        f"  {'features, ' + '+'.join(all_variations):34s} {feat_med:8.3f} s  "
        f"{args.events / feat_med / 1e6:6.3f} MHz  ratio {r['features']:.2f} "
        f"(target >= {FEATURES_TARGET})"
    )
    one_med = statistics.median(one_chunk_s)
    print(
        f"  {'  same, the file as one chunk':34s} {one_med:8.3f} s  "
        f"{args.events / one_med / 1e6:6.3f} MHz  ratio {r['features_one_chunk']:.2f}"
    )
    if parallel_s:
        print(
            f"  {f'  same, {args.workers} Dask workers':34s} {par_med:8.3f} s  "
            f"{args.events / par_med / 1e6:6.3f} MHz  ratio {r['features_parallel']:.2f} "
            "(more cores than raw)"
        )
    print(
        f"  {'inference in processor':34s} {statistics.median(inproc_s):8.3f} s  "
        f"ratio {r['inference']:.2f} (target >= {INFERENCE_TARGET})"
    )
    print(f"  {'bare predict(DMatrix)':34s} {statistics.median(bare_s):8.3f} s")
    print(
        f"  {'bare inplace_predict':34s} {statistics.median(inplace_s):8.3f} s  "
        f"ratio {r['inference_vs_inplace']:.2f}"
    )
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
