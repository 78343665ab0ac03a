"""Small synthetic NanoAOD-like files for the columnar tests and benchmarks.

The files follow the input contract of :mod:`analysis_lib.columnar` (the layout our Pythia
generator writes): a tree ``Events`` with ``run, luminosityBlock, event, genWeight``,
``nJet`` + ``Jet_*``, ``nMuon`` + ``Muon_*``, ``nElectron`` + ``Electron_*``,
``MET_pt, MET_phi``, a ``Runs`` tree with ``genEventCount`` and ``genEventSumw``, and beside
each file a metadata JSON ``<file>.json``.

The content is semileptonic-tt̄-like but not physics: one tight isolated muon or electron in
most events, four to eight jets of which two carry b-quark flavour and a high b-tag score,
and some events that fail each cut (no lepton, a second lepton, too few jets, no b-tag,
low MET), so the selection keeps a good fraction and every cut matters. Everything is drawn
with numpy from a seed, so a file is reproducible.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

#: Settings of the two synthetic processes: a tt̄-like background and a harder signal.
PROCESSES = {
    "ttbar": {"jet_pt_scale": 45.0, "lepton_pt_scale": 35.0, "cross_section_pb": 831.76},
    "zprime": {"jet_pt_scale": 90.0, "lepton_pt_scale": 70.0, "cross_section_pb": 1.5},
}


def _jagged(counts: np.ndarray, flat: np.ndarray) -> ak.Array:
    return ak.unflatten(flat, counts)


def make_events(n_events: int, *, process: str = "ttbar", seed: int = 1) -> dict[str, ak.Array]:
    """Draw ``n_events`` NanoAOD-like events as ``{branch group: array}`` for uproot.

    Parameters
    ----------
    n_events : int
        Number of events.
    process : {"ttbar", "zprime"}
        Which kinematics to draw (the signal has harder jets and leptons).
    seed : int
        Seed of the numpy generator.

    Returns
    -------
    dict
        Keys ``run, luminosityBlock, event, genWeight, MET_pt, MET_phi`` (flat arrays) and
        ``Jet, Muon, Electron`` (records of jagged arrays).

    Examples
    --------
    >>> events = make_events(10, seed=3)
    >>> len(events["Jet"]), sorted(events["Muon"].fields)[:3]
    (10, ['charge', 'eta', 'mass'])
    """
    settings = PROCESSES[process]
    rng = np.random.default_rng(seed)
    n = int(n_events)

    # Jets: 4-8 in most events, 2-3 in 10 % (fail the jet cut), pT sorted descending.
    n_jet = rng.integers(4, 9, n)
    few = rng.random(n) < 0.10
    n_jet[few] = rng.integers(2, 4, few.sum())
    n_flat = int(n_jet.sum())
    event_of = np.repeat(np.arange(n), n_jet)
    starts = np.concatenate([[0], np.cumsum(n_jet)[:-1]])
    index_in_event = np.arange(n_flat) - np.repeat(starts, n_jet)
    pt = (20.0 + rng.exponential(settings["jet_pt_scale"], n_flat)).astype(np.float32)
    # sort descending within each event: key = event, then -pt
    order = np.lexsort((-pt, event_of))
    pt = pt[order]
    eta = rng.uniform(-2.7, 2.7, n_flat).astype(np.float32)
    phi = rng.uniform(-np.pi, np.pi, n_flat).astype(np.float32)
    mass = (pt * rng.uniform(0.05, 0.2, n_flat)).astype(np.float32)
    # two jets of b flavour per event (among the first four when possible), one c sometimes
    flavour = np.zeros(n_flat, dtype=np.int32)
    b_slot = rng.integers(0, 4, (n, 2))
    b_slot[:, 1] = (b_slot[:, 0] + 1 + rng.integers(0, 3, n)) % 4
    for k in range(2):
        ok = b_slot[:, k] < n_jet
        flavour[(starts + b_slot[:, k])[ok]] = 5
    c_jet = (rng.random(n_flat) < 0.1) & (flavour == 0)
    flavour[c_jet] = 4
    btag = np.where(
        flavour == 5,
        rng.beta(5, 1.2, n_flat),
        np.where(flavour == 4, rng.beta(1.5, 3, n_flat), rng.beta(0.6, 8, n_flat)),
    ).astype(np.float32)
    no_b = rng.random(n) < 0.08  # events with every b-tag score low
    btag[np.repeat(no_b, n_jet)] *= 0.1
    jet_id = np.where(rng.random(n_flat) < 0.03, 0, 6).astype(np.int32)
    del index_in_event

    # Leptons: one muon (48 %) or electron (42 %), none (10 %); 8 % get a second one.
    kind = rng.random(n)
    has_mu = kind < 0.48
    has_el = (kind >= 0.48) & (kind < 0.90)
    second = rng.random(n) < 0.08
    n_mu = has_mu.astype(np.int64) + (second & has_el)
    n_el = has_el.astype(np.int64) + (second & has_mu)

    def leptons(count: np.ndarray, max_eta: float) -> dict[str, np.ndarray]:
        m = int(count.sum())
        lpt = (26.0 + rng.exponential(settings["lepton_pt_scale"], m)).astype(np.float32)
        lpt = lpt[np.lexsort((-lpt, np.repeat(np.arange(n), count)))]  # pT-ordered, as NanoAOD
        return {
            "pt": lpt,
            "eta": rng.uniform(-max_eta, max_eta, m).astype(np.float32),
            "phi": rng.uniform(-np.pi, np.pi, m).astype(np.float32),
            "charge": rng.choice(np.array([-1, 1], dtype=np.int32), m),
        }

    mu = leptons(n_mu, 2.5)
    mu["mass"] = np.full(len(mu["pt"]), 0.10566, dtype=np.float32)
    mu["tightId"] = rng.random(len(mu["pt"])) < 0.95
    mu["pfRelIso04_all"] = rng.exponential(0.05, len(mu["pt"])).astype(np.float32)
    el = leptons(n_el, 2.6)
    el["mass"] = np.full(len(el["pt"]), 0.000511, dtype=np.float32)
    el["cutBased"] = np.where(rng.random(len(el["pt"])) < 0.93, 4, 1).astype(np.int32)
    el["pfRelIso03_all"] = rng.exponential(0.04, len(el["pt"])).astype(np.float32)

    met_pt = (5.0 + rng.exponential(50.0, n)).astype(np.float32)
    met_phi = rng.uniform(-np.pi, np.pi, n).astype(np.float32)
    gen_weight = np.where(rng.random(n) < 0.1, -1.0, 1.0).astype(np.float32) * 0.75

    return {
        "run": np.ones(n, dtype=np.uint32),
        "luminosityBlock": (np.arange(n) // 1000 + 1).astype(np.uint32),
        "event": (np.arange(n) + 1 + 10_000_000 * seed).astype(np.uint64),
        "genWeight": gen_weight,
        "Jet": ak.zip(
            {
                "pt": _jagged(n_jet, pt),
                "eta": _jagged(n_jet, eta),
                "phi": _jagged(n_jet, phi),
                "mass": _jagged(n_jet, mass),
                "btagDeepFlavB": _jagged(n_jet, btag),
                "hadronFlavour": _jagged(n_jet, flavour),
                "jetId": _jagged(n_jet, jet_id),
            }
        ),
        "Muon": ak.zip({k: _jagged(n_mu, v) for k, v in mu.items()}),
        "Electron": ak.zip({k: _jagged(n_el, v) for k, v in el.items()}),
        "MET_pt": met_pt,
        "MET_phi": met_phi,
    }


def write_sample(
    path: str | os.PathLike,
    n_events: int,
    *,
    process: str = "ttbar",
    seed: int = 1,
    sample: str | None = None,
    drop: tuple[str, ...] = (),
    rename: dict[str, str] | None = None,
    metadata: bool = True,
    basket_size: int = 50_000,
) -> Path:
    """Write a synthetic NanoAOD-like ROOT file (and its metadata JSON) and return its path.

    Parameters
    ----------
    path : path-like
        The ROOT file to write.
    n_events : int
        Number of events.
    process : {"ttbar", "zprime"}
        Kinematics, see :func:`make_events`.
    seed : int
        Random seed.
    sample : str, optional
        Sample name recorded in the JSON (default: the file's stem).
    drop : tuple of str
        Branches to leave out (e.g. ``("Muon_tightId",)``) to test error messages.
    rename : dict, optional
        Jet branches to write under another name, e.g.
        ``{"Jet_btagDeepFlavB": "Jet_btagDeepB"}`` for old-NanoAOD-like files.
    metadata : bool
        Write ``<path>.json`` beside the file.
    basket_size : int
        Events per basket (uproot writes one basket per ``extend``).

    Examples
    --------
    >>> import tempfile, uproot
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_sample(f"{tmp}/tt.root", 20, seed=2)
    ...     with uproot.open(path) as f:
    ...         print(f["Events"].num_entries, "nJet" in f["Events"])
    20 True
    """
    path = Path(path)
    events = make_events(n_events, process=process, seed=seed)
    for old, new in (rename or {}).items():
        group, field = old.split("_", 1)
        jets = events[group]
        events[group] = ak.zip(
            {(new.split("_", 1)[1] if f == field else f): jets[f] for f in jets.fields}
        )
    groups = ("Jet", "Muon", "Electron")
    flat = [k for k in events if k not in groups]
    branch_types: dict = {}
    for key in flat:
        if key not in drop:
            branch_types[key] = events[key].dtype
    for group in groups:
        fields = [f for f in events[group].fields if f"{group}_{f}" not in drop]
        branch_types[group] = ak.zip({f: events[group][f] for f in fields}).type.content
    with uproot.recreate(path) as f:
        f.mktree(
            "Events",
            branch_types,
            counter_name=lambda c: "n" + c,
            field_name=lambda outer, inner: outer + "_" + inner,
        )
        for start in range(0, max(n_events, 1), basket_size):
            stop = min(start + basket_size, n_events)
            chunk = {}
            for key in flat:
                if key not in drop:
                    chunk[key] = events[key][start:stop]
            for group in groups:
                fields = [f for f in events[group].fields if f"{group}_{f}" not in drop]
                chunk[group] = ak.zip({fld: events[group][fld][start:stop] for fld in fields})
            f["Events"].extend(chunk)
        sumw = float(np.sum(events["genWeight"], dtype=np.float64))
        f["Runs"] = {
            "run": np.array([1], dtype=np.uint32),
            "genEventCount": np.array([n_events], dtype=np.int64),
            "genEventSumw": np.array([sumw], dtype=np.float64),
        }
    if metadata:
        meta = {
            "sample": sample or path.stem,
            "process": process,
            "mass": 750.0 if process == "zprime" else None,
            "cross_section_pb": PROCESSES[process]["cross_section_pb"],
            "n_events": int(n_events),
            "seed": seed,
            "settings": {"generator": "tests/columnar_samples.py", **PROCESSES[process]},
        }
        Path(f"{path}.json").write_text(json.dumps(meta, indent=2))
    return path


def _copy_metadata(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    meta = Path(f"{src}.json")
    if meta.is_file():
        Path(f"{dst}.json").write_text(meta.read_text())


def truncate_copy(src: str | os.PathLike, dst: str | os.PathLike, *, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of the bytes of ``src`` to ``dst`` (a truncated ROOT file).

    The metadata JSON is copied whole, as it would be for a transfer cut short.
    """
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    _copy_metadata(src, dst)
    return Path(dst)


def corrupt_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dst`` with the middle third of the bytes overwritten by garbage.

    The file still opens (uproot writes its directory and tree metadata first), but reading
    baskets fails, so the error comes while processing rather than while opening. The
    metadata JSON is copied unchanged.
    """
    data = bytearray(Path(src).read_bytes())
    lo, hi = len(data) // 3, 2 * len(data) // 3
    data[lo:hi] = bytes((i * 7919) % 251 for i in range(hi - lo))
    Path(dst).write_bytes(bytes(data))
    _copy_metadata(src, dst)
    return Path(dst)
