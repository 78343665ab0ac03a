"""``python -m analysis_lib.datasets``: list, info and generate, and its exit statuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from analysis_lib.datasets.__main__ import main
from analysis_lib.datasets.registry import list_samples


def test_list_and_info(capsys):
    assert main(["list"]) == 0
    assert capsys.readouterr().out.split() == list_samples()
    assert main(["info", "zprime_m750"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "zprime_m750" and info["mass"] == 750.0
    assert "32:m0 = 750.0" in info["pythia_settings"]


def test_generate_help_lists_the_samples_and_exit_statuses(capsys):
    try:
        main(["generate", "--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in list_samples())
    assert "exit status: 0 done" in text and "130 interrupted" in text
    assert "$HEPML_DATA_CACHE" in text


def test_bad_arguments_exit_2_naming_them(capsys):
    assert main(["info", "zprime_m600"]) == 2
    err = capsys.readouterr().err
    assert "zprime_m600" in err and all(name in err for name in list_samples())
    assert main(["generate", "ttbar_semilep", "-n", "0"]) == 2
    assert "n_events must be a positive integer, got 0" in capsys.readouterr().err


def test_unwritable_cache_exits_1_naming_it(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    cache = blocker / "cache"
    args = ["generate", "ttbar_semilep", "-n", "5", "--cache-dir", str(cache), "--no-progress"]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and str(blocker) in err and "Traceback" not in err


def test_generate_prints_the_cached_file(tmp_path, capsys):
    args = ["generate", "ttbar_semilep", "-n", "20", "--workers", "1"]
    args += ["--cache-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_file() and path.parent == tmp_path
    assert json.loads(Path(f"{path}.json").read_text())["n_events"] == 20
    before = path.stat().st_mtime_ns
    assert main(args) == 0  # the same configuration: the cached file, not a new one
    assert Path(capsys.readouterr().out.strip()) == path
    assert path.stat().st_mtime_ns == before


def test_ctrl_c_stops_the_workers_and_writes_nothing(tmp_path):
    # a real Ctrl-C (SIGINT to the process group, as a terminal sends it) while two worker
    # processes generate: status 130, one line saying nothing was written, no traceback,
    # an empty cache, and no worker process left running chunks nobody will write
    import psutil

    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "analysis_lib.datasets", "generate", "ttbar_semilep"]
    command += ["-n", "20000", "--workers", "2", "--cache-dir", str(cache), "--no-progress"]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as a terminal's program gets it, even where the tests run with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    workers: list[psutil.Process] = []
    while len(workers) < 2:  # both worker processes have started
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no worker processes in 120 s"
        time.sleep(0.05)
        workers = psutil.Process(proc.pid).children()
    time.sleep(1.0)  # into their first chunks
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    assert "interrupted: nothing was written" in stderr
    assert "Traceback" not in stderr, stderr
    assert stdout == ""
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == [], "worker processes outlived the command"
