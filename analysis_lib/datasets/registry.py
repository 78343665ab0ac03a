r"""The sample registry: Pythia samples addressed by name, generated once and cached.

Samples (:data:`SAMPLES`, :func:`list_samples`):

- ``ttbar_semilep``: SM tt̄ → l nu qq̄'bb̄ (l = e, mu), the background;
- ``zprime_m500``, ``zprime_m750``, ``zprime_m1000``, ``zprime_m1250``, ``zprime_m1500``,
  ``zprime_m2000``: Z' → tt̄ → l nu qq̄'bb̄ signals at those masses (GeV).

All samples are pp at 13 TeV, Pythia 8 at leading order, with the detector response of
:mod:`analysis_lib.datasets.detector`. :mod:`analysis_lib.datasets.pythia` documents the
file layout and what the cross-section means.

:func:`generate` writes ``<cache>/<name>-n<events>-s<seed>-<key>.root`` and
``<that>.json``. ``<key>`` is a hash of the full configuration: settings, number of
events, seed, chunk size, detector parameters and the generator, detector, Pythia and
FastJet versions. The same configuration returns the existing file without regenerating
it. Any change gives a new file. The cache directory is the ``cache_dir`` argument, else
``$HEPML_DATA_CACHE``, else ``~/.cache/hepml-hub/samples``.

Event weights
-------------
To normalise a sample to an integrated luminosity L, weight each event by

.. math:: w = \sigma\,[\mathrm{pb}] \times L\,[\mathrm{pb}^{-1}] \times
          \frac{\mathtt{genWeight}}{\mathtt{genEventSumw}}

Here ``genEventSumw`` is the sum of ``genWeight`` over the whole file, from the ``Runs``
tree or the JSON. :func:`luminosity_weight` computes it. With 1 fb⁻¹ = 1000 pb⁻¹, the
weights of a file sum to the expected number of events, sigma x L.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis_lib.datasets.detector import DetectorModel
from analysis_lib.datasets.pythia import (
    TTBAR_SETTINGS,
    GeneratorConfig,
    _check_positive_int,
    _version,
    generate_file,
    zprime_settings,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_SEED",
    "SAMPLES",
    "Sample",
    "UnknownSampleError",
    "config_for",
    "generate",
    "list_samples",
    "load_metadata",
    "luminosity_weight",
    "resolve_cache_dir",
    "sample_info",
    "sample_path",
]

DEFAULT_SEED = 1
DEFAULT_CHUNK_SIZE = 1000
ZPRIME_MASSES = (500, 750, 1000, 1250, 1500, 2000)


@dataclass(frozen=True)
class Sample:
    """A named sample: process, Z' mass (GeV) or ``None``, and its Pythia settings."""

    name: str
    process: str
    mass: float | None
    description: str
    pythia_settings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly description."""
        return {
            "name": self.name,
            "process": self.process,
            "mass": self.mass,
            "description": self.description,
            "pythia_settings": list(self.pythia_settings),
        }


def _build_samples() -> dict[str, Sample]:
    samples = {
        "ttbar_semilep": Sample(
            name="ttbar_semilep",
            process="ttbar_semileptonic",
            mass=None,
            description="SM ttbar (gg, qqbar -> ttbar, LO); one W -> e/mu nu, the other W -> qq'; "
            "background",
            pythia_settings=TTBAR_SETTINGS,
        )
    }
    for m in ZPRIME_MASSES:
        samples[f"zprime_m{m}"] = Sample(
            name=f"zprime_m{m}",
            process="zprime_ttbar_semileptonic",
            mass=float(m),
            description=f"Z' ({m} GeV, Pythia's default couplings, Z' term only) -> ttbar; "
            "one W -> e/mu nu, the other W -> qq'; signal",
            pythia_settings=zprime_settings(m),
        )
    return samples


#: The registered samples by name.
SAMPLES: dict[str, Sample] = _build_samples()


class UnknownSampleError(KeyError):
    """A sample name that is not in the registry (the message lists the known ones)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _sample(name: str) -> Sample:
    try:
        return SAMPLES[name]
    except (KeyError, TypeError):
        known = ", ".join(SAMPLES)
        raise UnknownSampleError(f"unknown sample {name!r}; known samples: {known}") from None


