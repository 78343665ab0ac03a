"""Score templates, the pyhf workspace builder, and the Asimov significance and sigma(mu)."""

from __future__ import annotations

import json
import math

import numpy as np
import pyhf
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from analysis_lib.evaluation import (
    VARIATION_SOURCES,
    Template,
    asimov_data,
    asimov_z0,
    build_workspace,
    expected_discovery_significance,
    expected_mu_uncertainty,
    expected_sensitivity,
    histogram,
    make_model,
    make_template,
    template_from_variations,
)

EDGES = np.linspace(0.0, 1.0, 6)
SIG = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
BKG = np.array([100.0, 50.0, 20.0, 10.0, 5.0])


def _modifiers(ws: dict, sample: str) -> dict[str, dict]:
    (channel,) = ws["channels"]
    (entry,) = [s for s in channel["samples"] if s["name"] == sample]
    return {m["name"]: m for m in entry["modifiers"]}


# ---------------------------------------------------------------------------- templates


def test_make_template_histograms_nominal_and_variations():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 500)
    w = rng.uniform(0.5, 1.5, 500)
    up_w, down_w = 1.1 * w, 0.9 * w
    x_up, x_down = np.clip(x + 0.05, 0, 1), np.clip(x - 0.05, 0, 1)
    t = make_template(
        x,
        w,
        bins=EDGES,
        weight_variations={"btag_sf": (up_w, down_w)},
        shape_variations={"jes": ((x_up, w), (x_down, w))},
    )
    np.testing.assert_allclose(t.nominal, np.histogram(x, EDGES, weights=w)[0], rtol=1e-12)
    np.testing.assert_allclose(t.sumw2, np.histogram(x, EDGES, weights=w**2)[0], rtol=1e-12)
    np.testing.assert_allclose(t.variations["btag_sf"][0], 1.1 * t.nominal, rtol=1e-12)
    np.testing.assert_allclose(
        t.variations["jes"][1], np.histogram(x_down, EDGES, weights=w)[0], rtol=1e-12
    )
    assert t.n_bins == 5


def test_flow_clip_and_drop():
    counts, _ = histogram([-0.5, 0.1, 0.99, 1.0, 7.0], None, [0.0, 0.5, 1.0])
    assert counts.tolist() == [2.0, 3.0]
    dropped, _ = histogram([-0.5, 0.1, 0.99, 1.0, 7.0], None, [0.0, 0.5, 1.0], flow="drop")
    assert dropped.tolist() == [1.0, 2.0]


def test_template_from_columnar_style_variations():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 200)
    w = np.full(200, 0.5)
    tables = {
        "nominal": (x, w),
        "jes_up": (np.clip(x * 1.05, 0, 1), w),
        "jes_down": (x * 0.95, w),
        "lepton_sf_up": (x, 1.02 * w),
        "lepton_sf_down": (x, 0.98 * w),
    }
    t = template_from_variations(tables, bins=4)
    assert sorted(t.variations) == ["jes", "lepton_sf"]
    np.testing.assert_allclose(t.variations["lepton_sf"][0], 1.02 * t.nominal, rtol=1e-12)
    with pytest.raises(ValueError, match="'jes_sideways' is not named <source>_up"):
        template_from_variations(tables | {"jes_sideways": (x, w)}, bins=4)
    with pytest.raises(ValueError, match="no 'nominal'"):
        template_from_variations({"jes_up": (x, w), "jes_down": (x, w)}, bins=4)


def test_variation_sources_are_the_columnar_ones():
    from analysis_lib.columnar import VARIATIONS

    sources = []
    for variation in VARIATIONS.values():
        if variation.source is not None and variation.source not in sources:
            sources.append(variation.source)
    assert tuple(sources) == VARIATION_SOURCES


# ---------------------------------------------------------------------- the builder


