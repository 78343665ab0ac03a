"""Real CMS NanoAOD (coffea's test samples) through the pipeline, unchanged.

The first run downloads coffea's source distribution with pip (about half a minute, needs
PyPI); later runs use the cache (``$HEPML_DATA_CACHE`` or ``~/.cache/hepml-hub``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import uproot

from analysis_lib.columnar import CUT_NAMES, SemileptonicProcessor, run_columnar
from analysis_lib.columnar.__main__ import main
from analysis_lib.datasets.cms import (
    SampleNotFoundError,
    coffea_version,
    fetch_coffea_sample,
)


@pytest.fixture(scope="module")
def nano_dy():
    return fetch_coffea_sample("nano_dy.root")


def test_fetch_is_cached_and_atomic(nano_dy):
    assert nano_dy.name == "nano_dy.root"
    assert f"coffea-{coffea_version()}" in str(nano_dy)
    assert fetch_coffea_sample("nano_dy.root") == nano_dy  # from the cache
    assert not [p for p in nano_dy.parent.iterdir() if ".tmp-" in p.name]
    with uproot.open(nano_dy) as f:
        assert f["Events"].num_entries == 40


def test_unknown_sample_lists_what_exists(nano_dy):
    with pytest.raises(SampleNotFoundError) as info:
        fetch_coffea_sample("nano_ttbar_does_not_exist.root")
    message = str(info.value)
    assert "nano_ttbar_does_not_exist.root" in message
    assert "nano_dy.root" in message and "nano_dimuon.root" in message


def test_dy_events_read_and_mostly_fail_the_ttbar_selection(nano_dy):
    result = run_columnar([nano_dy], executor="iterative", progress=False)
    flows = result.cutflow["nano_dy"]
    assert set(flows) == set(SemileptonicProcessor().config()["variations"])
    for flow in flows.values():
        assert flow["labels"] == ["initial", *CUT_NAMES]
        assert flow["events"][0] == 40
        assert all(a >= b for a, b in itertools.pairwise(flow["events"]))
        assert flow["events"][-1] <= 2
    nominal = flows["nominal"]["events"]
    assert 0 < nominal[1] < 40  # some single-lepton events, far from all
    meta = result.metadata["nano_dy"]["nominal"]
    assert meta["cross_section_pb"] is None and meta["normalization"] == 1.0
    assert "genWeight" in meta["weight_definition"]


def test_dy_feature_extraction_mode(nano_dy):
    result = run_columnar(
        [nano_dy],
        SemileptonicProcessor(require=(), variations=["jes_up", "lepton_sf_up"]),
        executor="iterative",
        progress=False,
    )
    table = result.to_pandas("nano_dy")
    assert len(table) == 40
    with uproot.open(nano_dy) as f:
        events = f["Events"].arrays(["event", "MET_pt", "genWeight", "nJet"], library="np")
    np.testing.assert_array_equal(table["event"], events["event"])
    np.testing.assert_allclose(table["met_pt"], events["MET_pt"], rtol=1e-6)
    # no cross-section for real NanoAOD: weight = genWeight x scale factors
    ratio = table["weight"] / events["genWeight"]
    assert ratio.between(0.8, 1.2).all()
    has_lepton = table["lep_flavour"] != 0
    assert has_lepton.any() and table.loc[has_lepton, "m_lv"].notna().all()
    assert (table["n_jets"] <= events["nJet"]).all()


def test_old_btag_branch_choice(nano_dy):
    result = run_columnar(
        [nano_dy],
        SemileptonicProcessor(btag_branch="Jet_btagDeepB", require=("one_lepton",), variations=[]),
        executor="iterative",
        progress=False,
    )
    assert result.table("nano_dy").num_rows == result.cutflow["nano_dy"]["nominal"]["events"][1]


def test_cli_on_real_nanoaod(nano_dy, tmp_path):
    code = main(
        [
            str(nano_dy),
            "-o",
            str(tmp_path),
            "--executor",
            "iterative",
            "--no-progress",
            "--require",
            "none",
            "--variations",
            "jer_down",
        ]
    )
    assert code == 0
    assert (tmp_path / "nano_dy" / "jer_down.parquet").is_file()
