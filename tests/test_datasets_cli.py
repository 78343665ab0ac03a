"""``python -m analysis_lib.datasets``: list, info and generate, and its exit statuses."""

from __future__ import annotations

import json
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
