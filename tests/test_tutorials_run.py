"""The tutorials run from top to bottom in the project's environment, and say what they should.

Every ``tutorials/NN-*.ipynb`` is executed with nbclient on a kernel of this interpreter
(``sys.executable``), in a copy of ``tutorials/`` in a temporary directory, with a small
data size (``HEPML_TUTORIAL_SCALE``) and a temporary sample cache (``HEPML_DATA_CACHE``;
the notebooks share it, so later tutorials reuse the samples of earlier ones). Any error
fails the test. Each notebook ends by printing ``HEPML_RESULTS <json>``: its key numbers,
asserted here against floors that a broken pipeline or a mistrained model would miss.

The committed notebooks carry no outputs and no execution counts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS_DIR = ROOT / "tutorials"
TUTORIALS = sorted(TUTORIALS_DIR.glob("[0-9][0-9]-*.ipynb"))
#: Fraction of each notebook's default data size used in the test run (kept under 2 min each).
SCALE = os.environ.get("HEPML_TUTORIAL_SCALE", "0.25")
RESULTS_MARK = "HEPML_RESULTS "
TIMINGS: dict[str, float] = {}


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def write_kernelspec(spec_dir: Path, env: dict) -> None:
    """A kernelspec named ``hepml-tutorial-test`` on this interpreter, with ``env``."""
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hepml tutorial test",
        "language": "python",
        "env": env,
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


@pytest.fixture(scope="session")
def tutorial_env(tmp_path_factory) -> dict:
    """A kernelspec on this interpreter, a shared sample cache, and the work directory."""
    base = tmp_path_factory.mktemp("tutorials")
    cache = base / "cache"
    cache.mkdir()
    # Reuse an already downloaded coffea source package (the real CMS file) if there is one.
    for cached in (Path.home() / ".cache" / "hepml-hub").glob("coffea-*"):
        (cache / cached.name).symlink_to(cached, target_is_directory=True)
    work = base / "work"
    shutil.copytree(TUTORIALS_DIR, work)
    spec_dir = base / "kernels" / "hepml-tutorial-test"
    spec_dir.mkdir(parents=True)
    env = {
        "HEPML_TUTORIAL_SCALE": SCALE,
        "HEPML_DATA_CACHE": str(cache),
        "HEPML_CORES": "2",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    write_kernelspec(spec_dir, env)
    yield {"work": work, "kernel_dirs": [str(spec_dir.parent)], "cache": cache, "env": env}
    if TIMINGS:
        print("\ntutorial execution times:", json.dumps(TIMINGS))


def execute(path: Path, env: dict) -> tuple[nbformat.NotebookNode, dict, float]:
    """Run one notebook in the work directory; its printed results and the wall time."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    ksm = KernelSpecManager(kernel_dirs=env["kernel_dirs"])
    km = KernelManager(kernel_name="hepml-tutorial-test", kernel_spec_manager=ksm)
    client = NotebookClient(
        nb, km=km, timeout=300, resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    results = None
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            for line in text.splitlines():
                if line.startswith(RESULTS_MARK):
                    results = json.loads(line[len(RESULTS_MARK) :])
    keep = os.environ.get("HEPML_TUTORIAL_KEEP")  # a directory for the executed notebooks
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(keep) / path.name)
    assert results is not None, f"{path.name} printed no {RESULTS_MARK.strip()} line"
    return nb, results, elapsed


def _check_01(r: dict) -> None:
    assert r["sum_squares"] == sum(x * x for x in range(40))
    assert r["workers"] >= 1
    assert r["xgboost_accuracy"] > 0.8
    assert r["HEPML_STACK"] in ("cpu", "gpu")
    assert int(r["HEPML_CORES"]) == 2  # the test's session value, read from the environment


def _check_02(r: dict) -> None:
    assert r["selected"]["zprime_m1000"] > 0 and r["selected"]["ttbar_semilep"] > 0
    # the harder signal passes the tt̄ selection more often than tt̄ itself
    assert r["selected"]["zprime_m1000"] > r["selected"]["ttbar_semilep"]
    assert r["tables"] == 2 * 9
    assert r["median_m_wwbb"]["signal"] > r["median_m_wwbb"]["background"] + 100


def _check_03(r: dict) -> None:
    assert r["auc_test"] > 0.8
    assert r["auc_train"] >= r["auc_test"] - 0.05
    assert 0.0 <= r["best_threshold"] <= 1.0
    assert r["best_ams"] > r["ams_no_cut"]


def _check_04(r: dict) -> None:
    assert r["auc_dnn"] > 0.8 and r["auc_bdt"] > 0.8
    assert abs(r["auc_dnn"] - r["auc_bdt"]) < 0.1
    assert r["correlation"] > 0.5  # both learnt the same thing
    assert r["epochs"] >= 1


def _check_05(r: dict) -> None:
    assert set(r["auc_pnn"]) == {"500", "750", "1000", "1250", "1500"}
    assert min(r["auc_pnn"].values()) > 0.65
    assert set(r["auc_left_out"]) == {"750", "1000", "1250"}
    assert min(r["auc_left_out"].values()) > 0.65
    # away from its training mass the single-mass network is not better than the
    # parameterised one by more than noise
    for mass in ("500", "1500"):
        assert r["auc_pnn"][mass] > r["auc_fixed_1000"][mass] - 0.05


