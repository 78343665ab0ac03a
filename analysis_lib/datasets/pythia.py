"""Pythia 8 + FastJet generator of NanoAOD-like ROOT files, in deterministic chunks.

A sample is described by a :class:`GeneratorConfig`: the process's Pythia settings, the
number of events, a seed, a chunk size and a
:class:`~analysis_lib.datasets.detector.DetectorModel`. :func:`generate_file` splits the
events into chunks of ``chunk_size`` and runs :func:`simulate_chunk` on each one, either
in a process pool or on a Dask cluster. It then writes one ROOT file atomically: the data
goes to ``<file>.tmp-<pid>-<random>`` in the same directory, which ``os.replace`` moves
into place at the end. The JSON metadata beside the file is written the same way, and
moved last.

Each chunk is independent and reproducible:

- Pythia runs with ``Random:seed = pythia_seed(seed, chunk)``, a value in
  [1, 900 000 000] derived from ``(seed, chunk)`` through :class:`numpy.random.SeedSequence`;
- the detector response draws from ``detector_rng(seed, chunk)``.

A file is therefore identical for a seed whatever the number of workers. It does depend on
``chunk_size``, which is part of the configuration and of the cache key.

Pythia settings
---------------
:data:`COMMON_SETTINGS` apply to every sample: pp at 13 TeV, the default tune (Monash 2013)
and PDF, MPI, ISR, FSR and hadronisation on. Particles with cτ > 10 mm are stable, as in
CMS generation. Counters and banners are off.

With ``semileptonic=True`` (the default), the W decays of even chunks are
``24:onPosIfAny = 11 13`` (W⁺ → e+ nu, mu+ nu) and ``24:onNegIfAny = 1 2 3 4 5`` (W⁻ → qq̄'),
and odd chunks swap the charges (:func:`w_decay_settings`). Pythia's ``sigmaGen`` already
includes the branching fractions of the open channels. For tt̄ that is
sigma(tt̄) x B(W→e nu, mu nu) x B(W→qq̄') ≈ sigma(tt̄) x 0.2163 x 0.6755 for one charge assignment.
The cross-section of a sample, :attr:`GenerationSummary.cross_section_pb`, covers both
assignments: it is **twice** the event-weighted mean of the chunks' ``sigmaGen``. It is a
leading-order sigma(pp → tt̄ → l nu qq̄'b b̄), l = e, mu, with no τ and no K-factor: about 150 pb
for tt̄ at 13 TeV, where Pythia's inclusive LO sigma(tt̄) is about 510 pb. Without
``semileptonic``, all decays are open and ``cross_section_pb`` is ``sigmaGen`` itself.

Branches of the ``Events`` tree
-------------------------------
============================== ======== ==================================================
branch                         type     meaning
============================== ======== ==================================================
``run``                        uint32   always 1
``luminosityBlock``            uint32   chunk index + 1
``event``                      uint64   1-based event number in the file
``genWeight``                  float32  Pythia's event weight (1 for these processes)
``Generator_weight``           float32  the same
``Generator_id1``, ``_id2``    int32    PDG ids of the incoming partons
``Generator_x1``, ``_x2``      float32  their momentum fractions; for 2 → 2 and 2 → 1
                                        processes ``13000 * sqrt(x1 * x2)`` is the true
                                        mass of the hard system (m(tt̄), m(Z'))
``Generator_scalePDF``         float32  factorisation scale Q (GeV)
``nJet``, ``Jet_*``            int32 /  ``pt, eta, phi, mass, btagDeepFlavB`` float32;
                               float32  ``hadronFlavour, jetId`` int32
``nMuon``, ``Muon_*``                   ``pt, eta, phi, mass, pfRelIso04_all`` float32;
                                        ``charge`` int32; ``tightId`` bool
``nElectron``, ``Electron_*``           ``pt, eta, phi, mass, pfRelIso03_all`` float32;
                                        ``charge, cutBased`` int32
``MET_pt``, ``MET_phi``        float32  reconstructed missing transverse momentum
``GenMET_pt``, ``GenMET_phi``  float32  true missing momentum (sum of neutrinos)
============================== ======== ==================================================

The ``Runs`` tree has one entry: ``run`` (uint32), ``genEventCount`` (int64),
``genEventSumw`` and ``genEventSumw2`` (float64). There are no index branches such as
``Jet_muonIdx1``; coffea's ``NanoAODSchema`` reads the file without them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from analysis_lib.datasets.detector import DETECTOR_VERSION, DetectorModel, simulate

__all__ = [
    "COMMON_SETTINGS",
    "GENERATOR_VERSION",
    "PYTHIA_SEED_MAX",
    "TTBAR_SETTINGS",
    "ChunkResult",
    "GenerationSummary",
    "GeneratorConfig",
    "detector_rng",
    "generate_file",
    "pythia_seed",
    "run_pythia",
    "simulate_chunk",
    "w_decay_settings",
    "zprime_settings",
]

#: Version of the generation code. Increase it when a change alters the output for a given
#: configuration. The cache key includes it.
GENERATOR_VERSION = "1"

#: Largest value Pythia accepts for ``Random:seed``.
PYTHIA_SEED_MAX = 900_000_000

#: Events buffered before each write to the ROOT file (one basket per branch per write).
WRITE_BATCH_EVENTS = 20_000

COMMON_SETTINGS: tuple[str, ...] = (
    "Beams:idA = 2212",
    "Beams:idB = 2212",
    "Beams:eCM = 13000.",
    "Next:numberCount = 0",
    "Print:quiet = on",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
)

#: Pythia settings of SM tt̄ production at leading order.
TTBAR_SETTINGS: tuple[str, ...] = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")

#: One chunk at a time per process. pythia8mc's ``nextBatch`` holds the GIL (threads would
#: not run in parallel anyway), and two threads calling it for the first time at once
#: deadlock inside an import. Threaded Dask workers therefore run their chunks one after
#: the other: use worker processes (``threads_per_worker=1``) for parallelism.
_CHUNK_LOCK = threading.Lock()


def _new_chunk_lock() -> None:
    """A forked pool worker must not inherit a lock that a parent thread held at fork time."""
    global _CHUNK_LOCK
    _CHUNK_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_chunk_lock)

_INVISIBLE = (12, 14, 16, 1000022, 1000012, 1000014, 1000016)
_SEED_STREAM_PYTHIA = 0
_SEED_STREAM_DETECTOR = 1


def zprime_settings(mass_gev: float) -> tuple[str, ...]:
    """Pythia settings of a Z' of mass ``mass_gev`` decaying to tt̄ only.

    Only the Z' part of gamma*/Z/Z' interference is kept (``Zprime:gmZmode = 3``). The
    couplings are Pythia's defaults (SM-like), and so is the width: about 3 % of the mass
    once only tt̄ is open.

    Examples
    --------
    >>> zprime_settings(1000)[2]
    '32:m0 = 1000.0'
    """
    mass = float(mass_gev)
    if not (math.isfinite(mass) and mass > 2 * 173.0):
        raise ValueError(
            f"a Z' -> tt mass must be a finite number above 2 m_t (346 GeV), got {mass_gev!r}"
        )
    return (
        "NewGaugeBoson:ffbar2gmZZprime = on",
        "Zprime:gmZmode = 3",
        f"32:m0 = {mass}",
        "32:onMode = off",
        "32:onIfMatch = 6 -6",
    )


def w_decay_settings(chunk_index: int) -> tuple[str, ...]:
    """Semileptonic W decays, alternating the lepton's charge between chunks.

    Even chunks decay W⁺ → l+ nu and W⁻ → qq̄'; odd chunks the reverse (l = e, mu).

    Examples
    --------
    >>> w_decay_settings(0)[1], w_decay_settings(1)[1]
    ('24:onPosIfAny = 11 13', '24:onNegIfAny = 11 13')
    """
    lepton, hadron = ("Pos", "Neg") if chunk_index % 2 == 0 else ("Neg", "Pos")
    return ("24:onMode = off", f"24:on{lepton}IfAny = 11 13", f"24:on{hadron}IfAny = 1 2 3 4 5")


def _seed_sequence(seed: int, chunk_index: int, stream: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), int(chunk_index), stream])


def pythia_seed(seed: int, chunk_index: int) -> int:
    """Pythia's ``Random:seed`` for a chunk: in [1, 900 000 000], fixed by (seed, chunk).

    Examples
    --------
    >>> pythia_seed(1, 0) == pythia_seed(1, 0) != pythia_seed(1, 1)
    True
    >>> 1 <= pythia_seed(2**40, 7) <= PYTHIA_SEED_MAX
    True
    """
    state = _seed_sequence(seed, chunk_index, _SEED_STREAM_PYTHIA).generate_state(2, np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) % PYTHIA_SEED_MAX) + 1


def detector_rng(seed: int, chunk_index: int) -> np.random.Generator:
    """The numpy generator of the detector response of a chunk, fixed by (seed, chunk).

    Examples
    --------
    >>> float(detector_rng(1, 0).random()) == float(detector_rng(1, 0).random())
    True
    """
    return np.random.default_rng(_seed_sequence(seed, chunk_index, _SEED_STREAM_DETECTOR))


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that fixes the content of a generated file.

    Parameters
    ----------
    process_settings
        Pythia settings of the process (e.g. :data:`TTBAR_SETTINGS`), added after
        :data:`COMMON_SETTINGS`.
    n_events
        Number of events in the file.
    seed
        Master seed, a non-negative integer.
    chunk_size
        Events per chunk (one Pythia initialisation per chunk, about 0.4 s).
    semileptonic
        Force semileptonic W decays (:func:`w_decay_settings`).
    detector
        Detector response parameters.

    Examples
    --------
    >>> c = GeneratorConfig(TTBAR_SETTINGS, n_events=2500, seed=3, chunk_size=1000)
    >>> c.n_chunks, c.chunk_events(2)
    (3, 500)
    >>> c.chunk_settings(1)[-2:]
    ['Random:setSeed = on', 'Random:seed = 609389108']
    >>> len(c.key())
    64
    """

    process_settings: tuple[str, ...]
    n_events: int
    seed: int = 1
    chunk_size: int = 1000
    semileptonic: bool = True
    detector: DetectorModel = field(default_factory=DetectorModel)

    def __post_init__(self) -> None:
        _check_positive_int("n_events", self.n_events)
        _check_positive_int("chunk_size", self.chunk_size)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise TypeError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "process_settings", tuple(self.process_settings))
        object.__setattr__(self, "n_events", int(self.n_events))
        object.__setattr__(self, "chunk_size", int(self.chunk_size))
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def n_chunks(self) -> int:
        """Number of chunks."""
        return math.ceil(self.n_events / self.chunk_size)

    def chunk_events(self, chunk_index: int) -> int:
        """Number of events in chunk ``chunk_index``."""
        return min(self.chunk_size, self.n_events - chunk_index * self.chunk_size)

    def base_settings(self) -> list[str]:
        """The settings shared by all chunks (common, then the process's)."""
        return [*COMMON_SETTINGS, *self.process_settings]

    def chunk_settings(self, chunk_index: int) -> list[str]:
        """All Pythia settings of one chunk, seed included."""
        decays = w_decay_settings(chunk_index) if self.semileptonic else ()
        return [
            *self.base_settings(),
            *decays,
            "Random:setSeed = on",
            f"Random:seed = {pythia_seed(self.seed, chunk_index)}",
        ]

    def describe(self) -> dict[str, Any]:
        """The configuration as JSON-friendly data, with the versions that affect output."""
        return {
            "generator_version": GENERATOR_VERSION,
            "detector_version": DETECTOR_VERSION,
            "pythia8mc": _version("pythia8mc"),
            "fastjet": _version("fastjet"),
            "settings": self.base_settings(),
            "semileptonic": self.semileptonic,
            "n_events": self.n_events,
            "seed": self.seed,
            "chunk_size": self.chunk_size,
            "detector": self.detector.as_dict(),
        }

    def key(self) -> str:
        """SHA-256 (hex) of :meth:`describe`: equal keys mean equal files."""
        blob = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _hadron_flavour(pdg_id: np.ndarray) -> np.ndarray:
    """5 for hadrons with a b quark, 4 for hadrons with a c quark (and no b), else 0."""
    a = np.abs(pdg_id) % 10_000
    q1, q2, q3 = (a // 1000) % 10, (a // 100) % 10, (a // 10) % 10
    hadron = (a >= 100) & (q3 > 0) & (np.abs(pdg_id) < 10_000_000)
    has = lambda q: (q1 == q) | (q2 == q) | (q3 == q)  # noqa: E731
    return np.where(hadron & has(5), 5, np.where(hadron & has(4), 4, 0)).astype(np.int32)


def run_pythia(settings: Iterable[str], n_events: int) -> tuple[ak.Array, ak.Array, dict[str, Any]]:
    """Run Pythia for ``n_events`` events and return particle-level arrays.

    Parameters
    ----------
    settings
        Pythia setting strings (``readString``), all of which must be accepted.
    n_events
        Number of events to generate.

    Returns
    -------
    particles
        Per event, the visible final-state particles (records ``px, py, pz, E, pid``).
    hadrons
        Per event, the b and c hadrons at any stage of the decay chain (records
        ``px, py, pz, E, flavour``), for ghost association.
    info
        Event-level numpy arrays (``weight, id1, id2, x1, x2, scale_pdf, genmet_px,
        genmet_py``) and the run statistics (``sigma_pb, sigma_err_pb, n_accepted,
        n_tried``). Pythia reports sigma in mb; 1 mb = 1e9 pb.

    Examples
    --------
    >>> particles, hadrons, info = run_pythia(
    ...     [*COMMON_SETTINGS, *TTBAR_SETTINGS, "Random:setSeed = on", "Random:seed = 5"], 3
    ... )
    >>> len(particles), info["n_accepted"], info["sigma_pb"] > 0
    (3, 3, True)
    """
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            raise ValueError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise with settings {list(settings)!r}")
    batches = []
    remaining, empty_batches = n_events, 0
    while remaining > 0:
        batch = pythia.nextBatch(remaining, "skip")
        if len(batch) == 0:
            empty_batches += 1
            if empty_batches > 10:
                raise RuntimeError("Pythia keeps failing to generate events")
            continue
        batches.append(batch)
        remaining -= len(batch)
    events = batches[0] if len(batches) == 1 else ak.concatenate(batches)
    prt = events.prt
    final = prt[prt.status > 0]
    abs_id = abs(final.id)
    invisible = np.isin(ak.to_numpy(ak.flatten(abs_id)), _INVISIBLE)
    invisible = ak.unflatten(invisible, ak.num(abs_id))
    visible = final[~invisible]
    nu = final[invisible]
    particles = ak.zip(
        {
            "px": visible.p.px,
            "py": visible.p.py,
            "pz": visible.p.pz,
            "E": visible.p.e,
            "pid": visible.id,
        },
        with_name=None,
    )
    flat_flavour = _hadron_flavour(ak.to_numpy(ak.flatten(prt.id)))
    flavour = ak.unflatten(flat_flavour, ak.num(prt.id))
    heavy = prt[flavour > 0]
    hadrons = ak.zip(
        {
            "px": heavy.p.px,
            "py": heavy.p.py,
            "pz": heavy.p.pz,
            "E": heavy.p.e,
            "flavour": flavour[flavour > 0],
        },
        with_name=None,
    )
    ev = events.info
    weights = ak.to_numpy(ak.fill_none(ak.firsts(ev.weights), 1.0))
    stats = pythia.infoPython()
    info = {
        "weight": weights.astype(np.float64),
        "id1": ak.to_numpy(ev.id1).astype(np.int32),
        "id2": ak.to_numpy(ev.id2).astype(np.int32),
        "x1": ak.to_numpy(ev.x1),
        "x2": ak.to_numpy(ev.x2),
        "scale_pdf": np.sqrt(ak.to_numpy(ev.Q2Fac)),
        "genmet_px": -ak.to_numpy(ak.sum(nu.p.px, axis=1)),
        "genmet_py": -ak.to_numpy(ak.sum(nu.p.py, axis=1)),
        "sigma_pb": float(stats.sigmaGen()) * 1e9,
        "sigma_err_pb": float(stats.sigmaErr()) * 1e9,
        "n_accepted": int(stats.nAccepted()),
        "n_tried": int(stats.nTried()),
    }
    return particles, hadrons, info


@dataclass
class ChunkResult:
    """The output of one chunk: ``Events`` columns and Pythia's run statistics."""

    index: int
    columns: dict[str, Any]
    n_events: int
    pythia_seed: int
    sigma_pb: float
    sigma_err_pb: float
    n_accepted: int
    n_tried: int
    sum_weights: float
    sum_weights2: float
    seconds: float

    def stats(self) -> dict[str, Any]:
        """Everything except the columns (JSON-friendly)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "columns"}


def simulate_chunk(config: GeneratorConfig, chunk_index: int) -> ChunkResult:
    """Generate, reconstruct and format one chunk (the unit of parallel work).

    Chunks run one at a time per process (a lock; see :data:`_CHUNK_LOCK`).

    Examples
    --------
    >>> chunk = simulate_chunk(GeneratorConfig(TTBAR_SETTINGS, n_events=4), 0)
    >>> chunk.n_events, chunk.columns["event"].tolist()
    (4, [1, 2, 3, 4])
    >>> str(chunk.columns["Jet"].pt.type.content)
    'var * float32'
    """
    if not 0 <= chunk_index < config.n_chunks:
        raise IndexError(f"chunk {chunk_index} outside 0..{config.n_chunks - 1}")
    with _CHUNK_LOCK:
        return _simulate_chunk(config, chunk_index)


def _simulate_chunk(config: GeneratorConfig, chunk_index: int) -> ChunkResult:
    start = time.perf_counter()
    n = config.chunk_events(chunk_index)
    particles, hadrons, info = run_pythia(config.chunk_settings(chunk_index), n)
    objects = simulate(
        particles,
        hadrons,
        rng=detector_rng(config.seed, chunk_index),
        model=config.detector,
    )
    first = chunk_index * config.chunk_size
    weight = info["weight"]
    columns: dict[str, Any] = {
        "run": np.ones(n, dtype=np.uint32),
        "luminosityBlock": np.full(n, chunk_index + 1, dtype=np.uint32),
        "event": np.arange(first + 1, first + n + 1, dtype=np.uint64),
        "genWeight": weight.astype(np.float32),
        "Generator_weight": weight.astype(np.float32),
        "Generator_id1": info["id1"],
        "Generator_id2": info["id2"],
        "Generator_x1": info["x1"].astype(np.float32),
        "Generator_x2": info["x2"].astype(np.float32),
        "Generator_scalePDF": info["scale_pdf"].astype(np.float32),
        "Jet": objects["Jet"],
        "Muon": objects["Muon"],
        "Electron": objects["Electron"],
        "MET_pt": objects["MET_pt"],
        "MET_phi": objects["MET_phi"],
        "GenMET_pt": np.hypot(info["genmet_px"], info["genmet_py"]).astype(np.float32),
        "GenMET_phi": np.arctan2(info["genmet_py"], info["genmet_px"]).astype(np.float32),
    }
    return ChunkResult(
        index=chunk_index,
        columns=columns,
        n_events=n,
        pythia_seed=pythia_seed(config.seed, chunk_index),
        sigma_pb=info["sigma_pb"],
        sigma_err_pb=info["sigma_err_pb"],
        n_accepted=info["n_accepted"],
        n_tried=info["n_tried"],
        sum_weights=float(weight.sum()),
        sum_weights2=float((weight**2).sum()),
        seconds=time.perf_counter() - start,
    )


@dataclass
class GenerationSummary:
    """What :func:`generate_file` measured while writing a file.

    ``cross_section_pb`` is the sample's cross-section (see the module docstring for its
    meaning), and ``cross_section_err_pb`` its statistical error from Pythia.
    """

    n_events: int
    cross_section_pb: float
    cross_section_err_pb: float
    gen_event_count: int
    gen_event_sumw: float
    gen_event_sumw2: float
    seconds: float
    n_workers: int
    chunks: list[dict[str, Any]]


def _combine(
    config: GeneratorConfig, results: list[ChunkResult], seconds: float, workers: int
) -> GenerationSummary:
    n = np.array([r.n_accepted for r in results], dtype=np.float64)
    sigma = np.array([r.sigma_pb for r in results])
    err = np.array([r.sigma_err_pb for r in results])
    mean = float((n * sigma).sum() / n.sum())
    mean_err = float(np.sqrt(((n * err) ** 2).sum()) / n.sum())
    factor = 2.0 if config.semileptonic else 1.0
    return GenerationSummary(
        n_events=config.n_events,
        cross_section_pb=factor * mean,
        cross_section_err_pb=factor * mean_err,
        gen_event_count=int(sum(r.n_events for r in results)),
        gen_event_sumw=float(sum(r.sum_weights for r in results)),
        gen_event_sumw2=float(sum(r.sum_weights2 for r in results)),
        seconds=seconds,
        n_workers=workers,
        chunks=[r.stats() for r in sorted(results, key=lambda r: r.index)],
    )


def _tmp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


class _OrderedWriter:
    """Appends chunks to the ``Events`` tree in chunk order, whatever order they finish in."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.pending: dict[int, ChunkResult] = {}
        self.buffer: list[dict[str, Any]] = []
        self.buffered = 0
        self.next_index = 0
        self.tree: Any = None

    def add(self, result: ChunkResult) -> None:
        self.pending[result.index] = result
        while self.next_index in self.pending:
            chunk = self.pending.pop(self.next_index)
            self.buffer.append(chunk.columns)
            self.buffered += chunk.n_events
            self.next_index += 1
            if self.buffered >= WRITE_BATCH_EVENTS:
                self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        if len(self.buffer) == 1:
            data = self.buffer[0]
        else:
            data = {
                k: (
                    ak.concatenate([b[k] for b in self.buffer])
                    if isinstance(self.buffer[0][k], ak.Array)
                    else np.concatenate([b[k] for b in self.buffer])
                )
                for k in self.buffer[0]
            }
        if self.tree is None:
            types = {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()}
            self.tree = self.file.mktree(
                "Events",
                types,
                counter_name=lambda c: "n" + c,
                field_name=lambda outer, inner: outer + "_" + inner,
            )
        self.tree.extend(data)
        self.buffer, self.buffered = [], 0


