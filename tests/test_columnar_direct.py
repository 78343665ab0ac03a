"""The fast path of the columnar pipeline against its fallbacks and independent references.

The pipeline reads chunks straight from the tree (``DirectRunner`` + ``read_inputs``) and
selects the jets of every shape variation in one compiled pass. Here the fast path is
checked against the NanoEvents path it replaces (``fast_read=False``: coffea's own work
function and ``load_inputs``), and the one-pass selection of all variations against a
plain Python loop.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from coffea import processor as coffea_processor
from coffea.analysis_tools import PackedSelection
from coffea.nanoevents import NanoEventsFactory
from columnar_samples import write_sample

from analysis_lib.columnar import SemileptonicProcessor, run_columnar
from analysis_lib.columnar import direct as direct_module
from analysis_lib.columnar.direct import DirectRunner, close_trees, open_tree
from analysis_lib.columnar.features import FeatureConfig
from analysis_lib.columnar.inputs import load_inputs, read_inputs
from analysis_lib.columnar.jagged import Jagged
from analysis_lib.columnar.processor import EventsSchema
from analysis_lib.columnar.samples import prepare_fileset
from analysis_lib.columnar.selection import Cuts, EventSelection, Leptons
from analysis_lib.columnar.variation_pass import run_variations


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("direct")
    return write_sample(d / "ttbar.root", 1800, process="ttbar", seed=21)


def test_direct_path_gives_the_tables_of_the_nanoevents_path(sample):
    fast = SemileptonicProcessor()
    slow = SemileptonicProcessor(fast_read=False)
    a = run_columnar([sample], fast, executor="iterative", progress=False, chunksize=700)
    b = run_columnar([sample], slow, executor="iterative", progress=False, chunksize=700)
    # 1 800 events in one basket per branch: chunks of at least 700 events, two of 900
    assert a.timing["n_chunks"] == b.timing["n_chunks"] == 2
    assert set(a.tables["ttbar"]) == set(b.tables["ttbar"]) == set(fast.config()["variations"])
    for variation, table in a.tables["ttbar"].items():
        assert table.num_rows > 0
        assert table.equals(b.tables["ttbar"][variation]), variation
        assert a.cutflow["ttbar"][variation] == b.cutflow["ttbar"][variation]


def test_read_inputs_equals_load_inputs(sample):
    with uproot.open(sample) as f:
        direct = read_inputs(f["Events"], entry_start=200, entry_stop=900)
    events = NanoEventsFactory.from_root(
        {str(sample): "Events"},
        schemaclass=EventsSchema,
        mode="eager",
        entry_start=200,
        entry_stop=900,
    ).events()
    nano = load_inputs(events)
    assert len(direct) == len(nano) == 700 and direct.simulation
    for name in ("run", "luminosity_block", "event", "gen_weight", "met_pt", "met_phi"):
        np.testing.assert_array_equal(getattr(direct, name), getattr(nano, name), name)
    for name in ("jets", "muons", "electrons"):
        mine, theirs = getattr(direct, name), getattr(nano, name)
        np.testing.assert_array_equal(mine.offsets, theirs.offsets)
        assert set(mine.fields) == set(theirs.fields)
        for field in mine.fields:
            np.testing.assert_array_equal(mine[field], theirs[field], f"{name}.{field}")


def test_runner_falls_back_for_other_processors(sample):
    class Count(coffea_processor.ProcessorABC):
        def process(self, events):
            return {"n": len(events), "pt": float(ak.sum(events.Jet.pt[:, :1]))}

        def postprocess(self, accumulator):
            return accumulator

    prepared = prepare_fileset([sample])
    runner = DirectRunner(
        executor=coffea_processor.IterativeExecutor(status=False),
        chunksize=1000,
        schema=EventsSchema,
        metadata_cache=prepared.metadata_cache(),
    )
    out = runner(prepared.coffea_fileset(), Count(), treename="Events")
    with uproot.open(sample) as f:
        jet_pt = f["Events"]["Jet_pt"].array()
    assert out["n"] == 1800
    assert out["pt"] == pytest.approx(float(np.sum([x[0] for x in jet_pt if len(x)])), rel=1e-5)


def test_open_tree_caches_per_file_and_notices_a_replaced_file(tmp_path):
    close_trees()
    path = str(tmp_path / "a.root")
    with uproot.recreate(path) as f:
        f["Events"] = {"x": np.arange(3.0)}
    first = open_tree(path, "Events")
    uuid = str(first.file.uuid)
    assert open_tree(path, "Events", uuid) is first
    with uproot.recreate(path) as f:  # the same name, a new file
        f["Events"] = {"x": np.arange(5.0)}
    with uproot.open(path) as f:
        new_uuid = str(f.file.uuid)
    assert new_uuid != uuid
    second = open_tree(path, "Events", new_uuid)
    assert second is not first and second.num_entries == 5
    for i in range(direct_module.MAX_OPEN_FILES + 2):
        other = str(tmp_path / f"o{i}.root")
        with uproot.recreate(other) as f:
            f["Events"] = {"x": np.arange(1.0)}
        open_tree(other, "Events")
    assert len(direct_module._cache()) == direct_module.MAX_OPEN_FILES
    close_trees()
    assert len(direct_module._cache()) == 0


@pytest.mark.parametrize("kept_by", ["prepare_fileset", "open_tree"])
def test_open_files_keep_no_chunk_arrays(sample, kept_by):
    # each chunk is read once: uproot's default array cache would keep up to 100 MB of the
    # read arrays per open file (up to MAX_OPEN_FILES files per thread) for nothing
    close_trees()
    try:
        if kept_by == "prepare_fileset":  # the iterative executor's files
            prepare_fileset([sample], keep_open=True)
        tree = open_tree(str(sample), "Events")  # a worker's files
        for start in (0, 900):
            chunk = read_inputs(tree, entry_start=start, entry_stop=start + 900)
            assert len(chunk) == 900
        cache = tree.file.array_cache
        assert cache is None or len(cache) == 0, f"{len(cache)} arrays kept by {kept_by}"
    finally:
        close_trees()


def test_event_selection_is_a_packed_selection():
    rng = np.random.default_rng(3)
    cuts = {name: rng.random(1000) < 0.6 for name in ("a", "b", "c", "d")}
    mine, coffea = EventSelection(), PackedSelection()
    mine.add_multiple(cuts)
    coffea.add_multiple(cuts)
    assert isinstance(mine, PackedSelection) and mine.names == coffea.names
    for names in (("a",), ("a", "b"), ("b", "d"), ("a", "b", "c", "d")):
        np.testing.assert_array_equal(mine.all(*names), coffea.all(*names))
        np.testing.assert_array_equal(mine.any(*names), coffea.any(*names))
    # masked input is not the fast case: coffea fills it
    masked = EventSelection()
    masked.add_multiple({"m": np.ma.masked_array([True, True], mask=[False, True])})
    assert masked.all("m").tolist() == [True, False]


def reference_selection(offsets, events, pt, base, tagged, flavour, factor, k, sf_table, px, py):
    """One variation, jet by jet, in plain Python (sorting by the varied pT, stable)."""
    n = len(offsets) - 1
    out = {"n": [0] * n, "nb": [0] * n, "index": [[-1] * k for _ in range(n)]}
    out["sf"] = [[1.0, 1.0, 1.0] for _ in range(n)]
    out["shift"] = [[0.0, 0.0] for _ in range(n)]
    for e in events:
        chosen = []
        for j in range(offsets[e], offsets[e + 1]):
            f = factor[j] if np.ndim(factor) else factor
            if pt[j] > 15.0:
                out["shift"][e][0] += (f - 1) * px[j]
                out["shift"][e][1] += (f - 1) * py[j]
            if base[j] and pt[j] * f > 30.0:
                chosen.append((pt[j] * f, j))
                if tagged[j]:
                    out["nb"][e] += 1
                    row = {5: 2, 4: 1}.get(abs(int(flavour[j])), 0)
                    value, unc = sf_table[row]
                    for c, s in enumerate((value, value + unc, value - unc)):
                        out["sf"][e][c] *= s
        out["n"][e] = len(chosen)
        ordered = sorted(chosen, key=lambda t: -t[0])  # stable: ties keep input order
        for i, (_, j) in enumerate(ordered[:k]):
            out["index"][e][i] = j
    return out


@pytest.mark.parametrize("sorted_input", [True, False])
def test_one_pass_selection_matches_a_python_loop(sorted_input):
    rng = np.random.default_rng(7 if sorted_input else 8)
    counts = rng.integers(0, 9, 300)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n_jets = int(offsets[-1])
    pt = rng.exponential(40.0, n_jets) + 10.0
    if sorted_input:  # NanoAOD order: descending pT in each event
        for e in range(len(counts)):
            pt[offsets[e] : offsets[e + 1]] = np.sort(pt[offsets[e] : offsets[e + 1]])[::-1]
    base = rng.random(n_jets) < 0.9
    tagged = rng.random(n_jets) < 0.3
    flavour = rng.choice(np.array([0, 4, 5, -5]), n_jets)
    phi = rng.uniform(-np.pi, np.pi, n_jets).astype(np.float32)
    eta = rng.uniform(-2.0, 2.0, n_jets).astype(np.float32)  # distinct: they name the jets
    # the jets' masks come from their ID bit and b-tag score; no lepton, no ΔR requirement
    jets = Jagged(
        offsets,
        {
            "pt": pt,
            "eta": eta,
            "phi": phi,
            "mass": np.full(n_jets, 5.0),
            "jetId": np.where(base, 6, 0).astype(np.int32),
            "btag": np.where(tagged, 0.9, 0.1).astype(np.float32),
            "hadronFlavour": flavour,
        },
    )
    n = len(counts)
    none = np.full(n, np.nan)
    leptons = Leptons(
        none, none, none, none, np.zeros(n, np.int8), np.zeros(n, np.int8), np.ones(n, np.int32)
    )
    # the MET shift, like the kernel: from the angles' float32 cosine and sine
    px = pt * np.cos(phi).astype(np.float64)
    py = pt * np.sin(phi).astype(np.float64)
    events = np.flatnonzero(rng.random(n) < 0.8)
    table = np.array([[1.1, 0.1], [0.95, 0.06], [0.9, 0.05]])
    smear = np.maximum(1 + 0.1 * rng.standard_normal(n_jets), 0.0)
    factors = [1.0, 1.03, 0.97, smear]
    results = run_variations(
        jets,
        leptons,
        (np.zeros(n), np.zeros(n), np.zeros(n, np.float32)),
        factors=factors,
        nominal=[True, False, False, False],
        cuts=Cuts(),
        btag_wp=0.5,
        require=0,  # every event looked at is a row
        candidates=events,
        features=FeatureConfig(n_jets=4, n_jets_max=4),
        btag_sf_table=table,
        met_jet_pt_min=15.0,
    )
    for v, (factor, got) in enumerate(zip(factors, results, strict=True)):
        ref = reference_selection(
            offsets, events, pt, base, tagged, flavour, factor, 4, table, px, py
        )
        np.testing.assert_array_equal(got.n_jets, ref["n"])
        np.testing.assert_array_equal(got.n_bjets, ref["nb"])
        np.testing.assert_allclose(got.btag_sf, ref["sf"], rtol=1e-12)
        np.testing.assert_array_equal(got.rows, events)
        # the leading jets, named by their eta, with the varied pT
        index = np.array(ref["index"])[events]
        for i in range(4):
            j = index[:, i]
            f = factor[j] if np.ndim(factor) else factor
            want_eta = np.where(j >= 0, eta[j], np.nan)
            want_pt = np.where(j >= 0, (pt[j] * f).astype(np.float32), np.nan)
            np.testing.assert_array_equal(got.columns[f"jet{i + 1}_eta"], want_eta)
            np.testing.assert_array_equal(got.columns[f"jet{i + 1}_pt"], want_pt)
        np.testing.assert_array_equal(got.columns["n_jets"], np.array(ref["n"])[events])
        # the MET moves opposite to the jets (the nominal keeps the stored one)
        shift = np.array(ref["shift"])[events]
        met_x = got.columns["met_pt"] * np.cos(got.columns["met_phi"])
        want = np.zeros(len(events)) if v == 0 else -shift[:, 0]
        np.testing.assert_allclose(met_x, want, rtol=1e-4, atol=1e-3)


def test_sinh32_is_sinh_correctly_rounded_to_float32():
    from analysis_lib.columnar.kernels import sinh32

    rng = np.random.default_rng(7)
    x = np.concatenate(
        [
            rng.uniform(-5.0, 5.0, 200_000),
            rng.uniform(-0.6, 0.6, 50_000),  # both sides of the series' limit
            rng.uniform(7.5, 8.5, 20_000),  # both sides of the polynomial's limit (8)
            rng.uniform(-100.0, 100.0, 5_000),  # the exp pass, overflow to inf beyond 89.4
            [0.0, -0.0, 1e-30, -1e-7, 0.5, -0.5, np.nextafter(0.5, 0), np.inf, -np.inf],
            [8.0, -8.0, np.nextafter(8.0, 9.0), 89.4, 89.5, -89.5],
        ]
    ).astype(np.float32)
    got = sinh32(x)
    with np.errstate(over="ignore"):
        want = np.sinh(x.astype(np.float64)).astype(np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()
    assert np.isnan(sinh32(np.array([np.nan], dtype=np.float32)))[0]
