"""Command line: ``python -m analysis_lib.columnar INPUT... --output DIR`` (see ``--help``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .checkpoint import AtomicCheckpointer
from .errors import ColumnarError
from .features import FeatureConfig, default_features
from .inputs import BTAG_WORKING_POINTS, DEFAULT_BTAG_BRANCH
from .processor import DEFAULT_LUMI_PB, SemileptonicProcessor
from .runner import EXECUTORS, run_columnar
from .selection import CUT_NAMES, Cuts
from .systematics import VARIATIONS

DESCRIPTION = """\
Select semileptonic tt̄-like events in NanoAOD files, build their features (lepton, MET,
leading jets, the masses of Baldi et al.) for the nominal events and every systematic
variation, optionally score them with a trained model, and write one parquet table per
sample and variation: DIR/<sample>/<variation>.parquet, its metadata in
DIR/<sample>/<variation>.json, and DIR/manifest.json. Files are written atomically;
an interrupted run resumes from its checkpoints when run again with the same arguments."""

EPILOG = f"""\
variations: {", ".join(VARIATIONS)}
cuts (in cutflow order): {", ".join(CUT_NAMES)}
b-tag working points known: {", ".join(f"{k}={v}" for k, v in BTAG_WORKING_POINTS.items())}

samples: a file's sample is the "sample" of the metadata JSON beside it (<file>.json, which
also gives the cross-section); without one (real NanoAOD), the file name's stem. Weights are
cross_section_pb x lumi x genWeight / sum(genWeight) x scale factors, or genWeight x scale
factors when there is no cross-section.

exit status: 0 done (files skipped with --skip-bad-files are listed on stderr); 1 bad input
(unreadable file, missing branch, unknown variation or cut, missing or broken model file,
output directory that cannot be made, Dask scheduler that cannot be reached, no readable
file at all); 2 wrong usage; 130 interrupted (Ctrl-C): the chunks finished so far stay in
DIR/.checkpoints, and the same command again resumes from them.

a rerun into the same DIR replaces its samples' tables: variations it does not make are
removed from DIR/<sample>/. With --maxchunks the metadata's "events" says how many events
were processed; the weights stay those of the whole sample.

examples:
  python -m analysis_lib.columnar data/ttbar_*.root --output features/
  python -m analysis_lib.columnar nano_dy.root --output out/ --require none --executor iterative
  python -m analysis_lib.columnar old_nano.root --output out/ --btag-branch Jet_btagDeepB
  python -m analysis_lib.columnar sig.root bkg.root --output out/ --model bdt.json \\
      --variations jes_up,jes_down --scheduler tcp://scheduler:8786
