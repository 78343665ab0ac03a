"""Real CMS NanoAOD for compatibility checks: the small files in coffea's source distribution.

coffea's sdist carries a few real NanoAOD files under ``tests/samples/`` (``nano_dy.root``:
40 Drell-Yan events, ``nano_dimuon.root``, ...). :func:`fetch_coffea_sample` downloads the
sdist of the installed coffea version once with pip
(``pip download --no-deps --no-binary :all: coffea==<version>``), extracts the file asked for,
and caches both under ``$HEPML_DATA_CACHE`` (default ``~/.cache/hepml-hub/``)::

    <cache>/coffea-<version>/coffea-<version>.tar.gz
    <cache>/coffea-<version>/samples/<name>

Every file lands under its final name by an atomic rename, so concurrent or interrupted
fetches never leave a partial file behind. The first fetch needs network access to PyPI
(pip also builds the sdist's metadata, which takes about half a minute); later ones read the
cache.

Examples
--------
>>> path = fetch_coffea_sample("nano_dy.root")  # doctest: +SKIP
>>> import uproot; uproot.open(path)["Events"].num_entries  # doctest: +SKIP
40
>>> fetch_coffea_sample("nano_tt.root")  # doctest: +SKIP
Traceback (most recent call last):
...
analysis_lib.datasets.cms.SampleNotFoundError: 'nano_tt.root' is not in coffea 2026.9.0's ...
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from pathlib import Path

SAMPLES_DIR = "tests/samples"


class SampleNotFoundError(KeyError):
    """The sample name is not among the files of coffea's ``tests/samples``."""

    def __str__(self) -> str:
        return str(self.args[0])


def cache_dir() -> Path:
    """The data cache: ``$HEPML_DATA_CACHE`` or ``~/.cache/hepml-hub``.

    Examples
    --------
    >>> cache_dir().is_absolute() or "HEPML_DATA_CACHE" in os.environ
    True
    """
    env = os.environ.get("HEPML_DATA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hepml-hub"


def coffea_version() -> str:
    """The installed coffea version."""
    return importlib.metadata.version("coffea")


def _pip_command() -> list[str]:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise RuntimeError(
        "pip is needed to download coffea's source distribution, but neither this "
        f"interpreter ({sys.executable}) nor PATH has it; install pip"
    )


def fetch_coffea_sdist(version: str | None = None, *, cache: Path | None = None) -> Path:
    """The sdist ``coffea-<version>.tar.gz`` (default: the installed version), downloaded once.

    Raises
    ------
    RuntimeError
        pip failed (no network, unknown version); the message ends with pip's output.
    """
    version = version or coffea_version()
    directory = (cache or cache_dir()) / f"coffea-{version}"
    target = directory / f"coffea-{version}.tar.gz"
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as tmp:
        cmd = [
            *_pip_command(),
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "--dest",
            tmp,
            f"coffea=={version}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(Path(tmp).glob("coffea-*.tar.gz"))
        if proc.returncode != 0 or not found:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
            raise RuntimeError(
                f"could not download coffea {version}'s source distribution with "
                f"{' '.join(cmd)} (exit {proc.returncode}):\n" + "\n".join(tail)
            )
        os.replace(found[0], target)
    return target


def list_coffea_samples(version: str | None = None, *, cache: Path | None = None) -> list[str]:
    """The file names under ``tests/samples`` in coffea's sdist (downloads it if needed)."""
    sdist = fetch_coffea_sdist(version, cache=cache)
    with tarfile.open(sdist) as tar:
        return sorted(_samples(tar))


def _samples(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    out = {}
    for member in tar.getmembers():
        parts = member.name.split("/", 1)
        if len(parts) == 2 and parts[1].startswith(SAMPLES_DIR + "/") and member.isfile():
            rel = parts[1][len(SAMPLES_DIR) + 1 :]
            if "/" not in rel:
                out[rel] = member
    return out


def fetch_coffea_sample(
    name: str, *, version: str | None = None, cache: Path | None = None
) -> Path:
    """Path to ``tests/samples/<name>`` of coffea's sdist, extracted once into the cache.

    Parameters
    ----------
    name : str
        A file name, e.g. ``"nano_dy.root"``.
    version : str, optional
        coffea version (default: the installed one).
    cache : pathlib.Path, optional
        Cache directory (default: :func:`cache_dir`).

    Raises
    ------
    SampleNotFoundError
        ``name`` is not in the sdist; the message lists the files that are.
    RuntimeError
        The sdist could not be downloaded.
    """
    version = version or coffea_version()
    root = (cache or cache_dir()) / f"coffea-{version}" / "samples"
    target = root / name
    if target.is_file():
        return target
    sdist = fetch_coffea_sdist(version, cache=cache)
    with tarfile.open(sdist) as tar:
        members = _samples(tar)
        if name not in members:
            raise SampleNotFoundError(
                f"{name!r} is not in coffea {version}'s {SAMPLES_DIR}; it has: "
                + ", ".join(sorted(members))
            )
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with tar.extractfile(members[name]) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target
