"""Event generation throughput: events per second per core, one worker against two.

For each sample (by default ``ttbar_semilep`` and ``zprime_m1000``), the benchmark calls
:func:`analysis_lib.datasets.registry.generate` with a fresh temporary cache, first with
one worker and then with two. Everything else is the same: the number of events
(``--events``, default 2000), the seed and the chunk size (``--chunk-size``, default 500,
so each of two workers gets two chunks). A run times the whole call, from Pythia's
initialisation to the renamed ROOT file.

The benchmark reports, for each sample and worker count:

``events_per_s``
    ``events / wall time``;
``events_per_s_per_core``
    ``events_per_s / workers``;
``chunk_events_per_s``
    events divided by the summed chunk times from the metadata (the per-core compute
    rate, without pool start-up and file writing).

and, for each sample, ``speedup = events_per_s(2) / events_per_s(1)`` and
``efficiency = speedup / 2``. The two files of a sample must be identical (the same
events whatever the worker count), and the benchmark checks it. Before timing, a
10-event run loads Pythia and FastJet, so their import time is not counted.

Results go to ``benchmarks/results/generator.json``, written atomically, and a short
table is printed.

Examples
--------
From the repository root::

    .venv/bin/python -m benchmarks.generator
    .venv/bin/python -m benchmarks.generator --events 4000 --samples ttbar_semilep zprime_m2000
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import awkward as ak
import uproot

from analysis_lib.datasets.registry import generate, list_samples, load_metadata
from benchmarks.report import machine_info, write_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "generator.json"
SEED = 2026


def timed_generation(
    sample: str, events: int, chunk_size: int, workers: int, cache: Path
) -> tuple[dict[str, Any], Path]:
    """Generate once into ``cache``; the timing and rates, and the file."""
    start = time.perf_counter()
    path = generate(
        sample,
        events,
        seed=SEED,
        cache_dir=cache,
        n_workers=workers,
        chunk_size=chunk_size,
        progress=False,
    )
    wall = time.perf_counter() - start
    meta = load_metadata(path)
    chunk_seconds = sum(c["seconds"] for c in meta["chunks"])
    return {
        "workers": workers,
        "wall_s": wall,
        "events_per_s": events / wall,
        "events_per_s_per_core": events / wall / workers,
        "chunk_events_per_s": events / chunk_seconds,
        "cross_section_pb": meta["cross_section_pb"],
        "file_mb": path.stat().st_size / 1e6,
    }, path


def same_events(a: Path, b: Path) -> bool:
    """Whether two generated files hold identical ``Events`` arrays."""
    x, y = uproot.open(a)["Events"].arrays(), uproot.open(b)["Events"].arrays()
    return x.fields == y.fields and all(bool(ak.all(x[f] == y[f], axis=None)) for f in x.fields)


def print_table(result: dict[str, Any]) -> None:
    """A short human-readable table."""
    print(
        f"\n{'sample':<16}{'workers':>8}{'wall s':>9}{'ev/s':>9}{'ev/s/core':>11}{'chunk ev/s':>12}"
    )
    for name, s in result["samples"].items():
        for run in s["runs"]:
            print(
                f"{name:<16}{run['workers']:>8}{run['wall_s']:>9.2f}{run['events_per_s']:>9.1f}"
                f"{run['events_per_s_per_core']:>11.1f}{run['chunk_events_per_s']:>12.1f}"
            )
        print(
            f"{'':<16}speedup 2/1 workers: {s['speedup']:.2f} (efficiency {s['efficiency']:.2f})"
            f"{'' if s['identical'] else '  FILES DIFFER'}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generator",
        description="Pythia 8 + FastJet generation rate, one worker against two.",
    )
    parser.add_argument(
        "--samples",
        nargs="+",
        default=["ttbar_semilep", "zprime_m1000"],
        choices=list_samples(),
        help="samples to generate (default: ttbar_semilep zprime_m1000)",
    )
    parser.add_argument("--events", type=int, default=2000, help="events per run (default: 2000)")
    parser.add_argument(
        "--chunk-size", type=int, default=500, help="events per chunk (default: 500)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help=f"JSON results file (default: {RESULTS.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.chunk_size < 1:
        parser.error("--events and --chunk-size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Time every sample with one and two workers, write the results, print the table."""
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    samples: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hepml-bench-gen-") as tmp:
        generate("ttbar_semilep", 10, cache_dir=Path(tmp) / "warm", n_workers=1, progress=False)
        for name in args.samples:
            runs, paths = [], []
            for workers in (1, 2):
                print(f"{name}: {args.events} events, {workers} worker(s)", flush=True)
                run, path = timed_generation(
                    name, args.events, args.chunk_size, workers, Path(tmp) / f"{name}-{workers}"
                )
                runs.append(run)
                paths.append(path)
            speedup = runs[1]["events_per_s"] / runs[0]["events_per_s"]
            samples[name] = {
                "runs": runs,
                "speedup": speedup,
                "efficiency": speedup / 2,
                "identical": same_events(*paths),
            }
    result = {
        "benchmark": "generator",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info("pythia8mc", "fastjet"),
        "settings": {"events": args.events, "chunk_size": args.chunk_size, "seed": SEED},
        "unit": "events/s",
        "samples": samples,
    }
    write_report(args.output, result)
    print_table(result)
    print(f"\nresults: {args.output}")
    return 0 if all(s["identical"] for s in samples.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
