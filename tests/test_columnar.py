"""The columnar pipeline on small synthetic NanoAOD-like samples.

Features are checked against an independent per-event computation with ``vector`` (pure
Python loops over the raw branches read by uproot, sharing no code with the pipeline).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path

import awkward as ak
import dask
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot
import vector
from columnar_samples import corrupt_copy, truncate_copy, write_sample

from analysis_lib.columnar import (
    CUT_NAMES,
    MASS_COLUMNS,
    VARIATIONS,
    BadInputError,
    Cuts,
    FeatureConfig,
    MissingBranchError,
    SemileptonicProcessor,
    SystematicsConfig,
    UnknownVariationError,
    read_table,
    run_columnar,
)
from analysis_lib.columnar import output as output_module
from analysis_lib.columnar import processor as processor_module
from analysis_lib.columnar import runner as runner_module
from analysis_lib.columnar.zlib_decoder import zlib_decoder
from analysis_lib.compute.config import CONFIG_KEY

#: Medium DeepJet working point, written out here so the reference is independent of
#: the library's constant.
BTAG_WP = 0.2770

M_W, M_TOP = 80.4, 172.5
N_TT, N_ZP = 4000, 2000


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("samples")
    return {
        "ttbar": write_sample(d / "ttbar.root", N_TT, process="ttbar", seed=11),
        "zprime": write_sample(d / "zprime.root", N_ZP, process="zprime", seed=12),
    }


@pytest.fixture(scope="module")
def full_run(samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = run_columnar(
        list(samples.values()), output=out, executor="iterative", progress=False, chunksize=1500
    )
    return result, out


# -- an independent reference, event by event -------------------------------------------------
def raw_events(path: Path) -> ak.Array:
    with uproot.open(path) as f:
        return f["Events"].arrays()


def _lepton(ev, cuts: Cuts):
    muons = [
        (ev.Muon_pt[i], ev.Muon_eta[i], ev.Muon_phi[i], ev.Muon_mass[i], 13)
        for i in range(ev.nMuon)
        if ev.Muon_pt[i] > cuts.lepton_pt_min
        and abs(ev.Muon_eta[i]) < cuts.muon_eta_max
        and ev.Muon_tightId[i]
        and ev.Muon_pfRelIso04_all[i] < cuts.muon_iso_max
    ]
    electrons = [
        (ev.Electron_pt[i], ev.Electron_eta[i], ev.Electron_phi[i], ev.Electron_mass[i], 11)
        for i in range(ev.nElectron)
        if ev.Electron_pt[i] > cuts.lepton_pt_min
        and abs(ev.Electron_eta[i]) < cuts.electron_eta_max
        and ev.Electron_cutBased[i] >= cuts.electron_id_min
        and ev.Electron_pfRelIso03_all[i] < cuts.electron_iso_max
    ]
    candidates = [max(muons, key=lambda m: m[0])] if muons else []
    if electrons:
        candidates.append(max(electrons, key=lambda e: e[0]))
    lep = max(candidates, key=lambda c: (c[0], c[4] == 13)) if candidates else None
    return lep, len(muons) + len(electrons)


def reference(ev, *, factor=1.0, cuts: Cuts | None = None, wp: float = BTAG_WP):
    """Lepton, jets, MET and the Baldi masses of one event, with vector objects.

    ``factor`` scales the jets' pT and mass: one number, or a list with one per jet.
    """
    cuts = cuts or Cuts()
    factors = list(factor) if np.ndim(factor) else [factor] * int(ev.nJet)
    lep, n_tight = _lepton(ev, cuts)
    lep_v = None
    if lep is not None:
        lep_v = vector.obj(
            pt=float(lep[0]), eta=float(lep[1]), phi=float(lep[2]), mass=float(lep[3])
        )
    jets = []
    for i in range(ev.nJet):
        j = vector.obj(
            pt=float(ev.Jet_pt[i]) * factors[i],
            eta=float(ev.Jet_eta[i]),
            phi=float(ev.Jet_phi[i]),
            mass=float(ev.Jet_mass[i]) * factors[i],
        )
        if abs(ev.Jet_eta[i]) >= cuts.jet_eta_max or not ev.Jet_jetId[i] & 2:
            continue
        if lep_v is not None and j.deltaR(lep_v) <= cuts.jet_lepton_dr_min:
            continue
        if j.pt > cuts.jet_pt_min:
            jets.append((j, float(ev.Jet_btagDeepFlavB[i])))
    jets.sort(key=lambda t: -t[0].pt)  # stable: ties keep the input order
    # MET with the jet change propagated (jets with nominal pT > 15 GeV)
    met = vector.obj(pt=float(ev.MET_pt), phi=float(ev.MET_phi))
    for i in range(ev.nJet):
        if ev.Jet_pt[i] > 15:
            shift = float(ev.Jet_pt[i]) * (factors[i] - 1)
            met = met - vector.obj(pt=shift, phi=float(ev.Jet_phi[i]))
    out = {
        "n_tight": n_tight,
        "n_jets": len(jets),
        "n_bjets": sum(b > wp for _, b in jets),
        "met_pt": met.rho,
        "met_phi": met.phi,
        "jets": jets,
    }
    if lep_v is None or len(jets) < 4:
        return out
    out.update(lep_pt=lep_v.pt, lep_eta=lep_v.eta, lep_phi=lep_v.phi)
    # neutrino pz from m(l nu) = m_W with a massless lepton: solve the quadratic with numpy
    pl = math.sqrt(lep_v.px**2 + lep_v.py**2 + lep_v.pz**2)
    mu = M_W**2 / 2 + lep_v.px * met.x + lep_v.py * met.y
    roots = np.roots([lep_v.pt**2, -2 * mu * lep_v.pz, pl**2 * met.rho**2 - mu**2])
    pz = float(min(roots.real, key=abs)) if np.isreal(roots).all() else float(roots[0].real)
    nu = vector.obj(px=met.x, py=met.y, pz=pz, E=math.hypot(met.rho, pz))
    w_lep = lep_v + nu
    out["m_lv"] = w_lep.mass
    lead = jets[:6]
    b_idx = sorted(range(len(lead)), key=lambda i: (-lead[i][1], i))[:2]
    rest = [i for i in range(len(lead)) if i not in b_idx]
    pairs = list(itertools.combinations(rest, 2))
    w1, w2 = min(pairs, key=lambda p: abs((lead[p[0]][0] + lead[p[1]][0]).mass - M_W))
    w_had = lead[w1][0] + lead[w2][0]
    b1, b2 = lead[b_idx[0]][0], lead[b_idx[1]][0]
    cost_a = ((b1 + w_lep).mass - M_TOP) ** 2 + ((b2 + w_had).mass - M_TOP) ** 2
    cost_b = ((b2 + w_lep).mass - M_TOP) ** 2 + ((b1 + w_had).mass - M_TOP) ** 2
    b_lep, b_had = (b1, b2) if cost_a <= cost_b else (b2, b1)
    out.update(
        m_jj=w_had.mass,
        m_jjj=(w_had + b_had).mass,
        m_jlv=(b_lep + w_lep).mass,
        m_bb=(b1 + b2).mass,
        m_wbb=(w_had + b1 + b2).mass,
        m_wwbb=(w_had + w_lep + b1 + b2).mass,
    )
    return out


def reference_cutflow(raw: ak.Array, factor: float, cuts: Cuts | None = None) -> list[int]:
    """The cumulative cutflow with awkward arrays and vector's behaviours."""
    cuts = cuts or Cuts()
    vector.register_awkward()

    def p4(prefix: str, scale: float = 1.0) -> ak.Array:
        return ak.zip(
            {
                "pt": raw[f"{prefix}_pt"] * scale,
                "eta": raw[f"{prefix}_eta"],
                "phi": raw[f"{prefix}_phi"],
                "mass": raw[f"{prefix}_mass"] * scale,
            },
            with_name="Momentum4D",
        )

    mu, el = p4("Muon"), p4("Electron")
    mu_ok = (
        (mu.pt > cuts.lepton_pt_min)
        & (abs(mu.eta) < cuts.muon_eta_max)
        & raw.Muon_tightId
        & (raw.Muon_pfRelIso04_all < cuts.muon_iso_max)
    )
    el_ok = (
        (el.pt > cuts.lepton_pt_min)
        & (abs(el.eta) < cuts.electron_eta_max)
        & (raw.Electron_cutBased >= cuts.electron_id_min)
        & (raw.Electron_pfRelIso03_all < cuts.electron_iso_max)
    )
    leptons = ak.concatenate([mu[mu_ok], el[el_ok]], axis=1)
    one = ak.num(leptons) == 1
    lepton = ak.firsts(leptons)
    jets = p4("Jet", factor)
    far = ak.fill_none(jets.deltaR(lepton) > cuts.jet_lepton_dr_min, True)
    good = (
        (jets.pt > cuts.jet_pt_min)
        & (abs(jets.eta) < cuts.jet_eta_max)
        & ((raw.Jet_jetId & 2) != 0)
        & far
    )
    n_jets = ak.sum(good, axis=1)
    n_b = ak.sum(good & (raw.Jet_btagDeepFlavB > BTAG_WP), axis=1)
    nominal = p4("Jet")
    moved = ak.sum(((nominal.pt > 15) * (factor - 1)) * nominal.to_xy(), axis=1)
    met = ak.zip({"pt": raw.MET_pt, "phi": raw.MET_phi}, with_name="Momentum2D") - moved
    masks = [one, n_jets >= cuts.n_jets_min, n_b >= cuts.n_bjets_min, met.pt > cuts.met_min]
    out, cumulative = [len(raw)], np.ones(len(raw), dtype=bool)
    for m in masks:
        cumulative = cumulative & ak.to_numpy(m)
        out.append(int(cumulative.sum()))
    return out