def _check_06(r: dict) -> None:
    methods = ("nominal only", "augmentation", "pivot", "INFERNO")
    for name in methods:
        row = r[name]
        # the systematics can only cost sensitivity
        assert 0 < row["Z0 (syst)"] <= row["Z0 (stat only)"] + 1e-6, (name, row)
        assert row["sigma_mu (syst)"] >= row["sigma_mu (stat only)"] - 1e-6, (name, row)
        assert row["Z0 (syst)"] > 1.0, (name, row)
    assert r["nominal only"]["Z0 (syst)"] > 3.0
    # the adversary makes the background score depend less on the jet energy scale
    assert r["jes_shift"]["pivot"] < r["jes_shift"]["nominal only"]


def _check_07(r: dict) -> None:
    assert r["killed"] == 1
    assert r["executed_resume"] == 2  # only the new trials ran after the "restart"
    assert r["trials"] == r["executed_first"] + 2
    assert r["best_validation_auc"] > 0.75 and r["test_auc"] > 0.75
    if r["backend"] == "local":
        assert r["batch_done"] is None  # the batch section only runs on a batch backend
    else:
        assert r["batch_done"] == r["trials"] - 2  # the same scan, every trial done


def _check_08(r: dict) -> None:
    assert r["max_difference"] < 1e-5  # the pipeline's score is the model's score
    assert r["tables"] == 2 * 9
    assert 0 < r["z0_syst"] <= r["z0_stat"] + 1e-6


CHECKS = {
    "01": _check_01,
    "02": _check_02,
    "03": _check_03,
    "04": _check_04,
    "05": _check_05,
    "06": _check_06,
    "07": _check_07,
    "08": _check_08,
}


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=_ids(TUTORIALS))
def test_tutorial_runs(path: Path, tutorial_env: dict) -> None:
    _, results, elapsed = execute(tutorial_env["work"] / path.name, tutorial_env)
    TIMINGS[path.stem] = round(elapsed, 1)
    print(f"{path.name}: {elapsed:.1f} s")
    check = CHECKS.get(path.name[:2])
    assert check is not None, f"no key-number check for {path.name}"
    check(results)
    # Generated data went to the cache, never next to the notebooks.
    assert not list(tutorial_env["work"].rglob("*.root"))
    assert not list(tutorial_env["work"].rglob("*.parquet"))


@pytest.mark.slow
@pytest.mark.slurm
def test_scan_tutorial_on_the_batch_backend(slurm, tutorial_env: dict, tmp_path: Path) -> None:
    """Tutorial 07 in a session whose spawn form chose Slurm: its batch section runs there."""
    spec_dir = tmp_path / "kernels" / "hepml-tutorial-test"
    spec_dir.mkdir(parents=True)
    site = tmp_path / "site-compute.yaml"  # what a site's admin writes for its batch farm
    site.write_text(
        f"hepml:\n  compute:\n    slurm:\n      queue: {slurm.partition}\n"
        '      walltime: "00:10:00"\n'
        f"      python: {slurm.python}\n      log-directory: {tmp_path / 'logs'}\n"
    )
    env = {
        **tutorial_env["env"],
        "HEPML_DASK_BACKEND": "slurm",
        "HEPML_CORES": "1",  # one core per worker job: both jobs fit on the test node
        "HEPML_MEMORY": "1G",
        "HEPML_COMPUTE_CONFIG": str(site),
        "SLURM_CONF": str(slurm.conf),
    }
    write_kernelspec(spec_dir, env)
    work = tmp_path / "work"
    shutil.copytree(tutorial_env["work"], work, ignore=shutil.ignore_patterns("*-store*"))
    path = work / "07-hyperparameter-scan-on-dask.ipynb"
    _, results, elapsed = execute(path, {**tutorial_env, "kernel_dirs": [str(spec_dir.parent)]})
    print(f"07 on Slurm: {elapsed:.1f} s")
    assert results["backend"] == "slurm"
    _check_07(results)
    assert slurm.wait_until_no_jobs(slurm.job_ids(), timeout=60), slurm.job_ids()


def test_tutorials_exist() -> None:
    assert [p.name[:2] for p in TUTORIALS] == [f"{i:02d}" for i in range(1, len(TUTORIALS) + 1)]
    assert len(TUTORIALS) >= 5


def _stripped(nb: nbformat.NotebookNode, name: str) -> None:
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell has outputs"
            assert cell.execution_count is None, f"{name}: a code cell has an execution count"


@pytest.mark.parametrize("path", TUTORIALS, ids=_ids(TUTORIALS))
def test_tutorial_is_stripped_and_well_formed(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    _stripped(nb, path.name)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "Learning goals" in first.source
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    assert nb.cells.index(tagged[0]) <= 3, "the parameters cell belongs near the top"
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert solutions, f"{path.name} has no exercise solutions"
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") for c in solutions)
    assert any("Exercise" in c.source for c in nb.cells if c.cell_type == "markdown")
    # The committed version too, if this file is already in git.
    rel = path.relative_to(ROOT).as_posix()
    shown = subprocess.run(
        ["git", "show", f"HEAD:{rel}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if shown.returncode == 0:
        _stripped(nbformat.reads(shown.stdout, as_version=4), f"HEAD:{rel}")