def _run_chunks(
    config: GeneratorConfig,
    on_result: Callable[[ChunkResult], None],
    *,
    n_workers: int,
    client: Any,
) -> None:
    """Run every chunk, calling ``on_result`` in the calling thread as each one finishes."""
    indices = range(config.n_chunks)
    if client is not None:
        from distributed import as_completed

        key = config.key()[:16]
        futures = [
            client.submit(simulate_chunk, config, i, key=f"hepml-chunk-{key}-{i}", pure=False)
            for i in indices
        ]
        try:
            for future in as_completed(futures):
                on_result(future.result())
                future.release()
        except BaseException:
            client.cancel(futures)
            raise
        return
    if n_workers == 1 or config.n_chunks == 1:
        for i in indices:
            on_result(simulate_chunk(config, i))
        return
    import multiprocessing

    # "fork" where available: "spawn" and "forkserver" re-run an unguarded __main__ script
    # in each worker. The forked workers only run Pythia, numpy, awkward and FastJet, and
    # touch none of the parent's threads or locks (Jupyter's, Dask's).
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
        futures = {pool.submit(simulate_chunk, config, i) for i in indices}
        try:
            while futures:
                done, futures = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    on_result(future.result())
        except BaseException:
            # an interruption (or a failed chunk) ends the run: stop the chunks still
            # running instead of waiting for them, since nothing of them will be written
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            raise


