"""Worker resources: parsing and checking cores, memory and GPU counts, and the session's choices.

The hub's spawn form hands its choices to the session as environment variables
(``HEPML_DASK_BACKEND``, ``HEPML_CORES``, ``HEPML_MEMORY`` such as ``"4G"`` meaning 4 GiB,
``HEPML_GPUS``, ``HEPML_STACK``); :func:`session_resources` reads them back.

Examples
--------
>>> parse_memory("4G")  # Slurm-style: binary units
4294967296
>>> parse_memory("500MB")  # dask-style: decimal units
500000000
>>> session_resources({"HEPML_CORES": "2", "HEPML_MEMORY": "4G", "HEPML_GPUS": "0"})
SessionResources(backend=None, cores=2, memory=4294967296, gpus=0, stack=None)
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from dask.utils import parse_bytes

from analysis_lib.compute.errors import ComputeConfigError

__all__ = [
    "BACKENDS",
    "BATCH_BACKENDS",
    "SessionResources",
    "check_backend",
    "check_count",
    "check_walltime",
    "format_memory",
    "parse_memory",
    "session_resources",
]

#: Every backend :func:`analysis_lib.compute.make_cluster` knows.
BACKENDS = ("local", "slurm", "htcondor", "pbs", "kubernetes", "gateway")
#: Backends whose workers are batch jobs (dask-jobqueue).
BATCH_BACKENDS = ("slurm", "htcondor", "pbs")

#: Time limits each batch system reads: Slurm's ``minutes``, ``MM:SS``, ``HH:MM:SS``,
#: ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS`` or ``UNLIMITED``; PBS's ``SS``, ``MM:SS``,
#: ``HH:MM:SS`` (Torque also ``DD:HH:MM:SS``).
_WALLTIME = {
    "slurm": re.compile(r"^(\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}|UNLIMITED|INFINITE)$", re.I),
    "pbs": re.compile(r"^\d+(:\d+){0,3}$"),
}
_SLURM_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT])\s*$", re.IGNORECASE)
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def check_backend(value: object) -> str:
    """Return ``value`` if it names a backend, else raise naming it and the choices.

    >>> check_backend("slurm")
    'slurm'
    """
    if not isinstance(value, str) or value not in BACKENDS:
        raise ComputeConfigError("backend", value, f"unknown backend; choose one of {BACKENDS}")
    return value


def check_count(field: str, value: object, *, minimum: int) -> int:
    """``value`` as an int ``>= minimum`` (ints or digit strings), else a clear error.

    >>> check_count("cores", "2", minimum=1)
    2
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        number = int(value)
    if number is None or number < minimum:
        raise ComputeConfigError(field, value, f"must be a whole number >= {minimum}")
    return number


def check_walltime(backend: str, value: object) -> object:
    """Return ``value`` if ``backend``'s batch system reads it as a time limit, else raise.

    Checked here, not when the first job is refused: ``walltime`` goes into every job
    script unchanged. Backends without a time limit of their own pass anything through.

    >>> check_walltime("slurm", "1-12:00:00"), check_walltime("pbs", "04:00:00")
    ('1-12:00:00', '04:00:00')
    >>> check_walltime("pbs", "2 hours")
    Traceback (most recent call last):
    ...
    analysis_lib.compute.errors.ComputeConfigError: walltime='2 hours': not a PBS time limit; ...
    """
    pattern = _WALLTIME.get(backend)
    if pattern is None or value is None:
        return value
    text = str(value).strip() if isinstance(value, int | str) and value is not True else ""
    if not pattern.match(text):
        forms = (
            "HH:MM:SS (or minutes, MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, UNLIMITED)"
            if backend == "slurm"
            else "HH:MM:SS (or MM:SS, seconds)"
        )
        name = "Slurm" if backend == "slurm" else "PBS"
        raise ComputeConfigError("walltime", value, f"not a {name} time limit; expected {forms}")
    return value


#: The smallest worker memory accepted (smaller is a forgotten unit: ``memory=4``).
MIN_MEMORY = 2**20


def parse_memory(value: object, *, field: str = "memory") -> int:
    """Bytes from an int, a dask size (``"4GiB"``, ``"500MB"``) or a Slurm size (``"4G"``).

    A bare unit letter (K, M, G, T) is binary, as in Slurm and in ``HEPML_MEMORY``; units
    spelled out follow :func:`dask.utils.parse_bytes` (``GB`` decimal, ``GiB`` binary).

    >>> parse_memory(2**30), parse_memory("1GiB"), parse_memory("1 g")
    (1073741824, 1073741824, 1073741824)
    """
    if isinstance(value, bool):
        raise ComputeConfigError(field, value, "expected a size such as 4GiB, 500MB or 4G")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = _SLURM_SIZE.match(value)
        if match:
            number = float(match.group(1)) * _BINARY[match.group(2).upper()]
        else:
            try:
                number = float(parse_bytes(value))
            except (ValueError, TypeError):
                number = None
    if number is None:
        raise ComputeConfigError(field, value, "malformed size; expected e.g. 4GiB, 500MB or 4G")
    if not (math.isfinite(number) and number > 0):
        raise ComputeConfigError(field, value, "must be a positive size")
    if number < MIN_MEMORY:
        bare = isinstance(value, int | float) or str(value).strip().replace(".", "").isdigit()
        hint = f"; a bare number is bytes: write {value}G or {value}GiB" if bare else ""
        raise ComputeConfigError(
            field,
            value,
            f"{int(number)} bytes is too small for a Dask worker (at least 1 MiB){hint}",
        )
    return int(number)


def format_memory(nbytes: int) -> str:
    """A dask size string that :func:`parse_memory` reads back exactly.

    >>> format_memory(4 * 2**30), format_memory(1500)
    ('4GiB', '1500B')
    """
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes % factor == 0:
            return f"{nbytes // factor}{unit}"
    return f"{nbytes}B"


@dataclass(frozen=True)
class SessionResources:
    """What the hub's spawn form chose for this session (``None``: not set)."""

    backend: str | None
    cores: int | None
    memory: int | None
    gpus: int | None
    stack: str | None


def session_resources(environ: Mapping[str, str] | None = None) -> SessionResources:
    """The spawn form's choices: ``HEPML_DASK_BACKEND``, ``_CORES``, ``_MEMORY``, ``_GPUS``.

    Empty variables count as unset; malformed ones raise :class:`ComputeConfigError`
    naming the variable.

    >>> session_resources({}).cores is None
    True
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    backend = get("HEPML_DASK_BACKEND")
    cores, memory, gpus = get("HEPML_CORES"), get("HEPML_MEMORY"), get("HEPML_GPUS")
    return SessionResources(
        backend=None if backend is None else _named("HEPML_DASK_BACKEND", check_backend, backend),
        cores=None if cores is None else check_count("HEPML_CORES", cores, minimum=1),
        memory=None if memory is None else parse_memory(memory, field="HEPML_MEMORY"),
        gpus=None if gpus is None else check_count("HEPML_GPUS", gpus, minimum=0),
        stack=get("HEPML_STACK"),
    )


def _named(field: str, check, value: str) -> str:
    try:
        return check(value)
    except ComputeConfigError as exc:
        raise ComputeConfigError(field, value, str(exc).split(": ", 1)[1]) from None
