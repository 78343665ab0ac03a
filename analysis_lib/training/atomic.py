"""Writing a file atomically: under a temporary name in the same directory, then renamed.

A reader sees the previous file or the complete new one, never a half-written file; on
any error (or interrupt) the temporary file is removed and the target left as it was.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = atomic_write(Path(tmp) / "out.txt", lambda t: Path(t).write_text("done"))
...     path.read_text(), sorted(p.name for p in Path(tmp).iterdir())
('done', ['out.txt'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_write"]


def atomic_write(path: Path, write: Callable[[str], Any], *, mode: int | None = None) -> Path:
    """Create ``path`` by ``write(tmp)`` on a temporary file next to it, then ``os.replace``.

    Parameters
    ----------
    path : pathlib.Path
        The file to (re)place; its directory is created if missing.
    write : callable
        Writes the whole content to the temporary file name it is given.
    mode : int, optional
        Permissions of the new file (``0o644``: readable by all); default: the temporary
        file's own (``0o600``).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
