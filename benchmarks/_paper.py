"""What the Keras paper reproductions (``paper_pivot``, ``paper_inferno``) share: the common
options, the thread limit set before TensorFlow starts, and the timed run written as a report.

Examples
--------
>>> import argparse, json, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     args = argparse.Namespace(output=Path(tmp) / "demo.json")
...     report = timed_report(lambda a: {"pass": True}, args)
...     sorted(json.loads(args.output.read_text()))
['date', 'machine', 'pass', 'total_s']
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.report import machine_info, write_report


def parse_args(
    parser: argparse.ArgumentParser, results: Path, argv: list[str] | None
) -> argparse.Namespace:
    """Add ``--seed``, ``--threads`` and ``--output`` (default ``results``) to a benchmark's
    own options, parse ``argv`` and limit the threads (:func:`limit_threads`)."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=results)
    args = parser.parse_args(argv)
    limit_threads(args.threads)
    return args


def limit_threads(n: int) -> None:
    """Run OpenMP and TensorFlow on ``n`` threads (call before TensorFlow runs anything)."""
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(var, str(n))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def timed_report(
    run: Callable[[argparse.Namespace], dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """``run(args)`` with its wall time, date and machine, written to ``args.output``."""
    tic = time.perf_counter()
    report = run(args)
    report["total_s"] = time.perf_counter() - tic
    report["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report["machine"] = machine_info("numpy", "keras", "tensorflow-cpu")
    write_report(args.output, report)
    return report
