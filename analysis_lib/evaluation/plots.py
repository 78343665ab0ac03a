"""Evaluation plots with matplotlib and mplhep; each function draws on ``ax`` and returns it.

* :func:`plot_roc` — one or more ROC curves (signal efficiency vs background efficiency);
* :func:`plot_score_distributions` — score histograms, overlaid steps or stacked fills;
* :func:`plot_template` — one sample's nominal score histogram with every variation;
* :func:`plot_significance_vs_threshold` — a :class:`~.thresholds.ThresholdScan`;
* :func:`plot_auc_vs_parameter` — AUC against a physics parameter θ (parameterised
  classifiers), with an optional reference (Bayes-optimal AUC, scalar or per θ).

Nothing changes matplotlib's global state: pass ``ax`` to draw into your own figure (a new
figure is made otherwise) and apply a style (``plt.style.use(mplhep.style.CMS)``) yourself.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> ax = plot_auc_vs_parameter([-1.5, -0.5, 0.5, 1.5], [0.949, 0.95, 0.95, 0.948],
...                            reference=0.9501)
>>> len(ax.lines)
2
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import mplhep
import numpy as np
from matplotlib.axes import Axes
from numpy.typing import ArrayLike

from .roc import RocCurve
from .templates import Template
from .thresholds import ThresholdScan
from .validation import finite_1d

__all__ = [
    "plot_auc_vs_parameter",
    "plot_roc",
    "plot_score_distributions",
    "plot_significance_vs_threshold",
    "plot_template",
]


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots()
    return ax


def plot_roc(
    curves: RocCurve | Mapping[str, RocCurve],
    *,
    ax: Axes | None = None,
    diagonal: bool = True,
) -> Axes:
    """ROC curves, labelled with their AUC, and the random-guess diagonal.

    Parameters
    ----------
    curves : RocCurve or mapping of str to RocCurve
        One curve, or several by label.
    ax : matplotlib Axes, optional
    diagonal : bool
        Draw the diagonal of a random classifier.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from analysis_lib.evaluation.roc import roc_curve
    >>> ax = plot_roc({"BDT": roc_curve([0, 1, 0, 1], [0.1, 0.9, 0.4, 0.3])})
    >>> ax.get_legend_handles_labels()[1]
    ['BDT (AUC = 0.750)', 'random']
    """
    if isinstance(curves, RocCurve):
        curves = {"ROC": curves}
    if not curves:
        raise ValueError("no ROC curves to plot")
    ax = _axes(ax)
    for label, curve in curves.items():
        if not isinstance(curve, RocCurve):
            raise ValueError(f"curve {label!r} must be a RocCurve, got {type(curve).__name__}")
        ax.plot(curve.fpr, curve.tpr, label=f"{label} (AUC = {curve.auc:.3f})")
    if diagonal:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    ax.set_xlabel("background efficiency")
    ax.set_ylabel("signal efficiency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend()
    return ax


def plot_score_distributions(
    histograms: Mapping[str, ArrayLike],
    edges: ArrayLike,
    *,
    stack: bool = False,
    density: bool = False,
    ax: Axes | None = None,
    xlabel: str = "classifier score",
    ylabel: str | None = None,
) -> Axes:
    """Score histograms by label: overlaid steps, or stacked fills with ``stack=True``.

    Parameters
    ----------
    histograms : mapping of str to array_like
        Counts per bin for each label (a sample, or a variation such as ``jes_up``).
    edges : array_like
        The common bin edges.
    stack : bool
        Stack the histograms as filled areas (samples) instead of overlaid steps
        (variations).
    density : bool
        Normalise each histogram to unit area (shape comparison); not with ``stack``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_score_distributions({"nominal": [3.0, 1.0], "jes_up": [2.5, 1.5]},
    ...                               [0.0, 0.5, 1.0])
    >>> ax.get_legend_handles_labels()[1]
    ['nominal', 'jes_up']
    """
    if not histograms:
        raise ValueError("no histograms to plot")
    if stack and density:
        raise ValueError("density=True cannot be combined with stack=True")
    edges = finite_1d("edges", edges)
    if len(edges) < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"edges must increase, with at least two of them, got {edges.tolist()}")
    labels = [str(key) for key in histograms]  # keys such as masses become legend labels
    hists = []
    for label, values in zip(labels, histograms.values(), strict=True):
        h = finite_1d(f"histogram {label!r}", values)
        if density and not h.sum() > 0:
            raise ValueError(f"histogram {label!r} is empty: density=True cannot normalise it")
        if len(h) != len(edges) - 1:
            raise ValueError(
                f"histogram {label!r} has {len(h)} bins, the edges give {len(edges) - 1}"
            )
        hists.append(h)
    ax = _axes(ax)
    mplhep.histplot(
        hists,
        edges,
        stack=stack,
        density=density,
        histtype="fill" if stack else "step",
        label=labels,
        ax=ax,
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or ("density" if density else "events"))
    handles, names = ax.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: labels.index(names[i]))
    ax.legend([handles[i] for i in order], [names[i] for i in order])
    return ax


def plot_template(
    template: Template,
    *,
    ax: Axes | None = None,
    density: bool = False,
    xlabel: str = "classifier score",
) -> Axes:
    """The nominal histogram of a template and each variation's up and down histograms.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> t = Template([0.0, 0.5, 1.0], [3.0, 1.0], variations={"jes": ([3.3, 1.2], [2.7, 0.8])})
    >>> plot_template(t).get_legend_handles_labels()[1]
    ['nominal', 'jes_up', 'jes_down']
    """
    if not isinstance(template, Template):
        raise ValueError(f"template must be a Template, got {type(template).__name__}")
    histograms: dict[str, np.ndarray] = {"nominal": template.nominal}
    for name, (up, down) in template.variations.items():
        histograms[f"{name}_up"] = up
        histograms[f"{name}_down"] = down
    return plot_score_distributions(
        histograms, template.edges, ax=ax, density=density, xlabel=xlabel
    )


def plot_significance_vs_threshold(
    scan: ThresholdScan,
    *,
    ax: Axes | None = None,
    label: str = "AMS",
    mark_best: bool = True,
) -> Axes:
    """The metric of a threshold scan against the threshold, with the best one marked.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from analysis_lib.evaluation.thresholds import scan_thresholds
    >>> scan = scan_thresholds([0, 1, 0, 1], [0.1, 0.9, 0.4, 0.7])
    >>> ax = plot_significance_vs_threshold(scan)
    >>> len(ax.lines), ax.get_legend_handles_labels()[1]
    (2, ['AMS', 'best: 0.400'])
    """
    if not isinstance(scan, ThresholdScan):
        raise ValueError(f"scan must be a ThresholdScan, got {type(scan).__name__}")
    ax = _axes(ax)
    ax.plot(scan.thresholds, scan.values, label=label)
    if mark_best:
        ax.axvline(
            scan.best_threshold,
            linestyle="--",
            color="grey",
            label=f"best: {scan.best_threshold:.3f}",
        )
    ax.set_xlabel("threshold on the classifier score")
    ax.set_ylabel(label)
    ax.legend()
    return ax


def plot_auc_vs_parameter(
    values: ArrayLike,
    aucs: ArrayLike,
    *,
    reference: float | ArrayLike | None = None,
    ax: Axes | None = None,
) -> Axes:
    """AUC at each value of a physics parameter θ, with an optional reference line.

    Parameters
    ----------
    values : array_like, shape (n,)
        The parameter values (e.g. the Z' mass, or θ of the 1D toy).
    aucs : array_like, shape (n,)
        The AUC at each value.
    reference : float or array_like of shape (n,), optional
        The best achievable AUC (Bayes optimum): one number (horizontal line) or one per
        value (a line through the values).
    ax : matplotlib Axes, optional

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_auc_vs_parameter([0.5, 1.5], [0.95, 0.94], reference=[0.951, 0.945])
    >>> ax.get_legend_handles_labels()[1]
    ['classifier', 'reference']
    """
    x = finite_1d("values", values)
    y = finite_1d("aucs", aucs)
    if len(x) != len(y):
        raise ValueError(f"mismatched lengths: values has {len(x)}, aucs has {len(y)}")
    ax = _axes(ax)
    order = np.argsort(x, kind="mergesort")
    ax.plot(x[order], y[order], marker="o", label="classifier")
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim == 0:
            if not np.isfinite(ref):
                raise ValueError(f"reference must be finite, got {reference!r}")
            ax.axhline(float(ref), linestyle="--", color="grey", label="reference")
        else:
            ref = finite_1d("reference", ref)
            if len(ref) != len(x):
                raise ValueError(
                    f"mismatched lengths: reference has {len(ref)}, values has {len(x)}"
                )
            ax.plot(x[order], ref[order], linestyle="--", color="grey", label="reference")
    ax.set_xlabel(r"parameter $\theta$")
    ax.set_ylabel("AUC")
    ax.legend()
    return ax
