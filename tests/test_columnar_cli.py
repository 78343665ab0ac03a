"""``python -m analysis_lib.columnar``: help, a real run, and its errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask.config
import pyarrow.parquet as pq
import pytest
from columnar_samples import truncate_copy, write_sample

from analysis_lib.columnar import VARIATIONS
from analysis_lib.columnar.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "analysis_lib.columnar", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def default_ctrl_c() -> None:
    """In a child: SIGINT as a terminal's program gets it, even where the tests run with it
    ignored (a shell's background job inherits SIGINT ignored, and so do its children)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("cli") / "ttbar.root", 1500, seed=21)


def test_help_documents_the_command():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "usage: python -m analysis_lib.columnar" in text
    assert "INPUT" in text and "--output DIR" in text
    for name in VARIATIONS:
        assert name in text
    for option in ("--skip-bad-files", "--variations", "--btag-branch", "--model", "--executor"):
        assert option in text
    assert "exit status" in text


def test_real_run_writes_one_table_per_variation(sample, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(
        str(sample),
        "--output",
        str(out),
        "--executor",
        "iterative",
        "--no-progress",
        "--variations",
        "jes_up,jes_down,btag_sf_up",
    )
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (out / "ttbar").glob("*.parquet"))
    assert names == ["btag_sf_up.parquet", "jes_down.parquet", "jes_up.parquet", "nominal.parquet"]
    for name in names:
        assert pq.read_table(out / "ttbar" / name).num_rows > 0
        assert f"ttbar/{name}" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["samples"]["ttbar"]["tables"]) == {
        "nominal",
        "jes_up",
        "jes_down",
        "btag_sf_up",
    }


def test_unknown_variation_exits_1_listing_the_known(sample, tmp_path):
    proc = run_cli(str(sample), "--output", str(tmp_path), "--variations", "jes_sideways")
    assert proc.returncode == 1
    assert "jes_sideways" in proc.stderr
    assert all(name in proc.stderr for name in VARIATIONS)
    assert "Traceback" not in proc.stderr


