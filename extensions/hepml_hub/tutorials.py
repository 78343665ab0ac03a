"""Copy the tutorials into a user's home on first spawn, never overwriting their edits.

It runs inside the user's server process, as the user (see :mod:`hepml_hub.launch`), so
a symbolic link planted in the home cannot make it write elsewhere with the hub's rights.
The first spawn copies the whole folder to ``~/tutorials``. Later spawns add only
tutorials that are new since the last copy; files the user edited or deleted are left
alone. What was copied is recorded in ``~/.hepml/tutorials.json``.

Examples
--------
>>> import tempfile, pathlib
>>> src, home = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
>>> _ = (src / "01-tour.ipynb").write_text("{}")
>>> install_tutorials(src, home)
['01-tour.ipynb']
>>> install_tutorials(src, home)
[]
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

MANIFEST = Path(".hepml") / "tutorials.json"


def _files(src: Path) -> list[str]:
    return sorted(
        str(p.relative_to(src))
        for p in src.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(src).parts)
        and "__pycache__" not in p.parts
    )


def install_tutorials(src: Path, home: Path, *, dest_name: str = "tutorials") -> list[str]:
    """Copy tutorials from ``src`` to ``home/dest_name`` that were never copied before.

    Parameters
    ----------
    src : Path
        The project's ``tutorials/`` folder.
    home : Path
        The user's home.
    dest_name : str
        Folder name inside the home.

    Returns
    -------
    list of str
        Relative paths copied this time.
    """
    if not src.is_dir():
        return []
    manifest_path = home / MANIFEST
    try:
        done = set(json.loads(manifest_path.read_text())["copied"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        done = set()
    dest = home / dest_name
    copied = []
    for rel in _files(src):
        target = dest / rel
        if rel in done or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.copyfile(src / rel, tmp)
        os.replace(tmp, target)
        copied.append(rel)
    if copied or not manifest_path.exists():
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = manifest_path.with_name(f".{manifest_path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"copied": sorted(done | set(copied))}, indent=1))
        os.replace(tmp, manifest_path)
    return copied