# -- outputs ----------------------------------------------------------------------------------
def test_one_table_per_sample_and_variation(full_run):
    result, out = full_run
    proc = SemileptonicProcessor()
    for sample in ("ttbar", "zprime"):
        for variation in VARIATIONS:
            path = out / sample / f"{variation}.parquet"
            assert path.is_file()
            table, meta = read_table(path)
            assert table.column_names == proc.columns
            assert table.num_rows == result.tables[sample][variation].num_rows > 0
            side = json.loads(path.with_suffix(".json").read_text())
            assert side == meta
            assert meta["sample"] == sample and meta["variation"] == variation
            assert meta["process"] == sample
            assert meta["lumi_pb"] == 139_000.0
            assert meta["generator"]["seeds"] == [11 if sample == "ttbar" else 12]
            assert meta["generator"]["settings"]["generator"] == "tests/columnar_samples.py"
            assert meta["code_version"]["coffea"]
            assert meta["processor"]["variations"] == list(VARIATIONS)
            assert meta["cutflow"]["events"][-1] == table.num_rows
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["samples"]) == {"ttbar", "zprime"}
    assert manifest["bad_files"] == {}
    leftovers = [p for p in out.rglob("*") if ".tmp-" in p.name or p.name == ".checkpoints"]
    assert leftovers == []


