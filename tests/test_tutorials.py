"""Tutorials copied on first spawn; the user's edits never overwritten."""

from __future__ import annotations

from hepml_hub.tutorials import install_tutorials


def test_first_copy_then_only_new_files(tmp_path):
    src, home = tmp_path / "src", tmp_path / "home"
    (src / "data").mkdir(parents=True)
    (src / "01-tour.ipynb").write_text("original")
    (src / "data" / "x.csv").write_text("1,2")
    (src / ".hidden").write_text("no")
    home.mkdir()
    assert install_tutorials(src, home) == ["01-tour.ipynb", "data/x.csv"]
    assert not (home / "tutorials" / ".hidden").exists()

    edited = home / "tutorials" / "01-tour.ipynb"
    edited.write_text("my edits")
    (home / "tutorials" / "data" / "x.csv").unlink()  # deleted by the user
    (src / "02-columnar.ipynb").write_text("new tutorial")
    assert install_tutorials(src, home) == ["02-columnar.ipynb"]
    assert edited.read_text() == "my edits"
    assert not (home / "tutorials" / "data" / "x.csv").exists()
    assert not list(home.rglob("*.tmp-*"))


def test_missing_source_is_a_no_op(tmp_path):
    assert install_tutorials(tmp_path / "none", tmp_path) == []