@pytest.mark.filterwarnings("ignore:.*RefResolver:DeprecationWarning")
def test_builder_is_pure_data_and_classifies_modifiers():
    bkg = Template(
        EDGES,
        BKG,
        sumw2=BKG / 4,
        variations={
            "btag_sf": (1.05 * BKG, 0.97 * BKG),  # pure normalisation
            "jes": (BKG * np.linspace(0.9, 1.1, 5), BKG * np.linspace(1.1, 0.9, 5)),  # shape
            "lepton_sf": (BKG.copy(), BKG.copy()),  # no effect: left out
        },
    )
    sig = Template(EDGES, SIG, sumw2=SIG / 10, variations={"jes": (SIG * 1.02, SIG * 0.98)})
    ws = build_workspace(sig, bkg, staterror=True)
    json.dumps(ws)  # plain data, serialisable as is
    pyhf.Workspace(ws)  # valid against pyhf's schema

    bkg_mods = _modifiers(ws, "background")
    assert set(bkg_mods) == {"btag_sf", "jes", "staterror"}
    assert bkg_mods["btag_sf"]["type"] == "normsys"
    assert bkg_mods["btag_sf"]["data"] == pytest.approx({"hi": 1.05, "lo": 0.97})
    assert bkg_mods["jes"]["type"] == "histosys"
    assert bkg_mods["jes"]["data"]["hi_data"] == pytest.approx(BKG * np.linspace(0.9, 1.1, 5))
    assert bkg_mods["staterror"]["data"] == pytest.approx(np.sqrt(BKG / 4))
    sig_mods = _modifiers(ws, "signal")
    assert sig_mods["mu"]["type"] == "normfactor"
    assert sig_mods["jes"]["type"] == "normsys"
    assert ws["observations"][0]["data"] == pytest.approx(SIG + BKG)

    # the same name on two samples is one (correlated) nuisance parameter
    model = make_model(ws)
    assert model.config.par_order.count("jes") == 1
    assert set(model.config.par_order) == {"mu", "jes", "btag_sf", "staterror"}
    np.testing.assert_allclose(asimov_data(model)[: len(SIG)], SIG + BKG)


def test_staterror_on_named_samples_only():
    sig = Template(EDGES, SIG)  # no sumw2: fine when only the background gets staterror
    bkg = Template(EDGES, BKG, sumw2=BKG / 9)
    ws = build_workspace(sig, bkg, staterror=["background"])
    assert "staterror" not in _modifiers(ws, "signal")
    assert _modifiers(ws, "background")["staterror"]["data"] == pytest.approx(np.sqrt(BKG) / 3)
    assert expected_discovery_significance(ws) < expected_discovery_significance(
        build_workspace(sig, bkg)
    )


def test_several_backgrounds_and_extra_variation_names():
    sig = Template(EDGES, SIG)
    bkgs = {
        "ttbar": Template(EDGES, BKG, variations={"qcd_scale": (1.1 * BKG, 0.9 * BKG)}),
        "wjets": Template(EDGES, BKG / 2),
    }
    with pytest.raises(ValueError, match="unknown variation 'qcd_scale' in sample 'ttbar'"):
        build_workspace(sig, bkgs)
    for reserved in ("mu", "staterror"):  # pyhf's InvalidNameReuse, deep in its model
        clash = {"ttbar": Template(EDGES, BKG, variations={reserved: (1.1 * BKG, 0.9 * BKG)})}
        with pytest.raises(ValueError, match=f"variation '{reserved}' in sample 'ttbar' has"):
            build_workspace(sig, clash, known_variations=[reserved])
    ws = build_workspace(sig, bkgs, known_variations=[*VARIATION_SOURCES, "qcd_scale"])
    assert [s["name"] for s in ws["channels"][0]["samples"]] == ["signal", "ttbar", "wjets"]
    assert ws["observations"][0]["data"] == pytest.approx(SIG + 1.5 * BKG)