def test_normalization(full_run, samples):
    result, _ = full_run
    meta = result.metadata["ttbar"]["nominal"]
    info = json.loads(Path(f"{samples['ttbar']}.json").read_text())
    with uproot.open(samples["ttbar"]) as f:
        sumw = float(f["Runs"]["genEventSumw"].array(library="np").sum())
        gen = f["Events"]["genWeight"].array(library="np")
    assert meta["gen_event_sumw"] == pytest.approx(sumw)
    assert meta["normalization"] == pytest.approx(info["cross_section_pb"] * 139_000 / sumw)
    # the weights are genWeight x normalization x scale factors (all within 10 % of 1)
    table = result.to_pandas("ttbar")
    ratio = table["weight"].abs() / (np.abs(gen).max() * meta["normalization"])
    assert ratio.between(0.7, 1.3).all()


def test_cutflow_is_monotonic_and_matches_tables(full_run):
    result, _ = full_run
    for sample, flows in result.cutflow.items():
        for variation, flow in flows.items():
            assert flow["labels"] == ["initial", *CUT_NAMES]
            assert flow["events"][0] == (N_TT if sample == "ttbar" else N_ZP)
            assert all(a >= b for a, b in itertools.pairwise(flow["events"]))
            assert flow["events"][-1] == result.tables[sample][variation].num_rows
            assert flow["sumw"][-1] == pytest.approx(
                float(np.sum(result.tables[sample][variation]["weight"].to_numpy()))
            )
        # a good fraction passes: the samples are semileptonic-like
        assert flows["nominal"]["events"][-1] > 0.15 * flows["nominal"]["events"][0]


# -- features against the independent computation ----------------------------------------------
def test_features_match_vector_reference(full_run, samples):
    result, _ = full_run
    table = result.to_pandas("ttbar")
    raw = raw_events(samples["ttbar"])
    by_event = {int(e): i for i, e in enumerate(raw.event)}
    checked = 0
    for row in table.head(250).itertuples():
        ref = reference(raw[by_event[row.event]])
        assert ref["n_tight"] == 1 and ref["n_jets"] == row.n_jets
        assert ref["n_bjets"] == row.n_bjets
        for key in ("lep_pt", "lep_eta", "lep_phi", "met_pt", "met_phi"):
            assert getattr(row, key) == pytest.approx(ref[key], rel=1e-5, abs=1e-4), key
        for i, (jet, btag) in enumerate(ref["jets"][:4], start=1):
            assert getattr(row, f"jet{i}_pt") == pytest.approx(jet.pt, rel=1e-5)
            assert getattr(row, f"jet{i}_eta") == pytest.approx(jet.eta, rel=1e-5, abs=1e-5)
            assert getattr(row, f"jet{i}_phi") == pytest.approx(jet.phi, rel=1e-5, abs=1e-5)
            assert getattr(row, f"jet{i}_btag") == pytest.approx(btag, rel=1e-6)
        for key in ("m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"):
            assert getattr(row, key) == pytest.approx(ref[key], rel=1e-4, abs=1e-2), key
        checked += 1
    assert checked == 250
    # m_lv is m_W when the neutrino solution is real, larger otherwise
    assert table["m_lv"].min() == pytest.approx(M_W, rel=1e-4)
    assert (table["m_lv"] > M_W + 1).any()


