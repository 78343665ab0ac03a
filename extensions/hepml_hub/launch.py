"""Entry point of a user's server: prepare the home, then run ``jupyterhub-singleuser``.

Runs as the user (after the spawner or the fork server dropped privileges), so the
preparation can only touch what the user could touch anyway.

Command line::

    python -m hepml_hub.launch [jupyterhub-singleuser arguments...]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from hepml_hub.tutorials import install_tutorials


def prepare_session(environ: Mapping[str, str]) -> None:
    """Copy new tutorials into the home (``HEPML_TUTORIALS_SRC`` names the source)."""
    src, home = environ.get("HEPML_TUTORIALS_SRC"), environ.get("HOME")
    if not (src and home):
        return
    try:
        copied = install_tutorials(Path(src), Path(home))
    except OSError as exc:  # a full or read-only home must not keep the server down
        print(f"hepml-hub: could not copy tutorials into {home}: {exc}", file=sys.stderr)
    else:
        if copied:
            print(
                f"hepml-hub: copied {len(copied)} tutorial file(s) into {home}/tutorials",
                file=sys.stderr,
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Prepare the session, then run the single-user server with ``argv``."""
    prepare_session(os.environ)
    from jupyterhub.singleuser import main as singleuser_main

    argv = list(sys.argv[1:] if argv is None else argv)
    sys.argv = ["jupyterhub-singleuser", *argv]
    return singleuser_main(argv) or 0


if __name__ == "__main__":
    sys.exit(main())
