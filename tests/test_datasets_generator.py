"""The Pythia 8 -> NanoAOD-like generator and the sample registry (analysis_lib.datasets).

Generation tests are marked slow. Between them they generate about 1,800 events
(about 25 s on 2 cores), each into its own temporary cache directory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from analysis_lib.datasets import pythia, registry
from analysis_lib.datasets.detector import DetectorModel, draw_btag
from analysis_lib.datasets.registry import (
    UnknownSampleError,
    generate,
    list_samples,
    load_metadata,
    luminosity_weight,
    sample_info,
    sample_path,
)

SEED = 11
TTBAR_EVENTS = 400
ZPRIME_EVENTS = 200
CHUNK = 100

#: Branch -> awkward type of one entry, the contract with analysis_lib.columnar.
EXPECTED_BRANCHES = {
    "run": "uint32",
    "luminosityBlock": "uint32",
    "event": "uint64",
    "genWeight": "float32",
    "Generator_weight": "float32",
    "Generator_id1": "int32",
    "Generator_id2": "int32",
    "Generator_x1": "float32",
    "Generator_x2": "float32",
    "Generator_scalePDF": "float32",
    "nJet": "int32",
    "Jet_pt": "var * float32",
    "Jet_eta": "var * float32",
    "Jet_phi": "var * float32",
    "Jet_mass": "var * float32",
    "Jet_btagDeepFlavB": "var * float32",
    "Jet_hadronFlavour": "var * int32",
    "Jet_jetId": "var * int32",
    "nMuon": "int32",
    "Muon_pt": "var * float32",
    "Muon_eta": "var * float32",
    "Muon_phi": "var * float32",
    "Muon_mass": "var * float32",
    "Muon_charge": "var * int32",
    "Muon_tightId": "var * bool",
    "Muon_pfRelIso04_all": "var * float32",
    "nElectron": "int32",
    "Electron_pt": "var * float32",
    "Electron_eta": "var * float32",
    "Electron_phi": "var * float32",
    "Electron_mass": "var * float32",
    "Electron_charge": "var * int32",
    "Electron_cutBased": "var * int32",
    "Electron_pfRelIso03_all": "var * float32",
    "MET_pt": "float32",
    "MET_phi": "float32",
    "GenMET_pt": "float32",
    "GenMET_phi": "float32",
}


def events(path: Path) -> ak.Array:
    return uproot.open(path)["Events"].arrays()


def assert_same_events(a: Path, b: Path) -> None:
    x, y = events(a), events(b)
    assert x.fields == y.fields
    for field in x.fields:
        assert ak.all(x[field] == y[field], axis=None), field


@pytest.fixture(scope="module")
def ttbar(tmp_path_factory) -> Path:
    """tt̄, 400 events in 4 chunks, generated in this process."""
    cache = tmp_path_factory.mktemp("cache-ttbar")
    return generate(
        "ttbar_semilep",
        TTBAR_EVENTS,
        seed=SEED,
        cache_dir=cache,
        n_workers=1,
        chunk_size=CHUNK,
        progress=False,
    )


@pytest.fixture(scope="module")
def zprimes(tmp_path_factory) -> dict[int, Path]:
    """Z' at 500 and 2000 GeV, 200 events each, on two worker processes."""
    cache = tmp_path_factory.mktemp("cache-zprime")
    return {
        m: generate(
            f"zprime_m{m}",
            ZPRIME_EVENTS,
            seed=SEED,
            cache_dir=cache,
            n_workers=2,
            chunk_size=CHUNK,
            progress=False,
        )
        for m in (500, 2000)
    }


# ---------------------------------------------------------------------------------------
# fast: registry, validation, cache keys


def test_registry_names():
    assert list_samples() == [
        "ttbar_semilep",
        "zprime_m500",
        "zprime_m750",
        "zprime_m1000",
        "zprime_m1250",
        "zprime_m1500",
        "zprime_m2000",
    ]
    info = sample_info("zprime_m1250", cache_dir="/nonexistent/hepml")
    assert info["mass"] == 1250.0
    assert "32:m0 = 1250.0" in info["pythia_settings"]
    assert "32:onIfMatch = 6 -6" in info["pythia_settings"]
    assert info["generated"] is False and info["files"] == []
    tt = sample_info("ttbar_semilep", cache_dir="/nonexistent/hepml")
    assert tt["mass"] is None
    assert tt["pythia_settings"] == ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"]