def test_jes_up_scales_jets_and_changes_selection_consistently(full_run, samples):
    result, _ = full_run
    shift = SystematicsConfig().jes_shift
    nominal = result.to_pandas("ttbar", "nominal").set_index("event")
    for variation, factor in (("jes_up", 1 + shift), ("jes_down", 1 - shift)):
        varied = result.to_pandas("ttbar", variation).set_index("event")
        common = nominal.index.intersection(varied.index)
        assert len(common) > 0.8 * min(len(nominal), len(varied))
        for i in range(1, 5):
            np.testing.assert_allclose(
                varied.loc[common, f"jet{i}_pt"],
                factor * nominal.loc[common, f"jet{i}_pt"],
                rtol=1e-6,
            )
            np.testing.assert_array_equal(
                varied.loc[common, f"jet{i}_eta"], nominal.loc[common, f"jet{i}_eta"]
            )
    flows = result.cutflow["ttbar"]
    jets = CUT_NAMES.index("jets") + 1
    assert flows["jes_down"]["events"][jets] < flows["nominal"]["events"][jets]
    assert flows["nominal"]["events"][jets] < flows["jes_up"]["events"][jets]
    # the same counts from an independent array computation (awkward + vector)
    raw = raw_events(samples["ttbar"])
    for variation, factor in (("jes_up", 1 + shift), ("nominal", 1.0), ("jes_down", 1 - shift)):
        expected = reference_cutflow(raw, factor)
        assert flows[variation]["events"] == expected, variation
    # MET follows the jets
    varied = result.to_pandas("ttbar", "jes_up").set_index("event")
    by_event = {int(e): i for i, e in enumerate(raw.event)}
    for event in list(varied.index[:50]):
        ref = reference(raw[by_event[event]], factor=1 + shift)
        assert varied.loc[event, "met_pt"] == pytest.approx(ref["met_pt"], rel=1e-5)


def test_jes_features_match_vector_reference(full_run, samples):
    """Every feature of the energy-scale variations, from the scaled jets and shifted MET."""
    result, _ = full_run
    shift = SystematicsConfig().jes_shift
    raw = raw_events(samples["ttbar"])
    by_event = {int(e): i for i, e in enumerate(raw.event)}
    for variation, factor in (("jes_up", 1 + shift), ("jes_down", 1 - shift)):
        table = result.to_pandas("ttbar", variation)
        checked = 0
        for row in table.head(150).itertuples():
            ref = reference(raw[by_event[row.event]], factor=factor)
            assert (ref["n_jets"], ref["n_bjets"]) == (row.n_jets, row.n_bjets)
            for i, (jet, btag) in enumerate(ref["jets"][:4], start=1):
                assert getattr(row, f"jet{i}_pt") == pytest.approx(jet.pt, rel=1e-5)
                assert getattr(row, f"jet{i}_btag") == pytest.approx(btag, rel=1e-6)
            for key in ("met_pt", "met_phi", *MASS_COLUMNS):
                assert getattr(row, key) == pytest.approx(ref[key], rel=1e-4, abs=1e-2), key
            checked += 1
        assert checked == 150, variation


def test_jer_is_reproducible_and_independent_of_chunking(samples):
    proc = SemileptonicProcessor(variations=["jer_up", "jer_down"])
    a = run_columnar([samples["zprime"]], proc, executor="iterative", progress=False, chunksize=700)
    b = run_columnar(
        [samples["zprime"]], proc, executor="iterative", progress=False, chunksize=5000
    )
    for variation in ("nominal", "jer_up", "jer_down"):
        assert a.table(variation=variation).equals(b.table(variation=variation))
    nominal = a.to_pandas(variation="nominal").set_index("event")
    up = a.to_pandas(variation="jer_up").set_index("event")
    common = nominal.index.intersection(up.index)
    spread = (up.loc[common, "jet1_pt"] / nominal.loc[common, "jet1_pt"]).std()
    assert 0.01 < spread < 0.2  # ~ jer_extra_sigma = 4.6 %, plus leading-jet swaps


def splitmix64(x: int) -> int:
    mask = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def jer_factors(ev, sign: int, config: SystematicsConfig) -> list[float]:
    """The documented per-jet smearing, re-implemented with Python integers."""
    key = splitmix64(int(ev.event) ^ config.seed)
    key = splitmix64((key + int(ev.luminosityBlock)) % (1 << 64))
    key = splitmix64((key + int(ev.run)) % (1 << 64))
    out = []
    for i in range(int(ev.nJet)):
        h = splitmix64((key + i) % (1 << 64))
        u1, u2 = ((h >> 32) + 0.5) / 2**32, ((h & 0xFFFFFFFF) + 0.5) / 2**32
        g = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
        out.append(max(1 + sign * config.jer_extra_sigma * g, 0.0))
    return out


def test_jer_features_match_vector_reference(full_run, samples):
    result, _ = full_run
    raw = raw_events(samples["zprime"])
    by_event = {int(e): i for i, e in enumerate(raw.event)}
    config = SystematicsConfig()
    for variation, sign in (("jer_up", 1), ("jer_down", -1)):
        table = result.to_pandas("zprime", variation)
        reordered = 0
        for row in table.head(150).itertuples():
            ev = raw[by_event[row.event]]
            ref = reference(ev, factor=jer_factors(ev, sign, config))
            assert ref["n_jets"] == row.n_jets
            for i, (jet, _) in enumerate(ref["jets"][:4], start=1):
                assert getattr(row, f"jet{i}_pt") == pytest.approx(jet.pt, rel=1e-5)
            for key in ("met_pt", "m_jj", "m_jjj", "m_jlv", "m_wwbb"):
                assert getattr(row, key) == pytest.approx(ref[key], rel=1e-4, abs=1e-2), key
            reordered += row.jet1_eta != ev.Jet_eta[0]
        assert reordered > 0  # the smearing changed the leading jet somewhere


