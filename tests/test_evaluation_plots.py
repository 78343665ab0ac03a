"""Evaluation plots: each returns its Axes, draws the expected artists, and saves to PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from analysis_lib.evaluation import (
    Template,
    plot_auc_vs_parameter,
    plot_roc,
    plot_score_distributions,
    plot_significance_vs_threshold,
    plot_template,
    roc_curve,
    scan_thresholds,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _save(ax, path) -> None:
    ax.figure.savefig(path)
    assert path.exists() and path.stat().st_size > 1000


def _events(seed=0, n=400):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, rng.normal(y, 1.0)


def test_plot_roc(tmp_path):
    y, scores = _events()
    curves = {"good": roc_curve(y, scores), "worse": roc_curve(y, scores + np.sin(9 * scores))}
    ax = plot_roc(curves)
    assert len(ax.lines) == 3  # two curves and the diagonal
    labels = ax.get_legend_handles_labels()[1]
    assert labels[0] == f"good (AUC = {curves['good'].auc:.3f})"
    assert labels[1].startswith("worse (AUC = ") and labels[2] == "random"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), curves["good"].fpr)
    _save(ax, tmp_path / "roc.png")
    assert len(plot_roc(curves["good"], diagonal=False).lines) == 1


def test_plot_score_distributions_overlaid_and_stacked(tmp_path):
    edges = np.linspace(0, 1, 6)
    hists = {
        "nominal": [5.0, 4, 3, 2, 1],
        "jes_up": [4.0, 4, 3, 2, 2],
        "jes_down": [6.0, 4, 3, 2, 0],
    }
    ax = plot_score_distributions(hists, edges)
    assert ax.get_legend_handles_labels()[1] == ["nominal", "jes_up", "jes_down"]
    assert len(ax.patches) == 3
    _save(ax, tmp_path / "overlaid.png")

    # keys that are not strings, e.g. signal masses (failed in the legend's ordering)
    ax = plot_score_distributions({500: [1.0, 1, 1, 1, 1], 1000: [0.0, 1, 1, 2, 3]}, edges)
    assert ax.get_legend_handles_labels()[1] == ["500", "1000"]

    _, own = plt.subplots()
    samples = {"ttbar": [5.0, 4, 3, 2, 1], "wjets": [2.0, 2, 1, 1, 1]}
    ax = plot_score_distributions(samples, edges, stack=True, ax=own)
    assert ax is own
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ttbar", "wjets"]
    # the stack reaches the sum of the samples
    assert ax.get_ylim()[1] >= 7.0
    _save(ax, tmp_path / "stacked.png")


def test_plot_template_draws_every_variation(tmp_path):
    nominal = np.array([10.0, 6, 3])
    t = Template(
        [0, 0.3, 0.6, 1.0],
        nominal,
        variations={"jes": (nominal * 1.1, nominal * 0.9), "btag_sf": (nominal * 1.02, nominal)},
    )
    ax = plot_template(t, density=True)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["nominal", "jes_up", "jes_down", "btag_sf_up", "btag_sf_down"]
    assert ax.get_ylabel() == "density"
    _save(ax, tmp_path / "template.png")


def test_plot_significance_vs_threshold(tmp_path):
    y, scores = _events(1)
    scan = scan_thresholds(y, scores, thresholds=25)
    ax = plot_significance_vs_threshold(scan, label="AMS")
    assert len(ax.lines) == 2
    assert ax.get_legend_handles_labels()[1] == ["AMS", f"best: {scan.best_threshold:.3f}"]
    assert ax.lines[1].get_xdata()[0] == scan.best_threshold
    _save(ax, tmp_path / "significance.png")


@pytest.mark.parametrize(
    ("reference", "n_lines"), [(None, 1), (0.9501, 2), ([0.95, 0.949, 0.95, 0.951], 2)]
)
def test_plot_auc_vs_parameter(tmp_path, reference, n_lines):
    values = [1.5, -1.5, 0.5, -0.5]
    aucs = [0.948, 0.949, 0.95, 0.9495]
    ax = plot_auc_vs_parameter(values, aucs, reference=reference)
    assert len(ax.lines) == n_lines
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [-1.5, -0.5, 0.5, 1.5])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [0.949, 0.9495, 0.95, 0.948])
    if isinstance(reference, list):
        np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.949, 0.951, 0.95, 0.95])
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["classifier", "reference"][:n_lines]
    _save(ax, tmp_path / "auc.png")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plot_auc_vs_parameter([1, 2], [0.9]), "values has 2, aucs has 1"),
        (lambda: plot_auc_vs_parameter([1, 2], [0.9, np.nan]), r"aucs\[1\] is nan"),
        (
            lambda: plot_auc_vs_parameter([1, 2], [0.9, 0.8], reference=[0.9]),
            "reference has 1, values has 2",
        ),
        (lambda: plot_score_distributions({"a": [1.0, 2.0]}, [0, 1]), "'a' has 2 bins"),
        (lambda: plot_score_distributions({}, [0, 1]), "no histograms"),
        (
            lambda: plot_score_distributions({"a": [1.0, 2.0]}, [0, 1, 0.5]),
            r"edges must increase, with at least two of them, got \[0.0, 1.0, 0.5\]",
        ),
        (
            lambda: plot_score_distributions({"a": [0.0, 0.0]}, [0, 1, 2], density=True),
            "histogram 'a' is empty: density=True cannot normalise it",
        ),
        (lambda: plot_roc({}), "no ROC curves"),
        (lambda: plot_significance_vs_threshold([1, 2]), "must be a ThresholdScan"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