def test_a_variation_that_empties_a_sample_is_a_shape_not_a_zero_normsys():
    """A rare background whose few MC events all leave the selection under jes down: a
    factor of 0 has no logarithm for normsys' exponential interpolation."""
    sig = Template(EDGES, SIG)
    rare = BKG / 50
    bkgs = {
        "ttbar": Template(EDGES, BKG),
        "rare": Template(EDGES, rare, variations={"jes": (1.02 * rare, 0 * rare)}),
    }
    ws = build_workspace(sig, bkgs)
    jes = _modifiers(ws, "rare")["jes"]
    assert jes["type"] == "histosys" and jes["data"]["lo_data"] == [0.0] * 5
    result = expected_sensitivity(ws)
    without = expected_sensitivity(build_workspace(sig, {**bkgs, "rare": Template(EDGES, rare)}))
    assert math.isfinite(result.z0) and 0 < result.z0 <= without.z0 + 1e-6


# ------------------------------------------------------------------------ inference


def test_significance_without_systematics_is_the_per_bin_asimov_combination():
    ws = build_workspace(Template(EDGES, SIG), Template(EDGES, BKG))
    z = expected_discovery_significance(ws)
    expected = math.sqrt(sum(asimov_z0(s, b) ** 2 for s, b in zip(SIG, BKG, strict=True)))
    assert z == pytest.approx(expected, rel=1e-6)

    # pyhf's own hypotest (q0, asymptotics) gives the same p-value
    model = make_model(ws)
    p0 = pyhf.infer.hypotest(0.0, asimov_data(model), model, test_stat="q0")
    assert float(norm.isf(float(p0))) == pytest.approx(expected, rel=1e-5)


def test_sigma_mu_without_systematics_is_the_fisher_information():
    ws = build_workspace(Template(EDGES, SIG), Template(EDGES, BKG))
    fisher = float(np.sum(SIG**2 / (SIG + BKG)))
    assert expected_mu_uncertainty(ws) == pytest.approx(1 / math.sqrt(fisher), rel=1e-6)


def test_profile_width_matches_the_single_bin_likelihood():
    s, b = 12.0, 30.0
    ws = build_workspace(Template([0, 1], [s]), Template([0, 1], [b]))
    n = s + b

    def t(mu: float) -> float:  # -2 ln L(mu) / L(1) on the Asimov count n = s + b
        lam = mu * s + b
        return 2 * ((lam - n * math.log(lam)) - (n - n * math.log(n))) - 1.0

    upper = brentq(t, 1.0, 5.0, xtol=1e-12)
    lower = brentq(t, 0.0, 1.0, xtol=1e-12)
    got = expected_mu_uncertainty(ws, method="profile")
    assert got == pytest.approx((upper - lower) / 2, rel=1e-4)


def test_systematics_lower_the_significance_and_widen_sigma_mu():
    sig = Template(EDGES, SIG, sumw2=SIG / 50)
    plain = expected_sensitivity(build_workspace(sig, Template(EDGES, BKG, sumw2=BKG / 50)))
    norm_only = Template(EDGES, BKG, sumw2=BKG / 50, variations={"btag_sf": (1.1 * BKG, 0.9 * BKG)})
    shape = Template(
        EDGES,
        BKG,
        sumw2=BKG / 50,
        variations={"jes": (BKG * np.linspace(0.85, 1.15, 5), BKG * np.linspace(1.15, 0.85, 5))},
    )
    results = {
        "normsys": expected_sensitivity(build_workspace(sig, norm_only)),
        "histosys": expected_sensitivity(build_workspace(sig, shape)),
        "staterror": expected_sensitivity(
            build_workspace(sig, Template(EDGES, BKG, sumw2=BKG), staterror=True)
        ),
    }
    for name, result in results.items():
        assert result.z0 < plain.z0 - 0.01, name
        assert result.sigma_mu > plain.sigma_mu * 1.001, name
        assert result.p0 == pytest.approx(norm.sf(result.z0))
    # both systematics together: lower still
    both = Template(
        EDGES, BKG, variations={"btag_sf": norm_only.variations["btag_sf"]} | shape.variations
    )
    z_both = expected_discovery_significance(build_workspace(Template(EDGES, SIG), both))
    assert z_both < min(results["normsys"].z0, results["histosys"].z0)


def test_profile_and_hessian_widths_agree_for_large_counts():
    sig, bkg = 10 * SIG, 10 * BKG
    template = Template(EDGES, bkg, variations={"btag_sf": (1.05 * bkg, 0.95 * bkg)})
    ws = build_workspace(Template(EDGES, sig), template)
    hessian = expected_mu_uncertainty(ws)
    profile = expected_mu_uncertainty(ws, method="profile")
    assert profile == pytest.approx(hessian, rel=0.01)