"""


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its ``--help`` is the documentation of the command line)."""
    p = argparse.ArgumentParser(
        prog="python -m analysis_lib.columnar",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="NanoAOD ROOT files")
    p.add_argument("-o", "--output", metavar="DIR", help="output directory (required)")
    p.add_argument("--sample", help="put every input into this one sample")
    p.add_argument(
        "--variations",
        type=_list,
        metavar="LIST",
        help="comma-separated variations to produce (default: all; nominal is always made)",
    )
    p.add_argument(
        "--list-variations", action="store_true", help="print the known variations and exit"
    )
    p.add_argument(
        "--lumi-pb",
        type=float,
        default=DEFAULT_LUMI_PB,
        help="integrated luminosity in pb^-1 (default: %(default)s)",
    )
    p.add_argument(
        "--btag-branch",
        default=DEFAULT_BTAG_BRANCH,
        help="b-tag score branch (default: %(default)s; old NanoAOD: Jet_btagDeepB)",
    )
    p.add_argument("--btag-wp", type=float, help="b-tag cut (default: the branch's medium WP)")
    p.add_argument(
        "--require",
        type=_list,
        metavar="CUTS",
        help="comma-separated cuts an event must pass to be written (default: all; "
        "'none' writes every event, a feature-extraction mode)",
    )
    defaults = Cuts()
    for name in ("lepton_pt_min", "jet_pt_min", "met_min"):
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            default=getattr(defaults, name),
            help="GeV (default: %(default)s)",
        )
    for name in ("n_jets_min", "n_bjets_min"):
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=getattr(defaults, name),
            help="(default: %(default)s)",
        )
    p.add_argument(
        "--n-jets-stored",
        type=int,
        default=FeatureConfig().n_jets,
        help=f"leading jets written as columns, 1 to {FeatureConfig().n_jets_max} "
        "(default: %(default)s)",
    )
    p.add_argument("--model", help="trained model: XGBoost (.json, .ubj) or Keras (.keras, .h5)")
    p.add_argument(
        "--model-features",
        type=_list,
        metavar="LIST",
        help=f"the model's input columns in order (default: the {len(default_features())} "
        "features of Baldi et al.)",
    )
    p.add_argument(
        "--score-column", help="the model's score column (default: score; not a feature's name)"
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="auto",
        help="auto: the Dask scheduler given, else a local Dask cluster (default)",
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler to connect to")
    p.add_argument(
        "--workers",
        type=int,
        help="workers of a local cluster (default: the session's cores, else CPUs)",
    )
    p.add_argument(
        "--chunksize",
        type=int,
        default=100_000,
        help="events per chunk, at least: chunks start where the file's baskets start "
        "(default: %(default)s)",
    )
    p.add_argument("--maxchunks", type=int, help="at most this many chunks per sample")
    p.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="leave unreadable files out and list them at the end instead of failing",
    )
    p.add_argument(
        "--keep-checkpoints", action="store_true", help="keep DIR/.checkpoints after success"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def interrupted_message(checkpoints: Path, done: int) -> str:
    """What the command says when it is interrupted: what is kept and how to go on.

    ``done`` is the number of this configuration's chunks checkpointed in ``checkpoints``.

    Examples
    --------
    >>> print(interrupted_message(Path("out/.checkpoints"), 0))
    interrupted: no chunk had finished; nothing was kept
    >>> print(interrupted_message(Path("out/.checkpoints"), 3))
    interrupted: 3 finished chunk(s) are kept in out/.checkpoints
    run the same command again to process only the rest
    """
    if not done:
        return "interrupted: no chunk had finished; nothing was kept"
    return (
        f"interrupted: {done} finished chunk(s) are kept in {checkpoints}\n"
        "run the same command again to process only the rest"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_variations:
        for v in VARIATIONS.values():
            print(f"{v.name:16s} {v.kind}")
        return 0
    if not args.inputs:
        parser.error("no INPUT files given")
    if not args.output:
        parser.error("--output DIR is required")
    # an empty list is most likely an unset shell variable: say so rather than guess
    if args.require == []:
        parser.error("--require is empty: name cuts, or 'none' to write every event")
    if args.variations == []:
        parser.error("--variations is empty: name variations, or 'nominal' for nominal only")
    for option, value in (("--model-features", args.model_features), ("--score-column",
                          args.score_column)):  # fmt: skip
        if value is not None and not args.model:
            parser.error(f"{option} is for a model's scores: it needs --model")
    n_jets_max = FeatureConfig().n_jets_max
    if not 1 <= args.n_jets_stored <= n_jets_max:
        parser.error(
            f"--n-jets-stored must be between 1 and {n_jets_max}, got {args.n_jets_stored}"
        )
    require = CUT_NAMES if args.require is None else args.require
    if [r.lower() for r in require] == ["none"]:
        require = ()
    client = None
    processor = None
    try:
        processor = SemileptonicProcessor(
            variations=args.variations,
            cuts=Cuts(
                lepton_pt_min=args.lepton_pt_min,
                jet_pt_min=args.jet_pt_min,
                met_min=args.met_min,
                n_jets_min=args.n_jets_min,
                n_bjets_min=args.n_bjets_min,
            ),
            require=require,
            btag_branch=args.btag_branch,
            btag_wp=args.btag_wp,
            lumi_pb=args.lumi_pb,
            features=FeatureConfig(n_jets=args.n_jets_stored),
            model=args.model,
            model_features=args.model_features,
            score_column=args.score_column or "score",
        )
        fileset = {args.sample: list(args.inputs)} if args.sample else list(args.inputs)
        if args.scheduler:
            from distributed import Client

            try:
                client = Client(args.scheduler)
            except OSError as exc:
                raise ColumnarError(
                    f"cannot reach the Dask scheduler at {args.scheduler}: {exc}"
                ) from exc
        result = run_columnar(
            fileset,
            processor,
            output=args.output,
            executor=args.executor,
            client=client,
            workers=args.workers,
            chunksize=args.chunksize,
            maxchunks=args.maxchunks,
            skip_bad_files=args.skip_bad_files,
            progress=not args.no_progress,
            keep_checkpoints=args.keep_checkpoints,
        )
    except (ColumnarError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        checkpoints = Path(args.output) / ".checkpoints"
        done = 0
        if processor is not None:
            kept = AtomicCheckpointer(os.fspath(checkpoints), fingerprint=processor.fingerprint())
            done = kept.count()
        print(interrupted_message(checkpoints, done), file=sys.stderr)
        return 130
    finally:
        if client is not None:
            client.close()
    for sample, paths in result.paths.items():
        for variation, path in paths.items():
            rows = result.tables[sample][variation].num_rows
            print(f"{sample:20s} {variation:16s} {rows:10d} rows  {path}")
    print(f"manifest: {result.manifest}")
    for sample, variations in result.metadata.items():
        events = next(iter(variations.values()), {}).get("events") or {}
        if events and not events["complete"]:
            print(
                f"note: sample {sample!r}: {events['processed']} of {events['in_files']} events "
                "processed (--maxchunks); the weights are those of the whole sample",
                file=sys.stderr,
            )
    if result.bad_files:
        print(f"skipped {len(result.bad_files)} unreadable file(s):", file=sys.stderr)
        for path, reason in result.bad_files.items():
            print(f"  {path}: {reason}", file=sys.stderr)
    if not any(result.tables.values()):
        print("error: no input file could be read: no table was written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