def test_bad_file_exit_status_and_skip(sample, tmp_path, capsys):
    bad = truncate_copy(sample, tmp_path / "broken.root")
    code = main(
        [str(bad), "--output", str(tmp_path / "a"), "--executor", "iterative", "--no-progress"]
    )
    assert code == 1
    assert str(bad) in capsys.readouterr().err

    code = main(
        [
            str(sample),
            str(bad),
            "--sample",
            "tt",
            "--output",
            str(tmp_path / "b"),
            "--executor",
            "iterative",
            "--no-progress",
            "--skip-bad-files",
            "--variations",
            "nominal",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "skipped 1 unreadable file" in captured.err and str(bad) in captured.err
    assert (tmp_path / "b" / "tt" / "nominal.parquet").is_file()


def test_skipped_files_are_listed_one_line_each(sample, tmp_path, capsys):
    truncated = truncate_copy(sample, tmp_path / "truncated.root")
    not_root = tmp_path / "not_root.root"
    not_root.write_text("hello\n")  # uproot's error for it spans three lines
    args = [str(sample), str(truncated), str(not_root), "--output", str(tmp_path / "out")]
    code = main([*args, "--executor", "iterative", "--no-progress", "--skip-bad-files"])
    err = capsys.readouterr().err
    assert code == 0
    listing = err.split("skipped 2 unreadable file(s):\n", 1)[1].splitlines()
    assert len(listing) == 2, err
    assert {line.split(": ", 1)[0].strip() for line in listing} == {str(truncated), str(not_root)}
    assert any("not a readable ROOT file" in line for line in listing), err


def test_bad_model_and_output_exit_1_naming_them(sample, tmp_path, capsys):
    missing = tmp_path / "bdt.json"
    args = [str(sample), "--executor", "iterative", "--no-progress"]
    assert main([*args, "--output", str(tmp_path / "a"), "--model", str(missing)]) == 1
    assert capsys.readouterr().err.strip() == f"error: {missing}: no such file"
    assert not (tmp_path / "a").exists()  # refused before anything is written
    occupied = tmp_path / "occupied"
    occupied.write_text("a file, not a directory")
    assert main([*args, "--output", str(occupied)]) == 1
    err = capsys.readouterr().err
    assert f"{occupied}: cannot create the output directory" in err and "Traceback" not in err


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--output", "x"])
    assert info.value.code == 2
    assert "no INPUT" in capsys.readouterr().err
    assert main(["--list-variations"]) == 0
    assert "lepton_sf_down" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # empty lists: most likely an unset shell variable ($CUTS); they used to mean
        # "write every event" and "nominal only" without a word
        (["--require", ""], "--require is empty: name cuts, or 'none'"),
        (["--variations", ""], "--variations is empty: name variations, or 'nominal'"),
        (["--score-column", "bdt"], "--score-column is for a model's scores: it needs --model"),
        (["--model-features", "lep_pt"], "--model-features is for a model's scores"),
        # the features look at 6 jets: a 7th stored column was NaN in every row
        (["--n-jets-stored", "7"], "--n-jets-stored must be between 1 and 6, got 7"),
        (["--n-jets-stored", "0"], "--n-jets-stored must be between 1 and 6, got 0"),
    ],
)
def test_options_that_would_be_silently_ignored_or_misread_are_usage_errors(
    sample, tmp_path, capsys, args, message
):
    with pytest.raises(SystemExit) as info:
        main([str(sample), "-o", str(tmp_path / "out"), *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--met-min", "nan"], "Cuts met_min must be a finite number >= 0, got nan"),
        (["--n-jets-min", "-1"], "Cuts n_jets_min must be a whole number >= 0, got -1"),
        (["--lepton-pt-min", "inf"], "Cuts lepton_pt_min must be a finite number >= 0, got inf"),
    ],
)
def test_bad_thresholds_exit_1_naming_them(sample, tmp_path, capsys, args, message):
    # nan and inf gave empty tables with exit status 0
    assert main([str(sample), "-o", str(tmp_path / "out"), *args]) == 1
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_no_readable_file_at_all_exits_1(tmp_path, capsys):
    not_root = tmp_path / "a.root"
    not_root.write_text("hello\n")
    empty = tmp_path / "b.root"
    empty.write_bytes(b"")
    args = [str(not_root), str(empty), "-o", str(tmp_path / "out"), "--skip-bad-files"]
    assert main([*args, "--executor", "iterative", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "skipped 2 unreadable file(s)" in err
    assert "error: no input file could be read: no table was written" in err


def test_a_rerun_replaces_the_samples_tables_and_maxchunks_is_recorded(sample, tmp_path, capsys):
    out = tmp_path / "out"
    common = [str(sample), "-o", str(out), "--executor", "iterative", "--no-progress"]
    assert main([*common, "--variations", "jes_up,jer_up"]) == 0
    assert main([*common, "--variations", "jes_up", "--chunksize", "500", "--maxchunks", "1"]) == 0
    captured = capsys.readouterr()
    # the first run's jer_up table would otherwise sit beside the second run's tables
    assert sorted(p.name for p in (out / "ttbar").iterdir()) == [
        "jes_up.json",
        "jes_up.parquet",
        "nominal.json",
        "nominal.parquet",
    ]
    assert "note: sample 'ttbar': 500 of 1500 events processed (--maxchunks)" in captured.err
    meta = json.loads((out / "ttbar" / "nominal.json").read_text())
    assert meta["events"] == {"in_files": 1500, "processed": 500, "complete": False}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples"]["ttbar"]["events"]["complete"] is False


def test_unknown_cut_and_missing_branch(sample, tmp_path, capsys):
    assert main([str(sample), "-o", str(tmp_path), "--require", "two_leptons"]) == 1
    assert "one_lepton, jets, btag, met" in capsys.readouterr().err
    old = write_sample(tmp_path / "old.root", 20, rename={"Jet_btagDeepFlavB": "Jet_btagDeepB"})
    assert main([str(old), "-o", str(tmp_path), "--executor", "iterative"]) == 1
    err = capsys.readouterr().err
    assert "Jet_btagDeepB" in err and "--btag-branch" in err


def test_unreachable_scheduler_exits_1_naming_it(sample, tmp_path, capsys):
    # nothing listens on port 1; the connection timeout is shortened from Dask's 30 s
    args = [str(sample), "-o", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:1"]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:1: ")
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("executor", ["iterative", "dask"])
def test_ctrl_c_keeps_the_finished_chunks_and_the_same_command_resumes(executor, tmp_path):
    # a real SIGINT (Ctrl-C, or a batch system's) while the command runs: exit status 130, a
    # message saying what is kept and what to do, no traceback, no table; then the same
    # command finishes the run from the checkpoints, as an uninterrupted run would. On Dask
    # (a local cluster, which imports dask-jobqueue) the status was 0, without a word.
    path = write_sample(tmp_path / "many_chunks.root", 40_000, seed=5, basket_size=1000)
    out, reference = tmp_path / "out", tmp_path / "reference"
    args = [str(path), "--executor", executor, "--no-progress", "--chunksize", "1000"]
    if executor == "dask":
        args += ["--workers", "1"]
    args += ["--variations", "jes_up"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    command = [sys.executable, "-m", "analysis_lib.columnar", *args]
    proc = subprocess.Popen(
        [*command, "--output", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_ctrl_c,
    )
    deadline = time.monotonic() + 240
    while not list(out.glob(".checkpoints/**/*.coffea")):  # the first chunk is done
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no chunk finished in 240 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    kept = list(out.glob(".checkpoints/**/*.coffea"))
    assert proc.returncode == 130, (stdout, stderr)
    assert 1 <= len(kept) < 40, "interrupted after the first chunk, before the last"
    assert (
        f"interrupted: {len(kept)} finished chunk(s) are kept in {out / '.checkpoints'}" in stderr
    )
    assert "run the same command again" in stderr
    assert "Traceback" not in stderr, stderr
    assert not list(out.glob("*/*.parquet"))

    resumed = run_cli(*args, "--output", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert not (out / ".checkpoints").exists()
    assert run_cli(*args, "--output", str(reference)).returncode == 0
    for variation in ("nominal", "jes_up"):
        table = pq.read_table(out / "many_chunks" / f"{variation}.parquet")
        assert table.num_rows > 0
        assert table.equals(pq.read_table(reference / "many_chunks" / f"{variation}.parquet"))