def test_weight_variations_differ_only_in_weight(full_run):
    result, _ = full_run
    syst = SystematicsConfig()
    nominal = result.to_pandas("ttbar", "nominal")
    for variation in ("btag_sf_up", "btag_sf_down", "lepton_sf_up", "lepton_sf_down"):
        varied = result.to_pandas("ttbar", variation)
        assert list(varied.columns) == list(nominal.columns)
        rest = [c for c in nominal.columns if c != "weight"]
        assert varied[rest].equals(nominal[rest])
        ratio = varied["weight"] / nominal["weight"]
        assert not np.allclose(ratio, 1.0)
        if variation.startswith("lepton"):
            sign = 1 if variation.endswith("up") else -1
            mu = (syst.lepton_sf_muon[0] + sign * syst.lepton_sf_muon[1]) / syst.lepton_sf_muon[0]
            el = (
                syst.lepton_sf_electron[0] + sign * syst.lepton_sf_electron[1]
            ) / syst.lepton_sf_electron[0]
            expected = np.where(nominal["lep_flavour"] == 13, mu, el)
            np.testing.assert_allclose(ratio, expected, rtol=1e-12)
        else:
            assert (ratio > 1).all() if variation.endswith("up") else (ratio < 1).all()


# -- bad input --------------------------------------------------------------------------------
def test_unknown_variation_lists_the_known_ones():
    with pytest.raises(UnknownVariationError) as info:
        SemileptonicProcessor(variations=["nominal", "jes_sideways"])
    message = str(info.value)
    assert "jes_sideways" in message
    for name in VARIATIONS:
        assert name in message
    assert isinstance(info.value, ValueError)


def test_missing_branch_lists_what_exists(tmp_path):
    path = write_sample(tmp_path / "no_id.root", 50, drop=("Muon_tightId",))
    with pytest.raises(MissingBranchError) as info:
        run_columnar([path], executor="iterative", progress=False)
    message = str(info.value)
    assert str(path) in message and "Muon_tightId" in message
    assert "Muon_pt" in message and "Muon_pfRelIso04_all" in message


def test_missing_btag_branch_names_the_alternatives(tmp_path):
    path = write_sample(tmp_path / "old.root", 300, rename={"Jet_btagDeepFlavB": "Jet_btagDeepB"})
    with pytest.raises(MissingBranchError) as info:
        run_columnar([path], executor="iterative", progress=False)
    message = str(info.value)
    assert "Jet_btagDeepFlavB" in message and "Jet_btagDeepB" in message
    assert "btag_branch" in message
    result = run_columnar(
        [path],
        SemileptonicProcessor(btag_branch="Jet_btagDeepB", btag_wp=0.2783, variations=[]),
        executor="iterative",
        progress=False,
    )
    assert result.table(variation="nominal").num_rows > 0


