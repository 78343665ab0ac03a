"""The evaluation package's public names: all exported, imported lazily, picklable results."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np

import analysis_lib.evaluation as evaluation


def test_every_public_name_resolves():
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None, name
    assert set(evaluation.__all__) <= set(dir(evaluation))
    # the function, not the submodule of the same name
    assert evaluation.ams(10.0, 0.0) == evaluation.asimov_z0(10.0, 10.0)


def test_light_names_do_not_import_pyhf_or_matplotlib():
    code = (
        "import sys\n"
        "from analysis_lib.evaluation import ams, roc_auc, scan_thresholds, make_template\n"
        "print(sorted(m for m in ('pyhf', 'matplotlib', 'coffea') if m in sys.modules))\n"
        "from analysis_lib.evaluation import expected_sensitivity\n"
        "print('pyhf' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True"


def test_results_pickle_for_dask_workers():
    roc = evaluation.roc_curve([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6])
    scan = evaluation.scan_thresholds([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6])
    template = evaluation.Template(
        [0, 0.5, 1], [2.0, 1.0], variations={"jes": ([2, 1.5], [2, 0.5])}
    )
    for obj in (roc, scan, template):
        back = pickle.loads(pickle.dumps(obj))
        assert type(back) is type(obj)
    back = pickle.loads(pickle.dumps(template))
    np.testing.assert_array_equal(back.variations["jes"][1], [2.0, 0.5])
    assert pickle.loads(pickle.dumps(roc)).auc == roc.auc == 1.0