def test_one_bin_normalisation_uncertainty_approaches_ams1():
    # one bin with a Gaussian-constrained normalisation is the HiggsML AMS1 model up to the
    # interpolation of the normalisation (exponential in pyhf, linear in AMS1)
    from analysis_lib.evaluation import ams1

    s, b = 10.0, 100.0
    for rel, tol in ((0.01, 1e-4), (0.05, 5e-3)):
        bkg = Template([0, 1], [b], variations={"jes": ([b * (1 + rel)], [b * (1 - rel)])})
        z = expected_discovery_significance(build_workspace(Template([0, 1], [s]), bkg))
        assert z == pytest.approx(ams1(s, b, rel * b), rel=tol)
        assert z < asimov_z0(s, b)


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: build_workspace(Template(EDGES, SIG), Template(np.linspace(0, 1, 5), BKG[:4])),
            r"sample 'background' has bin edges \[0.0, 0.25, 0.5, 0.75, 1.0\], the signal has",
        ),
        (
            lambda: build_workspace(
                Template(EDGES, SIG), Template(EDGES, BKG, variations={"jez": (BKG, BKG)})
            ),
            r"unknown variation 'jez' in sample 'background'; known variations: btag_sf, jer",
        ),
        (
            lambda: build_workspace(Template(EDGES, SIG), Template(EDGES, [1.0, 2, 0, 4, 5])),
            r"the background is 0.0 in bin 2 \[0.4, 0.6000000000000001\)",
        ),
        (
            lambda: build_workspace(Template(EDGES, [1.0, -2, 0, 4, 5]), Template(EDGES, BKG)),
            r"sample 'signal' nominal is negative in bin 1",
        ),
        (
            lambda: build_workspace(
                Template(EDGES, SIG),
                Template(EDGES, BKG, variations={"jes": (BKG, BKG - 30.0)}),
            ),
            r"sample 'background' variation 'jes' down is negative in bin 2",
        ),
        (
            lambda: build_workspace(Template(EDGES, SIG), Template(EDGES, BKG), staterror=True),
            r"staterror needs the sum of squared weights of sample 'signal'",
        ),
        (
            lambda: build_workspace(Template(EDGES, SIG), Template(EDGES, BKG), poi_bounds=(2, 5)),
            r"poi_bounds must be finite and contain 0 and 1; got \(2, 5\)",
        ),
        (lambda: build_workspace(Template(EDGES, SIG), {}), "no background samples"),
        (
            lambda: build_workspace(Template(EDGES, SIG), Template(EDGES, BKG), staterror=["bkg"]),
            r"unknown samples \['bkg'\]; the samples are \['background', 'signal'\]",
        ),
        (lambda: Template(EDGES, BKG[:3]), r"nominal has 3 bins, the template has 5"),
        (
            lambda: Template(EDGES, BKG, variations={"jes": (BKG, BKG[:2])}),
            r"variation 'jes' down has 2 bins, the template has 5",
        ),
        (lambda: Template([0.0, 0.5, 0.5, 1.0], [1, 2, 3]), r"edge 2 \(0.5\) follows 0.5"),
        (lambda: Template(EDGES, [1.0, np.inf, 1, 1, 1]), r"nominal\[1\] is inf"),
        (
            lambda: make_template([0.1, 0.2], [1.0], bins=2),
            r"weights has 1, the scores have 2",
        ),
        (
            lambda: make_template([0.1, np.nan], bins=2),
            r"scores\[1\] is nan",
        ),
        (
            lambda: make_template(
                [0.1, 0.2], bins=2, weight_variations={"btag_sf": ([1.0], [1.0, 1.0])}
            ),
            r"weight variation 'btag_sf' up has 1, the scores have 2",
        ),
        (lambda: expected_mu_uncertainty({"channels": []}), "not a valid pyhf workspace"),
    ],
)
def test_bad_input_is_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