def test_truncated_file_names_the_file_and_can_be_skipped(samples, tmp_path):
    bad = truncate_copy(samples["ttbar"], tmp_path / "ttbar_truncated.root")
    with pytest.raises(BadInputError) as info:
        run_columnar([samples["zprime"], bad], executor="iterative", progress=False)
    assert str(bad) in str(info.value) and "truncated" in str(info.value)

    out = tmp_path / "out"
    result = run_columnar(
        {"zprime": [samples["zprime"], bad]},
        SemileptonicProcessor(variations=[]),
        output=out,
        executor="iterative",
        progress=False,
        skip_bad_files=True,
    )
    assert list(result.bad_files) == [str(bad)]
    assert str(bad) not in result.bad_files[str(bad)]  # the key names the file
    assert "truncated" in result.bad_files[str(bad)]
    assert result.table("zprime").num_rows > 0
    assert str(bad) in result.metadata["zprime"]["nominal"]["bad_files"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert str(bad) in manifest["bad_files"]
    assert [f["path"] for f in result.metadata["zprime"]["nominal"]["files"]] == [
        str(samples["zprime"])
    ]


def test_corrupt_baskets_name_the_file_and_can_be_skipped(samples, tmp_path):
    bad = corrupt_copy(samples["ttbar"], tmp_path / "ttbar_corrupt.root")
    with pytest.raises(BadInputError) as info:
        run_columnar([bad], executor="iterative", progress=False, chunksize=1000)
    assert str(info.value).count(str(bad)) == 1, info.value  # named once, at the start
    assert str(info.value).startswith(f"{bad}: cannot read the events")

    good = run_columnar(
        {"tt": [samples["ttbar"]]},
        SemileptonicProcessor(variations=[]),
        executor="iterative",
        progress=False,
    )
    both = run_columnar(
        {"tt": [samples["ttbar"], bad]},
        SemileptonicProcessor(variations=[]),
        executor="iterative",
        progress=False,
        skip_bad_files=True,
        chunksize=1000,
    )
    assert list(both.bad_files) == [str(bad)]
    # keyed by the file, the reason does not repeat its name
    assert both.bad_files[str(bad)].startswith("cannot read the events"), both.bad_files
    # the bad file is left out entirely and the normalization uses the good file only
    a, b = both.to_pandas("tt"), good.to_pandas("tt")
    np.testing.assert_allclose(a.pop("weight"), b.pop("weight"), rtol=1e-12)
    assert a.equals(b)
    assert both.metadata["tt"]["nominal"]["gen_event_sumw"] == pytest.approx(
        good.metadata["tt"]["nominal"]["gen_event_sumw"]
    )


def test_not_a_root_file(tmp_path):
    path = tmp_path / "notes.root"
    path.write_text("not a ROOT file")
    with pytest.raises(BadInputError, match=r"notes\.root"):
        run_columnar([path], executor="iterative", progress=False)
    with pytest.raises(BadInputError, match="no such file"):
        run_columnar([tmp_path / "missing.root"], executor="iterative", progress=False)


# -- interruption and resuming ----------------------------------------------------------------
def test_interrupted_write_leaves_no_partial_table(samples, tmp_path, monkeypatch):
    real_write = output_module.pq.write_table
    calls = []

    def write_then_die(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:  # the second table: write part of it, then get interrupted
            real_write(table.slice(0, 10), where, **kwargs)
            raise KeyboardInterrupt
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(output_module.pq, "write_table", write_then_die)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_columnar(
            [samples["zprime"]],
            SemileptonicProcessor(variations=["jes_up"]),
            output=out,
            executor="iterative",
            progress=False,
        )
    names = sorted(p.name for p in out.rglob("*") if p.is_file() and ".checkpoints" not in str(p))
    assert names == ["nominal.json", "nominal.parquet"]  # complete, or absent
    assert not (out / "zprime" / "jes_up.parquet").exists()
    assert pq.read_table(out / "zprime" / "nominal.parquet").num_rows > 10

    monkeypatch.setattr(output_module.pq, "write_table", real_write)
    result = run_columnar(
        [samples["zprime"]],
        SemileptonicProcessor(variations=["jes_up"]),
        output=out,
        executor="iterative",
        progress=False,
    )
    assert result.timing["resumed_chunks"] == 1  # the chunk came from the checkpoint
    assert (out / "zprime" / "jes_up.parquet").is_file()
    assert not (out / ".checkpoints").exists()


def test_resume_after_interruption_processes_only_the_rest(samples, tmp_path, monkeypatch):
    proc = SemileptonicProcessor(variations=["jes_down"])
    reference_result = run_columnar(
        [samples["ttbar"]], proc, executor="iterative", progress=False, chunksize=1000
    )
    out = tmp_path / "out"
    original = processor_module.SemileptonicProcessor._process_inputs
    seen = []

    def flaky(self, inputs, meta, record):
        seen.append(meta["entrystart"])
        if meta["entrystart"] >= 2000:
            raise KeyboardInterrupt  # the user pressed Ctrl-C
        return original(self, inputs, meta, record)

    monkeypatch.setattr(processor_module.SemileptonicProcessor, "_process_inputs", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_columnar(
            [samples["ttbar"]],
            proc,
            output=out,
            executor="iterative",
            progress=False,
            chunksize=1000,
        )
    assert not list(out.glob("ttbar/*.parquet"))
    assert len(list((out / ".checkpoints").rglob("*.coffea"))) == 2

    seen.clear()
    monkeypatch.setattr(processor_module.SemileptonicProcessor, "_process_inputs", original)
    counting = []

    def counted(self, inputs, meta, record):
        counting.append(meta["entrystart"])
        return original(self, inputs, meta, record)

    monkeypatch.setattr(processor_module.SemileptonicProcessor, "_process_inputs", counted)
    result = run_columnar(
        [samples["ttbar"]], proc, output=out, executor="iterative", progress=False, chunksize=1000
    )
    assert sorted(counting) == [2000, 3000]
    assert result.timing["resumed_chunks"] == 2
    for variation in ("nominal", "jes_down"):
        assert result.table(variation=variation).equals(reference_result.table(variation=variation))


def test_kept_chunks_are_not_reused_when_the_samples_normalization_changes(tmp_path):
    """A chunk's weights come from its sample's cross-section and the Σ genWeight of all the
    sample's files: a rerun with another file in the sample, or another cross-section, must
    not take the old chunks (it did: the sample's weights came out 50 % too high)."""
    tt = write_sample(tmp_path / "a.root", 1000, seed=31)
    tt2 = write_sample(tmp_path / "b.root", 1000, seed=32)

    def total(fileset, output=None):
        result = run_columnar(fileset, output=output, executor="iterative", progress=False,
                              keep_checkpoints=True)  # fmt: skip
        return result, float(np.sum(result.table(sample="tt")["weight"]))

    out = tmp_path / "out"
    total({"tt": [tt]}, out)
    resumed, with_both = total({"tt": [tt, tt2]}, out)
    _, fresh = total({"tt": [tt, tt2]})
    assert with_both == pytest.approx(fresh, rel=1e-12)
    assert resumed.timing["resumed_chunks"] == 0
    again, _ = total({"tt": [tt, tt2]}, out)
    assert again.timing["resumed_chunks"] == 2  # the same sample again: both chunks kept

    for path in (tt, tt2):  # the cross-section doubled
        meta = Path(f"{path}.json")
        info = json.loads(meta.read_text())
        meta.write_text(json.dumps({**info, "cross_section_pb": 2 * info["cross_section_pb"]}))
    doubled, with_double = total({"tt": [tt, tt2]}, out)
    assert doubled.timing["resumed_chunks"] == 0
    assert with_double == pytest.approx(2 * fresh, rel=1e-12)


def test_a_sample_needs_one_cross_section_and_sane_metadata(tmp_path):
    tt = write_sample(tmp_path / "a.root", 200, seed=33)
    other = write_sample(tmp_path / "b.root", 200, seed=34, process="zprime")
    # merging files of different cross-sections into one sample left it silently
    # unnormalized (weights without sigma x L / sum w)
    with pytest.raises(ValueError, match=r"files of sample 'tt' do not share one cross-section "
                       r"\(.*a.root: 831.76 pb, .*b.root: 1.5 pb\)"):  # fmt: skip
        run_columnar({"tt": [tt, other]}, executor="iterative", progress=False)
    meta = Path(f"{other}.json")
    for bad, match in (
        ([1, 2], r"b.root.json: the metadata JSON must be an object \(\{...\}\), not a list"),
        ({"cross_section_pb": "1.5 pb"}, r"cross_section_pb must be a positive number \(in pb\), "
         r"got '1.5 pb'"),
        ({"cross_section_pb": -1.5}, "got -1.5"),
    ):  # fmt: skip
        meta.write_text(json.dumps(bad))
        with pytest.raises(BadInputError, match=match):
            run_columnar([other], executor="iterative", progress=False)


def test_the_fingerprint_covers_the_code_of_a_subclass():
    class Mine(SemileptonicProcessor):
        pass

    assert processor_module.source_digest(Mine) != processor_module.source_digest(
        SemileptonicProcessor
    )
    assert Mine().fingerprint() != SemileptonicProcessor().fingerprint()


# -- executors --------------------------------------------------------------------------------
def test_dask_local_cluster_gives_the_same_tables(samples, full_run, monkeypatch):
    distributed = pytest.importorskip("distributed")
    result, _ = full_run
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False) as cluster,
        distributed.Client(cluster) as client,
    ):
        dask_result = run_columnar(
            list(samples.values()), client=client, progress=False, chunksize=1500
        )
        for sample in ("ttbar", "zprime"):
            for variation in ("nominal", "jer_up", "btag_sf_down"):
                assert dask_result.table(sample, variation).equals(result.tables[sample][variation])

        def broken(self, inputs, meta, record):
            raise RuntimeError("a bug in the processor")

        monkeypatch.setattr(processor_module.SemileptonicProcessor, "_process_inputs", broken)
        with pytest.raises(Exception, match="a bug in the processor") as info:
            run_columnar([samples["zprime"]], client=client, progress=False)
        assert str(samples["zprime"]) in str(info.value)  # coffea names the chunk's file


@pytest.mark.slow
def test_dask_worker_processes(samples, full_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    result, _ = full_run
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        dask_result = run_columnar(
            [samples["zprime"]], client=client, progress=False, chunksize=700, output=tmp_path
        )
        # the workers that read decode ZLIB baskets with libdeflate (zlib_decoder)
        decoders = client.run(zlib_decoder)
    assert "libdeflate" in decoders.values(), decoders
    assert dask_result.table("zprime", "jes_up").equals(result.tables["zprime"]["jes_up"])
    assert (tmp_path / "zprime" / "jes_up.parquet").is_file()
    assert not (tmp_path / ".checkpoints").exists()  # used by the workers, then removed


@pytest.mark.slow
def test_dask_workers_inspect_the_files(samples, full_run, tmp_path):
    # opening a real NanoAOD file parses ~1500 branches (~0.3 s): on Dask the workers open
    # the files, all at once, with the same errors and the same skipping as here
    distributed = pytest.importorskip("distributed")
    truncated = truncate_copy(samples["ttbar"], tmp_path / "ttbar_truncated.root")
    no_jets = tmp_path / "no_jets.root"
    with uproot.recreate(no_jets) as f:
        f["Events"] = {name: np.ones(3, np.uint32) for name in ("run", "luminosityBlock", "event")}
    reference, _ = full_run
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        with distributed.get_task_stream(client) as stream:
            result = run_columnar(
                {"zprime": [samples["zprime"], truncated]},
                client=client,
                skip_bad_files=True,
                progress=False,
                chunksize=700,
            )
        inspected = [t for t in stream.data if str(t["key"]).startswith("_inspect_or_error")]
        assert len(inspected) == 2, [t["key"] for t in stream.data]
        assert list(result.bad_files) == [str(truncated)]
        assert "truncated" in result.bad_files[str(truncated)]
        for variation in ("nominal", "jes_up"):
            assert result.table("zprime", variation).equals(reference.tables["zprime"][variation])
        with pytest.raises(BadInputError, match=r"ttbar_truncated\.root: truncated"):
            run_columnar([samples["zprime"], truncated], client=client, progress=False)
        with pytest.raises(MissingBranchError, match=r"no_jets\.root: missing branches"):
            run_columnar([no_jets], client=client, progress=False, skip_bad_files=True)


@pytest.mark.slow
def test_a_run_given_no_cluster_makes_the_sessions_local_one(samples, full_run, monkeypatch):
    # the session's cores and memory and the site's Dask settings, among them glibc's
    # allocator settings in the workers (with Dask's own, each chunk faulted its memory in
    # anew: 30 % slower)
    monkeypatch.setenv("HEPML_CORES", "1")
    monkeypatch.setenv("HEPML_MEMORY", "2G")
    site = dask.config.get(f"{CONFIG_KEY}.dask-config")
    wanted = str(site["distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"])
    executor, close = runner_module.make_executor("dask", progress=False)
    try:
        client = executor.client
        trim = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        workers = client.scheduler_info()["workers"].values()
        assert list(trim.values()) == [wanted]  # one worker: the session's one core
        assert [w["memory_limit"] for w in workers] == [2 * 2**30]
    finally:
        close()
    assert executor.client.status == "closed"
    result, _ = full_run
    own = run_columnar(
        [samples["zprime"]], executor="dask", workers=2, progress=False, chunksize=700
    )
    assert own.table("zprime", "jes_up").equals(result.tables["zprime"]["jes_up"])


def test_feature_extraction_mode_keeps_every_event(samples):
    result = run_columnar(
        [samples["zprime"]],
        SemileptonicProcessor(require=(), variations=[]),
        executor="iterative",
        progress=False,
    )
    table = result.to_pandas("zprime")
    assert len(table) == N_ZP
    no_lepton = table["lep_flavour"] == 0
    assert no_lepton.any() and table.loc[no_lepton, "m_lv"].isna().all()
    assert table.loc[~no_lepton, "m_lv"].notna().all()


def test_filesets_that_would_double_count_or_collide_are_refused(samples, tmp_path):
    tt = samples["ttbar"]
    link = tmp_path / "same_ttbar.root"
    link.symlink_to(tt)
    with pytest.raises(ValueError, match=r"same file as .*; its events would count twice"):
        run_columnar({"tt": [tt, link]}, executor="iterative", progress=False)
    with pytest.raises(ValueError, match="empty sample name"):
        run_columnar({" ": [tt]}, executor="iterative", progress=False)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="would both write to the directory tt_2018"):
        run_columnar(
            {"tt/2018": [tt], "tt 2018": [samples["zprime"]]},
            output=out,
            executor="iterative",
            progress=False,
        )
    assert not out.exists()  # refused before anything was written
    with pytest.raises(ValueError, match=r"the directory manifest\.json, the name of the run's"):
        run_columnar({"manifest.json": [tt]}, output=out, executor="iterative", progress=False)
    assert not out.exists()
    with pytest.raises(ValueError, match="maxchunks must be a positive integer or None, not 0"):
        run_columnar([tt], executor="iterative", progress=False, maxchunks=0)


@pytest.mark.parametrize("workers", [0, -1, 2.5, True])
def test_bad_worker_counts_are_refused_up_front(samples, workers):
    # 0 was once taken as "the default" without a word; -1 failed deep in the executor
    # with a message that did not name the setting
    with pytest.raises(
        ValueError, match=f"workers must be a positive integer or None, not {workers!r}"
    ):
        run_columnar([samples["ttbar"]], executor="futures", progress=False, workers=workers)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lumi_pb": -5}, ValueError, r"lumi_pb must be a positive number \(pb\^-1\), got -5"),
        ({"lumi_pb": float("nan")}, ValueError, "lumi_pb must be a positive number"),
        ({"btag_wp": float("inf")}, ValueError, "btag_wp must be a finite number, got inf"),
        ({"features": 4}, TypeError, "features must be a FeatureConfig or None, got 4"),
        ({"cuts": {"met_min": 20}}, TypeError, "cuts must be a Cuts or None"),
    ],
)
def test_processor_settings_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        SemileptonicProcessor(**kwargs)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Cuts(met_min=float("nan")), "Cuts met_min must be a finite number >= 0, got nan"),
        (lambda: Cuts(n_jets_min=-1), "Cuts n_jets_min must be a whole number >= 0, got -1"),
        (lambda: Cuts(n_bjets_min=1.5), "Cuts n_bjets_min must be a whole number >= 0, got 1.5"),
        (lambda: Cuts(jet_pt_min="30"), "Cuts jet_pt_min must be a finite number >= 0, got '30'"),
        # the masses look at n_jets_max jets: more stored columns were NaN in every row
        (lambda: FeatureConfig(n_jets=7), r"n_jets .* between 1 and n_jets_max=6 .*got 7"),
        (lambda: FeatureConfig(n_jets=0), r"between 1 and n_jets_max=6 .*got 0"),
        (lambda: FeatureConfig(n_jets_max=3), "n_jets_max .* must be at least 4, got 3"),
        (lambda: FeatureConfig(n_jets=2.0), "n_jets must be a whole number, got 2.0"),
    ],
)
def test_cuts_and_feature_settings_are_checked(make, match):
    with pytest.raises(ValueError, match=match):
        make()
    assert FeatureConfig(n_jets=8, n_jets_max=8).n_jets == 8
    assert Cuts(met_min=0, n_bjets_min=0).met_min == 0