def generate_file(
    config: GeneratorConfig,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    n_workers: int | None = None,
    client: Any = None,
    progress: bool = True,
    description: str | None = None,
) -> GenerationSummary:
    """Generate ``config`` into the ROOT file ``path`` and its metadata ``<path>.json``.

    Both files are written under temporary names in the same directory and moved into
    place with ``os.replace``, the ROOT file first. If generation fails or is interrupted,
    no final file appears, and the temporary files are removed (except after SIGKILL).

    Parameters
    ----------
    config
        What to generate.
    path
        The final ROOT file.
    metadata
        Extra entries for the JSON file. The function adds the configuration, the
        cross-section, the Runs sums and per-chunk statistics.
    n_workers
        Processes in the local pool (default ``os.cpu_count()``). With 1, or with a single
        chunk, the chunks run in this process.
    client
        A ``distributed.Client``. If given, the chunks run as Dask tasks instead, and the
        workers must be able to import :mod:`analysis_lib`.
    progress
        Show a tqdm progress bar (in events).
    description
        Label of the progress bar.

    Returns
    -------
    GenerationSummary

    Examples
    --------
    >>> import tempfile, uproot
    >>> out = Path(tempfile.mkdtemp()) / "tt.root"
    >>> summary = generate_file(
    ...     GeneratorConfig(TTBAR_SETTINGS, n_events=5), out, n_workers=1, progress=False
    ... )
    >>> summary.gen_event_count, uproot.open(out)["Events"].num_entries
    (5, 5)
    >>> sorted(p.name for p in out.parent.iterdir())
    ['tt.root', 'tt.root.json']
    """
    from tqdm.auto import tqdm

    if n_workers is not None:
        _check_positive_int("n_workers", n_workers)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workers = int(n_workers) if n_workers is not None else (os.cpu_count() or 1)
    if client is None:
        workers = min(workers, config.n_chunks)
    tmp_root, tmp_json = _tmp_path(path), _tmp_path(path.with_name(path.name + ".json"))
    start = time.perf_counter()
    results: list[ChunkResult] = []
    try:
        import uproot

        with (
            uproot.recreate(tmp_root) as file,
            tqdm(
                total=config.n_events,
                unit="ev",
                desc=description or path.stem,
                disable=not progress,
            ) as bar,
        ):
            writer = _OrderedWriter(file)

            def on_result(result: ChunkResult) -> None:
                writer.add(result)
                results.append(result)
                bar.update(result.n_events)

            _run_chunks(config, on_result, n_workers=workers, client=client)
            writer.flush()
            summary = _combine(config, results, time.perf_counter() - start, workers)
            file["Runs"] = {
                "run": np.array([1], dtype=np.uint32),
                "genEventCount": np.array([summary.gen_event_count], dtype=np.int64),
                "genEventSumw": np.array([summary.gen_event_sumw], dtype=np.float64),
                "genEventSumw2": np.array([summary.gen_event_sumw2], dtype=np.float64),
            }
        document = {
            **dict(metadata or {}),
            "file": path.name,
            "cross_section_pb": summary.cross_section_pb,
            "cross_section_err_pb": summary.cross_section_err_pb,
            "n_events": summary.n_events,
            "gen_event_count": summary.gen_event_count,
            "gen_event_sumw": summary.gen_event_sumw,
            "gen_event_sumw2": summary.gen_event_sumw2,
            "seed": config.seed,
            "chunk_size": config.chunk_size,
            "n_chunks": config.n_chunks,
            "semileptonic": config.semileptonic,
            "pythia_settings": config.base_settings(),
            "pythia_chunk_settings": {
                "even": list(w_decay_settings(0)) if config.semileptonic else [],
                "odd": list(w_decay_settings(1)) if config.semileptonic else [],
                "seed": ["Random:setSeed = on", "Random:seed = pythia_seed(seed, chunk)"],
            },
            "pythia_version": _version("pythia8mc"),
            "fastjet_version": _version("fastjet"),
            "generator_version": GENERATOR_VERSION,
            "detector": {"version": DETECTOR_VERSION, "parameters": config.detector.as_dict()},
            "cache_key": config.key(),
            "generation_seconds": summary.seconds,
            "n_workers": workers if client is None else None,
            "chunks": summary.chunks,
        }
        with open(tmp_json, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp_root, path)
        os.replace(tmp_json, path.with_name(path.name + ".json"))
    except BaseException:
        for tmp in (tmp_root, tmp_json):
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    return summary
