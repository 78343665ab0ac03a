"""Generator to features: Pythia 8 samples through the columnar pipeline, end to end."""

from __future__ import annotations

import numpy as np
import pytest

from analysis_lib.columnar import SemileptonicProcessor, run_columnar
from analysis_lib.datasets import generate, load_metadata, luminosity_weight

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    cache = tmp_path_factory.mktemp("samples")
    return {
        name: generate(name, 600, seed=7, cache_dir=cache, n_workers=2, progress=False)
        for name in ("ttbar_semilep", "zprime_m1500")
    }


def test_generated_samples_give_features_per_variation(samples, tmp_path):
    result = run_columnar(
        dict(samples),
        SemileptonicProcessor(lumi_pb=1000.0),
        output=tmp_path / "features",
        executor="iterative",
        progress=False,
    )
    for name, path in samples.items():
        tables = result.tables[name]
        assert {"nominal", "jes_up", "jes_down", "btag_sf_up", "lepton_sf_down"} <= set(tables)
        nominal = tables["nominal"].to_pandas()
        # a semileptonic sample passes the semileptonic selection for a good fraction
        assert len(nominal) > 0.05 * 600, (name, result.cutflow[name]["nominal"])
        assert np.isfinite(nominal["m_wwbb"]).all() and (nominal["m_wwbb"] > 0).all()
        # weights carry the generator's cross-section: sum over all events = sigma * L
        meta = load_metadata(path)
        per_event = luminosity_weight(meta, 1.0)  # 1 fb^-1 = 1000 pb^-1
        cutflow = result.cutflow[name]["nominal"]
        assert cutflow["events"][0] == 600
        # the cutflow weights include the (≤ 1) lepton and b-tag scale factors
        assert 0.9 * 600 * per_event < cutflow["sumw"][0] <= 600 * per_event * (1 + 1e-6)
        assert result.paths[name]["nominal"].exists()
    # the Z' (1500 GeV) system is heavier than SM ttbar
    m_tt = {n: np.median(result.tables[n]["nominal"]["m_wwbb"]) for n in samples}
    assert m_tt["zprime_m1500"] > 1.5 * m_tt["ttbar_semilep"]