def list_samples() -> list[str]:
    """Names of the registered samples.

    Examples
    --------
    >>> list_samples()[:3]
    ['ttbar_semilep', 'zprime_m500', 'zprime_m750']
    """
    return list(SAMPLES)


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The sample cache directory: the argument, ``$HEPML_DATA_CACHE`` or ``~/.cache/...``.

    Examples
    --------
    >>> resolve_cache_dir("/tmp/samples")
    PosixPath('/tmp/samples')
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("HEPML_DATA_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "hepml-hub" / "samples"


def config_for(
    name: str,
    n_events: int,
    *,
    seed: int = DEFAULT_SEED,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    detector: DetectorModel | None = None,
) -> GeneratorConfig:
    """The generator configuration of sample ``name``.

    Raises :class:`UnknownSampleError` for an unknown name and :class:`ValueError` or
    :class:`TypeError`, naming the value, for a bad ``n_events``, ``seed`` or ``chunk_size``.

    Examples
    --------
    >>> config_for("zprime_m750", 100).process_settings[2]
    '32:m0 = 750.0'
    >>> config_for("zprime_m750", 0)
    Traceback (most recent call last):
    ...
    ValueError: n_events must be a positive integer, got 0
    """
    sample = _sample(name)
    _check_positive_int("n_events", n_events)
    return GeneratorConfig(
        sample.pythia_settings,
        n_events=n_events,
        seed=seed,
        chunk_size=chunk_size,
        semileptonic=True,
        detector=DetectorModel() if detector is None else detector,
    )


def sample_path(
    name: str,
    n_events: int,
    *,
    seed: int = DEFAULT_SEED,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    detector: DetectorModel | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Where :func:`generate` puts (or finds) this configuration of sample ``name``.

    Examples
    --------
    >>> sample_path("ttbar_semilep", 1000, seed=7, cache_dir="/data").name[:26]
    'ttbar_semilep-n1000-s7-cfg'
    """
    config = config_for(name, n_events, seed=seed, chunk_size=chunk_size, detector=detector)
    directory = resolve_cache_dir(cache_dir)
    return directory / f"{name}-n{config.n_events}-s{config.seed}-cfg{config.key()[:16]}.root"


def _metadata_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def load_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the metadata JSON of a generated ROOT file (``<file>.json``).

    ``path`` may name the ROOT file or the JSON itself.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "x.root.json").write_text('{"cross_section_pb": 1.5}')
    >>> load_metadata(d / "x.root")["cross_section_pb"]
    1.5
    """
    path = Path(path)
    if path.suffix != ".json":
        path = _metadata_path(path)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _is_cached(path: Path, key: str) -> bool:
    meta = _metadata_path(path)
    if not (path.is_file() and meta.is_file()):
        return False
    try:
        return load_metadata(meta).get("cache_key") == key
    except (OSError, ValueError):
        return False


def _code_version() -> str:
    """``git describe`` of the analysis_lib checkout, else the installed package version."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        if out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return _version("hepml-hub")


def generate(
    name: str,
    n_events: int,
    *,
    seed: int = DEFAULT_SEED,
    cache_dir: str | os.PathLike[str] | None = None,
    n_workers: int | None = None,
    client: Any = None,
    progress: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    detector: DetectorModel | None = None,
) -> Path:
    """Generate sample ``name`` (or find it in the cache) and return the ROOT file's path.

    Parameters
    ----------
    name
        A registered sample (:func:`list_samples`).
    n_events
        Number of events, a positive integer.
    seed
        Master seed. The same seed and configuration always give the same events,
        whatever the number of workers.
    cache_dir
        Directory of generated files (see :func:`resolve_cache_dir` for the default).
    n_workers
        Local worker processes (default ``os.cpu_count()``). Ignored with ``client``.
    client
        A ``distributed.Client``: the chunks run as Dask tasks.
    progress
        Show a progress bar.
    chunk_size
        Events per parallel chunk. It is part of the configuration: another chunk size
        gives other events.
    detector
        Detector parameters (default :class:`~analysis_lib.datasets.detector.DetectorModel`).

    Returns
    -------
    pathlib.Path
        The ROOT file. Its metadata is in ``<path>.json`` (:func:`load_metadata`).

    Examples
    --------
    >>> import tempfile, uproot
    >>> d = tempfile.mkdtemp()
    >>> path = generate("zprime_m1000", 10, cache_dir=d, n_workers=1, progress=False)
    >>> uproot.open(path)["Events"].num_entries
    10
    >>> generate("zprime_m1000", 10, cache_dir=d, progress=False) == path  # cached
    True
    >>> load_metadata(path)["mass"]
    1000.0
    """
    sample = _sample(name)
    config = config_for(name, n_events, seed=seed, chunk_size=chunk_size, detector=detector)
    if n_workers is not None:
        _check_positive_int("n_workers", n_workers)
    path = sample_path(
        name,
        n_events,
        seed=seed,
        chunk_size=chunk_size,
        detector=config.detector,
        cache_dir=cache_dir,
    )
    key = config.key()
    if _is_cached(path, key):
        return path
    metadata = {
        "sample": sample.name,
        "process": sample.process,
        "mass": sample.mass,
        "description": sample.description,
        "energy_gev": 13000.0,
        "code_version": _code_version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    generate_file(
        config,
        path,
        metadata=metadata,
        n_workers=n_workers,
        client=client,
        progress=progress,
        description=name,
    )
    return path


def sample_info(
    name: str,
    *,
    n_events: int | None = None,
    seed: int = DEFAULT_SEED,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    cache_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Metadata of sample ``name`` and what has been generated of it.

    Returns
    -------
    dict
        The sample's ``name, process, mass, description, pythia_settings``, plus:

        - ``files``: the metadata of each generated file of this sample in the cache
          (cross-section, events, seed, ...), with its ``path`` added;
        - ``generated``: whether any such file exists.

        With ``n_events``, also ``path``, where :func:`generate` puts that configuration,
        and ``generated`` then says whether that file exists.

    Examples
    --------
    >>> import tempfile
    >>> info = sample_info("zprime_m2000", cache_dir=tempfile.mkdtemp())
    >>> info["mass"], info["process"], info["generated"], info["files"]
    (2000.0, 'zprime_ttbar_semileptonic', False, [])
    >>> sample_info("ttbar")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    analysis_lib.datasets.registry.UnknownSampleError: unknown sample 'ttbar'; known samples: ...
    """
    sample = _sample(name)
    directory = resolve_cache_dir(cache_dir)
    files = []
    if directory.is_dir():
        for meta in sorted(directory.glob(f"{name}-n*.root.json")):
            root = meta.with_name(meta.name[: -len(".json")])
            if not root.is_file():
                continue
            try:
                data = load_metadata(meta)
            except (OSError, ValueError):
                continue
            if data.get("sample") == name:
                files.append({**data, "path": str(root)})
    info = {**sample.as_dict(), "files": files, "generated": bool(files)}
    if n_events is not None:
        config = config_for(name, n_events, seed=seed, chunk_size=chunk_size)
        path = sample_path(name, n_events, seed=seed, chunk_size=chunk_size, cache_dir=directory)
        info["path"] = str(path)
        info["generated"] = _is_cached(path, config.key())
    return info


def luminosity_weight(
    metadata: Mapping[str, Any] | str | os.PathLike[str],
    luminosity_fb: float,
    *,
    gen_weight: Any = 1.0,
) -> Any:
    """Event weight that normalises a sample to ``luminosity_fb`` (fb⁻¹).

    ``w = cross_section_pb x 1000 x luminosity_fb x gen_weight / gen_event_sumw``.

    Parameters
    ----------
    metadata
        The file's metadata (:func:`load_metadata`, or :func:`sample_info`'s ``files``
        entries), or the path of the ROOT file or of its JSON.
    luminosity_fb
        Integrated luminosity in fb⁻¹.
    gen_weight
        The events' ``genWeight`` (a number or an array). With the default of 1, the
        result is the weight of an event with ``genWeight`` 1.

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> meta = {"cross_section_pb": 150.0, "gen_event_sumw": 10_000.0}
    >>> luminosity_weight(meta, 138.0)  # 150 pb x 138 000 pb^-1 / 10 000 events
    2070.0
    >>> luminosity_weight(meta, 1.0, gen_weight=np.array([1.0, 2.0])).tolist()
    [15.0, 30.0]
    """
    if not isinstance(metadata, Mapping):
        metadata = load_metadata(metadata)
    missing = [k for k in ("cross_section_pb", "gen_event_sumw") if k not in metadata]
    if missing:
        raise ValueError(
            f"the metadata lacks {', '.join(missing)}; it has {', '.join(map(str, metadata))}"
        )
    lumi = _number(luminosity_fb)
    if not (math.isfinite(lumi) and lumi > 0):
        raise ValueError(f"luminosity_fb must be a positive number (fb^-1), got {luminosity_fb!r}")
    sumw = float(metadata["gen_event_sumw"])
    if sumw == 0:
        raise ValueError("gen_event_sumw is 0: cannot normalise")
    scale = float(metadata["cross_section_pb"]) * 1000.0 * lumi / sumw
    if np.ndim(gen_weight) == 0:
        return scale * float(gen_weight)
    return scale * np.asarray(gen_weight, dtype=np.float64)


def _number(value: Any) -> float:
    """``float(value)`` for a real number, else NaN (bools and strings are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return math.nan
    return float(value)