@pytest.mark.parametrize("call", [generate, sample_info, sample_path])
def test_unknown_sample_lists_known_names(call):
    args = ("ttbar",) if call is sample_info else ("ttbar", 10)
    with pytest.raises(UnknownSampleError) as err:
        call(*args)
    message = str(err.value)
    assert "'ttbar'" in message
    for name in list_samples():
        assert name in message
    assert isinstance(err.value, KeyError)


@pytest.mark.parametrize("n_events", [0, -5, 2.5, True, "100", None])
def test_bad_n_events_names_the_value(n_events, tmp_path):
    with pytest.raises((ValueError, TypeError), match=re.escape(repr(n_events))):
        generate("ttbar_semilep", n_events, cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "value"),
    [
        ({"seed": -1}, "-1"),
        ({"seed": 1.5}, "1.5"),
        ({"chunk_size": 0}, "0"),
        ({"n_workers": 0}, "0"),
    ],
)
def test_bad_options_name_the_value(kwargs, value, tmp_path):
    with pytest.raises((ValueError, TypeError), match=re.escape(value)):
        generate("ttbar_semilep", 10, cache_dir=tmp_path, progress=False, **kwargs)


@pytest.mark.parametrize("mass", [300.0, float("inf"), float("nan")])
def test_zprime_mass_must_be_finite_and_above_the_threshold(mass):
    # inf went into the Pythia settings as "32:m0 = inf"
    with pytest.raises(ValueError, match=f"finite number above 2 m_t .*got {mass!r}"):
        pythia.zprime_settings(mass)


