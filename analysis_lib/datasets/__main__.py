"""Command line for the sample registry: list, describe and generate samples.

Examples
--------
From a shell::

    python -m analysis_lib.datasets list
    python -m analysis_lib.datasets info zprime_m1000
    python -m analysis_lib.datasets generate ttbar_semilep -n 20000 --seed 1 --workers 8

``generate`` prints the path of the ROOT file. Its metadata is in ``<path>.json``.

Exit status: 0 done; 1 a file or directory that cannot be made or written (named on
stderr); 2 bad arguments (an unknown sample, a count that is not positive); 130
interrupted (Ctrl-C): the worker processes are stopped and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from analysis_lib.datasets.registry import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_SEED,
    UnknownSampleError,
    generate,
    list_samples,
    sample_info,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line options.

    Examples
    --------
    >>> parse_args(["generate", "zprime_m500", "-n", "100"]).n_events
    100
    """
    epilog = (
        f"{textwrap.fill('samples: ' + ', '.join(list_samples()), 80)}\n\n"
        "generate prints the path of the ROOT file; its metadata is in <path>.json. The\n"
        "cache is --cache-dir, else $HEPML_DATA_CACHE, else ~/.cache/hepml-hub/samples.\n\n"
        "exit status: 0 done; 1 a file or directory that cannot be made or written; 2 bad\n"
        "arguments (an unknown sample, a count that is not positive); 130 interrupted\n"
        "(Ctrl-C): nothing is written."
    )
    parser = argparse.ArgumentParser(
        prog="python -m analysis_lib.datasets",
        description="Pythia 8 samples in NanoAOD-like ROOT files, addressed by name.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="names of the registered samples")
    info = sub.add_parser("info", help="a sample's metadata and generated files (JSON)")
    info.add_argument("name")
    info.add_argument("--cache-dir", type=Path, default=None)
    gen = sub.add_parser(
        "generate",
        help="generate a sample (or find it in the cache)",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("name", help="a registered sample (see the list below)")
    gen.add_argument("-n", "--n-events", type=int, required=True, help="number of events")
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED, help="master seed (default: 1)")
    gen.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    gen.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"events per parallel chunk (default: {DEFAULT_CHUNK_SIZE})",
    )
    gen.add_argument("--cache-dir", type=Path, default=None)
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Examples
    --------
    >>> main(["list"])  # doctest: +ELLIPSIS
    ttbar_semilep
    zprime_m500
    ...
    0
    >>> main(["info", "nope"])  # prints the known names on stderr
    2
    """
    args = parse_args(argv)
    try:
        if args.command == "list":
            for name in list_samples():
                print(name)
        elif args.command == "info":
            print(
                json.dumps(
                    sample_info(args.name, cache_dir=args.cache_dir), indent=2, ensure_ascii=False
                )
            )
        else:
            path = generate(
                args.name,
                args.n_events,
                seed=args.seed,
                cache_dir=args.cache_dir,
                n_workers=args.workers,
                chunk_size=args.chunk_size,
                progress=not args.no_progress,
            )
            print(path)
    except (UnknownSampleError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. a cache directory that cannot be made or written
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted: nothing was written (a sample is written once complete)", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
