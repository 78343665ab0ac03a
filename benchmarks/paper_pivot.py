"""Learning to pivot (Louppe, Kagan, Cranmer, arXiv:1611.01046, section 5.1) through the API.

The toy of :func:`analysis_lib.datasets.toys.make_pivot_toy` (``Y = 0`` correlated Gaussian,
``Y = 1`` Gaussian whose second coordinate is shifted by the nuisance ``Z ~ N(0, 1)``) is
learnt twice by :class:`analysis_lib.training.pivot.PivotClassifier`, with the same settings
and seed, at ``lam = 0`` (a plain classifier) and at the paper's ``lam = 50``
(mixture-density adversary on all events). For each:

``ks``
    Kolmogorov-Smirnov distance between the classifier output on events generated at
    ``Z = -1`` and at ``Z = +1`` (both classes, the paper's ``f(X | Z = z)``, Fig. 2);
``refit_nll``
    held-out negative log-likelihood of ``Z`` given ``f(X)`` of a fresh adversary trained on
    the frozen classifier (:func:`analysis_lib.training.pivot.refit_adversary_nll`); a pivot
    gives the entropy of the prior, ``0.5 log(2 pi e) = 1.4189``.

Targets: ``ks(lam=0) / ks(lam=50) >= 8`` and ``|refit_nll(lam=50) - 1.419| <= 0.02``.
Results go to ``benchmarks/results/paper_pivot.json`` (atomically); a summary is printed::

    .venv/bin/python -m benchmarks.paper_pivot
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._paper import parse_args, timed_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "paper_pivot.json"
PRIOR_ENTROPY = 0.5 * math.log(2.0 * math.pi * math.e)  # N(0, 1)
KS_RATIO_TARGET = 8.0
NLL_TOLERANCE = 0.02


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    from scipy.stats import ks_2samp
    from sklearn.metrics import roc_auc_score

    from analysis_lib.datasets.toys import make_pivot_toy
    from analysis_lib.training.pivot import PivotClassifier, refit_adversary_nll

    n = args.events_per_class
    X, y, z = make_pivot_toy(n, seed=1)
    X_adv, _, z_adv = make_pivot_toy(n, seed=2)
    X_test, y_test, z_test = make_pivot_toy(n, seed=3)
    X_minus, y_minus, _ = make_pivot_toy(args.ks_events_per_class, z=-1.0, seed=4)
    X_plus, y_plus, _ = make_pivot_toy(args.ks_events_per_class, z=1.0, seed=5)
    settings = {
        "hidden_units": (64, 64),
        "adversary": "gaussian_mixture",
        "n_components": 5,
        "adversary_hidden_units": (32, 32),
        "adversary_steps": args.adversary_steps,
        "pretrain_epochs": args.pretrain_epochs,
        "adversary_pretrain_epochs": args.pretrain_epochs,
        "epochs": args.epochs,
        "batch_size": 256,
        "learning_rate": 3e-4,
        "adversary_learning_rate": 1e-3,
        "seed": args.seed,
    }
    out: dict[str, Any] = {}
    for lam in (0.0, args.lam):
        tic = time.perf_counter()
        clf = PivotClassifier(lam=lam, **settings).fit(X, y, z=z)
        fit_s = time.perf_counter() - tic
        p_minus = clf.predict_proba(X_minus)[:, 1]
        p_plus = clf.predict_proba(X_plus)[:, 1]
        tic = time.perf_counter()
        refit = refit_adversary_nll(clf, X_adv, z_adv, X_test, z_test, epochs=10, seed=args.seed)
        out[f"lam_{lam:g}"] = {
            "lam": lam,
            "fit_s": fit_s,
            "refit_s": time.perf_counter() - tic,
            "ks": float(ks_2samp(p_minus, p_plus).statistic),
            "ks_y1": float(ks_2samp(p_minus[y_minus == 1], p_plus[y_plus == 1]).statistic),
            "auc": float(roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])),
            "accuracy": float(np.mean(clf.predict(X_test) == y_test)),
            "adversary_nll": clf.adversary_nll(X_test, z_test),
            "refit_nll": refit,
        }
        print(f"lam={lam:g}: {out[f'lam_{lam:g}']}", flush=True)
    base, pivot = out["lam_0"], out[f"lam_{args.lam:g}"]
    ks_ratio = base["ks"] / max(pivot["ks"], 1e-12)
    nll_diff = pivot["refit_nll"] - PRIOR_ENTROPY
    return {
        "results": out,
        "ks_ratio": ks_ratio,
        "ks_ratio_target": KS_RATIO_TARGET,
        "refit_nll_minus_prior_entropy": nll_diff,
        "prior_entropy": PRIOR_ENTROPY,
        "nll_tolerance": NLL_TOLERANCE,
        "pass": bool(ks_ratio >= KS_RATIO_TARGET and abs(nll_diff) <= NLL_TOLERANCE),
        "settings": {
            **settings,
            "lam": args.lam,
            "events_per_class": n,
            "ks_events_per_class": args.ks_events_per_class,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events-per-class", type=int, default=25_000)
    parser.add_argument("--ks-events-per-class", type=int, default=50_000)
    parser.add_argument("--lam", type=float, default=50.0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--adversary-steps", type=int, default=3)
    args = parse_args(parser, RESULTS, argv)
    report = timed_report(run, args)
    print(
        f"KS ratio {report['ks_ratio']:.1f} (target >= {KS_RATIO_TARGET}), refit NLL "
        f"{report['results'][f'lam_{args.lam:g}']['refit_nll']:.4f} "
        f"(prior entropy {PRIOR_ENTROPY:.4f} +- {NLL_TOLERANCE}), "
        f"{'PASS' if report['pass'] else 'FAIL'}, {report['total_s']:.0f} s"
    )
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