@pytest.mark.parametrize("n_workers", [0, -2, 1.5])
def test_generate_file_refuses_a_bad_worker_count(n_workers, tmp_path):
    # it used to take 0 or -2 as one worker and 1.5 as one, without a word
    config = pythia.GeneratorConfig(pythia.TTBAR_SETTINGS, n_events=5)
    with pytest.raises(
        (ValueError, TypeError),
        match=re.escape(f"n_workers must be a positive integer, got {n_workers!r}"),
    ):
        pythia.generate_file(
            config, tmp_path / "out" / "tt.root", n_workers=n_workers, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_cache_key_changes_with_configuration(tmp_path):
    base = sample_path("zprime_m750", 100, seed=1, cache_dir=tmp_path)
    assert base == sample_path("zprime_m750", 100, seed=1, cache_dir=tmp_path)
    variants = [
        sample_path("zprime_m750", 101, seed=1, cache_dir=tmp_path),
        sample_path("zprime_m750", 100, seed=2, cache_dir=tmp_path),
        sample_path("zprime_m750", 100, seed=1, chunk_size=500, cache_dir=tmp_path),
        sample_path(
            "zprime_m750",
            100,
            seed=1,
            detector=DetectorModel(jet_energy_scale=1.05),
            cache_dir=tmp_path,
        ),
        sample_path("zprime_m1000", 100, seed=1, cache_dir=tmp_path),
    ]
    assert len({base, *variants}) == 6
    assert all(p.parent == tmp_path for p in variants)


def test_cache_key_includes_versions(monkeypatch):
    config = registry.config_for("ttbar_semilep", 100)
    key = config.key()
    monkeypatch.setattr(pythia, "GENERATOR_VERSION", "999")
    assert config.key() != key
    monkeypatch.undo()
    monkeypatch.setattr(pythia, "DETECTOR_VERSION", "999")
    assert config.key() != key


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HEPML_DATA_CACHE", str(tmp_path / "c"))
    assert registry.resolve_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("HEPML_DATA_CACHE")
    assert registry.resolve_cache_dir() == Path.home() / ".cache" / "hepml-hub" / "samples"


def test_chunk_seeds_are_distinct_and_in_pythia_range():
    seeds = {pythia.pythia_seed(s, c) for s in range(5) for c in range(200)}
    assert len(seeds) == 1000
    assert all(1 <= s <= pythia.PYTHIA_SEED_MAX for s in seeds)


def test_btag_distribution_matches_working_points():
    model = DetectorModel()
    rng = np.random.default_rng(0)
    n = 200_000
    for flavour, effs in ((5, model.btag_eff_b), (4, model.btag_eff_c), (0, model.btag_eff_light)):
        d = draw_btag(np.full(n, flavour), np.zeros(n), model, rng)
        assert d.min() >= 0 and d.max() <= 1
        for wp, eff in zip(model.btag_wp, effs, strict=True):
            assert abs(np.mean(d > wp) - eff) < 4 * np.sqrt(eff * (1 - eff) / n) + 1e-4
    forward = draw_btag(np.full(n, 5), np.full(n, 3.0), model, rng)
    assert abs(np.mean(forward > model.btag_wp[1]) - model.btag_eff_light[1]) < 0.002


def test_luminosity_weight():
    meta = {"cross_section_pb": 2.0, "gen_event_sumw": 4.0}
    assert luminosity_weight(meta, 3.0) == pytest.approx(2.0 * 3000.0 / 4.0)
    np.testing.assert_allclose(luminosity_weight(meta, 1.0, gen_weight=[1.0, -1.0]), [500, -500])
    with pytest.raises(ValueError, match="gen_event_sumw"):
        luminosity_weight({"cross_section_pb": 1.0, "gen_event_sumw": 0.0}, 1.0)
    for bad in (-5, float("nan"), "1"):  # -5 gave negative weights without a word
        with pytest.raises(ValueError, match=f"luminosity_fb must be a positive .* got {bad!r}"):
            luminosity_weight(meta, bad)
    with pytest.raises(ValueError, match="lacks gen_event_sumw; it has cross_section_pb"):
        luminosity_weight({"cross_section_pb": 1.0}, 1.0)  # was a bare KeyError


# ---------------------------------------------------------------------------------------
# slow: generated files


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Missing cross-reference index:RuntimeWarning")
def test_file_opens_with_nanoaod_schema(ttbar):
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    ev = NanoEventsFactory.from_root(
        {str(ttbar): "Events"}, schemaclass=NanoAODSchema, mode="virtual"
    ).events()
    assert len(ev) == TTBAR_EVENTS
    for name in ("Jet", "Muon", "Electron", "MET", "GenMET", "Generator"):
        assert name in ev.fields
    jet_pt = ev.Jet.pt
    assert ak.all(jet_pt > 20.0)
    assert ak.all(abs(ev.Jet.eta) < 4.7)
    assert ak.all(jet_pt[:, :-1] >= jet_pt[:, 1:])  # sorted by pT
    assert ak.mean(ak.num(jet_pt)) > 3  # 4 partons, plus radiation
    assert len(ev.Muon.pt) == TTBAR_EVENTS
    assert set(ev.Electron.fields) >= {"pt", "eta", "phi", "mass", "charge", "cutBased"}
    met = ev.MET.pt
    assert ak.all(met >= 0) and 20 < np.mean(met) < 150
    # the coffea mixins work: four-vector sums of jets
    dijet = ev.Jet[:, 0] + ev.Jet[:, 1]
    assert ak.all(dijet.mass[~ak.is_none(dijet.mass)] > 0)


@pytest.mark.slow
def test_branches_and_dtypes(ttbar):
    tree = uproot.open(ttbar)["Events"]
    assert set(tree.keys()) == set(EXPECTED_BRANCHES)
    arrays = tree.arrays()
    for name, expected in EXPECTED_BRANCHES.items():
        assert str(ak.type(arrays[name]).content) == expected, name
    assert arrays["event"].tolist() == list(range(1, TTBAR_EVENTS + 1))
    assert set(arrays["luminosityBlock"].tolist()) == {1, 2, 3, 4}
    assert set(ak.flatten(arrays["Jet_hadronFlavour"]).tolist()) == {0, 4, 5}
    assert set(ak.flatten(arrays["Jet_jetId"]).tolist()) <= {0, 6}
    assert set(ak.flatten(arrays["Electron_cutBased"]).tolist()) <= {2, 4}
    assert set(ak.flatten(arrays["Muon_charge"]).tolist()) <= {-1, 1}
    btag = ak.flatten(arrays["Jet_btagDeepFlavB"])
    assert ak.all((btag >= 0) & (btag <= 1))


@pytest.mark.slow
def test_runs_tree_and_metadata(ttbar):
    runs = uproot.open(ttbar)["Runs"].arrays(library="np")
    assert {"run", "genEventCount", "genEventSumw", "genEventSumw2"} <= set(runs)
    assert runs["genEventCount"].dtype == np.int64 and runs["genEventSumw"].dtype == np.float64
    weights = events(ttbar)["genWeight"]
    assert runs["genEventCount"].tolist() == [TTBAR_EVENTS]
    assert runs["genEventSumw"][0] == pytest.approx(float(ak.sum(weights)))

    meta = load_metadata(ttbar)
    assert meta["sample"] == "ttbar_semilep"
    assert meta["process"] == "ttbar_semileptonic"
    assert meta["mass"] is None
    assert meta["n_events"] == TTBAR_EVENTS and meta["seed"] == SEED
    assert meta["gen_event_sumw"] == pytest.approx(runs["genEventSumw"][0])
    assert "Top:gg2ttbar = on" in meta["pythia_settings"]
    assert "Beams:eCM = 13000." in meta["pythia_settings"]
    assert meta["pythia_chunk_settings"]["even"][1] == "24:onPosIfAny = 11 13"
    assert meta["detector"]["version"] == pythia.DETECTOR_VERSION
    assert meta["detector"]["parameters"]["btag_wp"] == [0.049, 0.277, 0.7264]
    assert meta["generator_version"] == pythia.GENERATOR_VERSION
    assert meta["pythia_version"].startswith("8.3")
    assert isinstance(meta["code_version"], str) and meta["code_version"]
    assert dt.datetime.fromisoformat(meta["created"]).tzinfo is not None
    assert len(meta["chunks"]) == TTBAR_EVENTS // CHUNK
    assert meta["file"] == ttbar.name
    # sigma(tt̄ → l nu qq̄'bb̄), l = e, mu, both charges: LO Pythia gives ~510 pb x 2 x 0.2163 x 0.6755
    # = ~150 pb (seen: 150-160 pb). Excludes the inclusive sigma (~510 pb) and one charge
    # assignment alone (~75 pb).
    assert 110.0 < meta["cross_section_pb"] < 200.0
    assert 0 < meta["cross_section_err_pb"] < 0.1 * meta["cross_section_pb"]
    # weights of the file sum to sigma x L
    total = ak.sum(luminosity_weight(meta, 10.0, gen_weight=ak.to_numpy(weights)))
    assert total == pytest.approx(meta["cross_section_pb"] * 10_000.0)
    assert luminosity_weight(ttbar, 10.0) == pytest.approx(luminosity_weight(meta, 10.0))


@pytest.mark.slow
def test_semileptonic_final_state(ttbar):
    a = events(ttbar)
    iso_mu = a["Muon_pt"][(a["Muon_pt"] > 25) & (a["Muon_pfRelIso04_all"] < 0.15)]
    iso_el = a["Electron_pt"][(a["Electron_pt"] > 25) & (a["Electron_pfRelIso03_all"] < 0.15)]
    n_iso = ak.num(iso_mu) + ak.num(iso_el)
    # one prompt e/μ per event (minus acceptance and efficiency), rarely two
    assert 0.45 < np.mean(n_iso >= 1) < 0.9
    assert np.mean(n_iso >= 2) < 0.05
    # the neutrino shows up as missing momentum, reconstructed within ~15-20 GeV
    resolution = np.std(ak.to_numpy(a["MET_pt"] - a["GenMET_pt"]))
    assert 5 < resolution < 35


@pytest.mark.slow
def test_btag_efficiency_at_medium_working_point(ttbar):
    a = events(ttbar)
    central = abs(a["Jet_eta"]) < 2.5
    flavour = a["Jet_hadronFlavour"]
    tagged = a["Jet_btagDeepFlavB"] > 0.2770
    n_b = ak.sum(central & (flavour == 5))
    assert n_b > 300  # two b jets per event, most central
    eff_b = ak.sum(tagged & central & (flavour == 5)) / n_b
    eff_light = ak.sum(tagged & central & (flavour == 0)) / ak.sum(central & (flavour == 0))
    assert 0.68 < eff_b < 0.82
    assert eff_light < 0.03


@pytest.mark.slow
def test_deterministic_across_worker_counts(ttbar, tmp_path):
    again = generate(
        "ttbar_semilep",
        TTBAR_EVENTS,
        seed=SEED,
        cache_dir=tmp_path,
        n_workers=2,
        chunk_size=CHUNK,
        progress=False,
    )
    assert again.name == ttbar.name
    assert_same_events(ttbar, again)
    assert load_metadata(again)["cross_section_pb"] == load_metadata(ttbar)["cross_section_pb"]


@pytest.mark.slow
def test_dask_client_gives_the_same_file(zprimes, tmp_path):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        path = generate(
            "zprime_m500",
            ZPRIME_EVENTS,
            seed=SEED,
            cache_dir=tmp_path,
            client=client,
            chunk_size=CHUNK,
            progress=True,
        )
    assert path.name == zprimes[500].name
    assert_same_events(zprimes[500], path)


@pytest.mark.slow
def test_zprime_mass_peaks(zprimes):
    medians_truth, medians_visible, xs = {}, {}, {}
    for mass, path in zprimes.items():
        a = events(path)
        meta = load_metadata(path)
        assert meta["mass"] == float(mass) and meta["process"] == "zprime_ttbar_semileptonic"
        assert f"32:m0 = {float(mass)}" in meta["pythia_settings"]
        xs[mass] = meta["cross_section_pb"]
        truth = 13000.0 * np.sqrt(ak.to_numpy(a["Generator_x1"] * a["Generator_x2"]))
        medians_truth[mass] = np.median(truth)
        # visible mass: up to four leading jets, the leading muon and electron
        px = py = pz = e = 0.0
        for prefix, n in (("Jet", 4), ("Muon", 1), ("Electron", 1)):
            pt, eta, phi = (a[f"{prefix}_{v}"][:, :n] for v in ("pt", "eta", "phi"))
            mass_ = a[f"{prefix}_mass"][:, :n]
            px = px + ak.sum(pt * np.cos(phi), axis=1)
            py = py + ak.sum(pt * np.sin(phi), axis=1)
            pz = pz + ak.sum(pt * np.sinh(eta), axis=1)
            e = e + ak.sum(np.sqrt((pt * np.cosh(eta)) ** 2 + mass_**2), axis=1)
        visible = np.sqrt(np.maximum(ak.to_numpy(e**2 - px**2 - py**2 - pz**2), 0))
        medians_visible[mass] = np.median(visible)
    for mass in zprimes:
        # the resonance: Breit-Wigner of ~3 % width, with a tail to low masses at 2 TeV
        assert abs(medians_truth[mass] / mass - 1) < 0.05
    assert medians_visible[2000] > 2.5 * medians_visible[500]
    assert 0.5 * 500 < medians_visible[500] < 500
    # sigma x B falls steeply with mass (seen: ~2.5 pb at 500 GeV, ~0.015 pb at 2 TeV)
    assert 0.5 < xs[500] < 10
    assert 0 < xs[2000] < xs[500] / 20


@pytest.mark.slow
def test_cached_second_call_does_not_regenerate(ttbar, monkeypatch):
    before = (ttbar.stat().st_mtime_ns, Path(f"{ttbar}.json").stat().st_mtime_ns)

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a cached sample")

    monkeypatch.setattr(registry, "generate_file", fail)
    start = time.perf_counter()
    again = generate(
        "ttbar_semilep",
        TTBAR_EVENTS,
        seed=SEED,
        cache_dir=ttbar.parent,
        chunk_size=CHUNK,
        progress=False,
    )
    assert time.perf_counter() - start < 1.0
    assert again == ttbar
    assert (ttbar.stat().st_mtime_ns, Path(f"{ttbar}.json").stat().st_mtime_ns) == before
    info = sample_info(
        "ttbar_semilep", n_events=TTBAR_EVENTS, seed=SEED, chunk_size=CHUNK, cache_dir=ttbar.parent
    )
    assert info["generated"] is True and info["path"] == str(ttbar)
    assert [f["path"] for f in sample_info("ttbar_semilep", cache_dir=ttbar.parent)["files"]] == [
        str(ttbar)
    ]
    assert sample_info("ttbar_semilep", n_events=123, cache_dir=ttbar.parent)["generated"] is False


@pytest.mark.slow
def test_incomplete_cache_entry_is_regenerated(tmp_path):
    path = generate("zprime_m1000", 5, cache_dir=tmp_path, n_workers=1, progress=False)
    Path(f"{path}.json").unlink()  # e.g. killed between the two renames
    assert sample_info("zprime_m1000", cache_dir=tmp_path)["generated"] is False
    assert generate("zprime_m1000", 5, cache_dir=tmp_path, n_workers=1, progress=False) == path
    assert load_metadata(path)["n_events"] == 5


_REAL_SIMULATE_CHUNK = pythia.simulate_chunk


def _chunk_1_fails(config, chunk_index):
    """Module level, so the process pool can pickle it (the forked workers import it)."""
    if chunk_index == 1:
        raise RuntimeError("chunk 1 failed")
    return _REAL_SIMULATE_CHUNK(config, chunk_index)


@pytest.mark.slow
@pytest.mark.parametrize("n_workers", [1, 2])
def test_failed_chunk_leaves_no_file(tmp_path, monkeypatch, n_workers):
    monkeypatch.setattr(pythia, "simulate_chunk", _chunk_1_fails)
    with pytest.raises(RuntimeError, match="chunk 1 failed"):
        generate(
            "zprime_m750",
            150,
            cache_dir=tmp_path,
            n_workers=n_workers,
            chunk_size=50,
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_interrupt_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(config, chunk_index):
        raise KeyboardInterrupt

    monkeypatch.setattr(pythia, "simulate_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate("zprime_m750", 10, cache_dir=tmp_path, n_workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []
    assert not any(".tmp-" in p for p in os.listdir(tmp_path))
