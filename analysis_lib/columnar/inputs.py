"""The NanoAOD branches the pipeline reads, their checks, and loading a chunk into numpy.

Input contract (our generator's layout; real CMS NanoAOD has the same names and more):

========== =================================================================================
event      ``run``, ``luminosityBlock``, ``event``; ``genWeight`` (simulation only)
Jet        ``nJet``; ``Jet_pt, Jet_eta, Jet_phi, Jet_mass, Jet_jetId``, the b-tag score
           (``btag_branch``, default ``Jet_btagDeepFlavB``) and, in simulation,
           ``Jet_hadronFlavour``
Muon       ``nMuon``; ``Muon_pt, Muon_eta, Muon_phi, Muon_mass, Muon_charge, Muon_tightId,
           Muon_pfRelIso04_all``
Electron   ``nElectron``; ``Electron_pt, Electron_eta, Electron_phi, Electron_mass,
           Electron_charge, Electron_cutBased, Electron_pfRelIso03_all``
MET        ``MET_pt, MET_phi``
========== =================================================================================

A file without ``genWeight`` is treated as collision data: every event weighs 1 and the
scale-factor weights are 1 (``Jet_hadronFlavour`` is then not needed).

Older NanoAOD has no ``Jet_btagDeepFlavB`` but ``Jet_btagDeepB`` (DeepCSV): pass
``btag_branch="Jet_btagDeepB"``. :data:`BTAG_WORKING_POINTS` holds the default cut for the
known scores; for another branch give ``btag_wp`` explicitly.

Examples
--------
>>> required_branches()[:4]
['run', 'luminosityBlock', 'event', 'nJet']
>>> check_branches("old.root", ["run", "Jet_btagDeepB"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
analysis_lib.columnar.errors.MissingBranchError: old.root: missing branches ...
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import awkward as ak
import numpy as np
import uproot

from .errors import BadInputError, MissingBranchError
from .jagged import Jagged

#: Event-level branches that must exist.
EVENT_BRANCHES: tuple[str, ...] = ("run", "luminosityBlock", "event")
#: Fields read per collection (the b-tag score comes from ``btag_branch``).
COLLECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "Jet": ("pt", "eta", "phi", "mass", "jetId"),
    "Muon": ("pt", "eta", "phi", "mass", "charge", "tightId", "pfRelIso04_all"),
    "Electron": ("pt", "eta", "phi", "mass", "charge", "cutBased", "pfRelIso03_all"),
}
#: Flat (one value per event) fields of the MET record.
MET_FIELDS: tuple[str, ...] = ("pt", "phi")
#: Branches read only in simulation (a file without ``genWeight`` is data).
MC_BRANCHES: tuple[str, ...] = ("genWeight", "Jet_hadronFlavour")
#: Medium working points of the usual CMS b-tag scores (DeepJet and DeepCSV for 2018,
#: CSVv2 for 2016). Give ``btag_wp`` yourself for any other score or era.
BTAG_WORKING_POINTS: dict[str, float] = {
    "Jet_btagDeepFlavB": 0.2770,
    "Jet_btagDeepB": 0.4184,
    "Jet_btagCSVV2": 0.8484,
}
DEFAULT_BTAG_BRANCH = "Jet_btagDeepFlavB"


def btag_working_point(btag_branch: str, btag_wp: float | None = None) -> float:
    """The b-tag cut for ``btag_branch``: ``btag_wp`` if given, else the known default.

    Examples
    --------
    >>> btag_working_point("Jet_btagDeepB")
    0.4184
    >>> btag_working_point("Jet_btagPNetB", 0.25)
    0.25
    """
    if btag_wp is not None:
        return float(btag_wp)
    try:
        return BTAG_WORKING_POINTS[btag_branch]
    except KeyError:
        raise ValueError(
            f"no default working point for {btag_branch!r}; give the cut (--btag-wp, btag_wp=) "
            f"(defaults exist for {', '.join(BTAG_WORKING_POINTS)})"
        ) from None


def _field(btag_branch: str) -> str:
    if not btag_branch.startswith("Jet_"):
        raise ValueError(
            f"btag_branch must be a Jet branch such as 'Jet_btagDeepFlavB', got {btag_branch!r}"
        )
    return btag_branch[len("Jet_") :]


def required_branches(
    btag_branch: str = DEFAULT_BTAG_BRANCH, *, simulation: bool = True
) -> list[str]:
    """The branch names the pipeline reads, counters included.

    Parameters
    ----------
    btag_branch : str
        The b-tag score branch.
    simulation : bool
        Include ``genWeight`` and ``Jet_hadronFlavour``.

    Examples
    --------
    >>> "Jet_btagDeepB" in required_branches("Jet_btagDeepB")
    True
    """
    _field(btag_branch)
    names = list(EVENT_BRANCHES)
    for coll, fields in COLLECTION_FIELDS.items():
        names.append(f"n{coll}")
        names += [f"{coll}_{f}" for f in fields]
        if coll == "Jet":
            names.append(btag_branch)
    names += [f"MET_{f}" for f in MET_FIELDS]
    if simulation:
        names += list(MC_BRANCHES)
    return names


def input_branches(btag_branch: str = DEFAULT_BTAG_BRANCH, *, simulation: bool = True) -> list[str]:
    """The branches :func:`read_inputs` reads: :func:`required_branches` without the counters.

    The jagged branches carry their own offsets, so ``nJet``, ``nMuon`` and ``nElectron``
    are not read.

    Examples
    --------
    >>> "nJet" in input_branches(), "Jet_pt" in input_branches()
    (False, True)
    """
    counters = {f"n{c}" for c in COLLECTION_FIELDS}
    return [b for b in required_branches(btag_branch, simulation=simulation) if b not in counters]


def check_branches(
    filename: str,
    available: Iterable[str],
    btag_branch: str = DEFAULT_BTAG_BRANCH,
) -> bool:
    """Raise :class:`MissingBranchError` if a needed branch is absent; say if it is simulation.

    Counters (``nJet``) are not checked: the NanoAOD schema folds them into collections.

    Returns
    -------
    bool
        True when the file is simulation (it has ``genWeight``).

    Raises
    ------
    MissingBranchError
        Naming the missing branches and listing the file's branches of the same
        collections; for a missing b-tag branch, the b-tag branches the file has.
    """
    available = set(available)
    simulation = "genWeight" in available
    needed = [
        b for b in required_branches(btag_branch, simulation=simulation) if not b.startswith("n")
    ]
    missing = [b for b in needed if b not in available]
    if not missing:
        return simulation
    if btag_branch in missing:
        btags = sorted(b for b in available if b.startswith("Jet_btag"))
        raise MissingBranchError(
            filename,
            missing,
            available=btags,
            hint=(
                f"{btag_branch} is the b-tag score (btag_branch); the b-tag branches listed are "
                "the ones this file has: choose one with btag_branch=... "
                "(--btag-branch on the command line)"
                if btags
                else "the file has no Jet_btag* branch at all"
            ),
        )
    prefixes = {b.split("_", 1)[0] + "_" for b in missing if "_" in b}
    related = sorted(b for b in available if any(b.startswith(p) for p in prefixes))
    if any("_" not in b for b in missing):  # event-level branches: list the event-level ones
        related += sorted(b for b in available if "_" not in b)
    raise MissingBranchError(filename, missing, available=related)


def nanoevents_branches(events) -> set[str]:
    """Branch-style names (``Jet_pt``, ``run``) of what a NanoEvents array offers."""
    names: set[str] = set()
    for name in events.fields:
        sub = events[name]
        fields = getattr(sub, "fields", None) or []
        if fields:
            names.update(f"{name}_{f}" for f in fields)
        else:
            names.add(name)
    return names


@dataclass(eq=False)
class ChunkInputs:
    """The columns of one chunk as numpy arrays (see the module's input contract)."""

    run: np.ndarray
    luminosity_block: np.ndarray
    event: np.ndarray
    gen_weight: np.ndarray | None
    met_pt: np.ndarray
    met_phi: np.ndarray
    jets: Jagged
    muons: Jagged
    electrons: Jagged

    def __len__(self) -> int:
        return len(self.run)

    @property
    def simulation(self) -> bool:
        """True for simulated events (they carry ``genWeight``)."""
        return self.gen_weight is not None


def _flat(array) -> np.ndarray:
    layout = array.layout
    if isinstance(layout, ak.contents.NumpyArray):
        return np.asarray(layout.data)
    return ak.to_numpy(array)


def _jagged(array) -> tuple[np.ndarray, np.ndarray]:
    layout = array.layout
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(
        layout.content, ak.contents.NumpyArray
    ):
        offsets = np.asarray(layout.offsets.data)
        content = np.asarray(layout.content.data)
        start, stop = int(offsets[0]), int(offsets[-1])
        if start != 0 or stop != len(content):
            content = content[start:stop]
            offsets = offsets - start
        return offsets, content
    counts = ak.to_numpy(ak.num(array, axis=1))
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    return offsets, ak.to_numpy(ak.flatten(array, axis=1))


def _collection(events, name: str, fields: dict[str, str]) -> Jagged:
    record = events[name]
    offsets = None
    arrays = {}
    for key, field in fields.items():
        offsets, arrays[key] = _jagged(record[field])
    return Jagged(offsets, arrays)


def events_tree(events):
    """The uproot ``TTree`` a NanoEvents chunk was built from, or None.

    coffea's Runner builds each chunk with :meth:`NanoEventsFactory.from_root` on a file it
    has opened; the factory keeps that file, and its object cache the tree, so asking for
    the tree again costs nothing. Events made any other way (eager arrays, parquet, a
    future coffea that keeps no handle) give None.
    """
    try:
        factory = events.attrs["@events_factory"]
        handle = factory.file_handle
        treename = (getattr(events, "metadata", None) or {}).get("treename")
    except (AttributeError, KeyError, TypeError):
        return None
    if handle is None or not treename:
        return None
    if not isinstance(handle, uproot.reading.ReadOnlyDirectory):
        handle = getattr(handle, "root_directory", None)
        if handle is None:
            return None
    try:
        tree = handle[treename]
    except Exception:
        return None
    return tree if isinstance(tree, uproot.behaviors.TTree.TTree) else None


def _content(array: ak.Array, name: str) -> np.ndarray:
    layout = array.layout
    if not isinstance(layout, ak.contents.NumpyArray):
        raise TypeError(f"{name} is not a flat numeric branch ({array.type})")
    return np.asarray(layout.data)


def _collection_from(arrays: dict, prefix: str, fields: dict[str, str]) -> Jagged:
    offsets = None
    out = {}
    for key, field_name in fields.items():
        name = f"{prefix}_{field_name}"
        layout = arrays[name].layout
        if not (
            isinstance(layout, ak.contents.ListOffsetArray)
            and isinstance(layout.content, ak.contents.NumpyArray)
        ):
            raise TypeError(f"{name} is not a jagged numeric branch ({arrays[name].type})")
        these = np.asarray(layout.offsets.data)
        content = np.asarray(layout.content.data)
        start, stop = int(these[0]), int(these[-1])
        if start != 0 or stop != len(content):
            content = content[start:stop]
            these = these - start
        if offsets is None:
            offsets = these
        elif len(these) != len(offsets) or these[-1] != offsets[-1]:
            # the fields of a collection share one counter branch: a cheap consistency
            # check (lengths and totals) instead of comparing every offset
            raise ValueError(f"{name} has other counts than {prefix}_{next(iter(fields.values()))}")
        out[key] = content
    return Jagged(offsets, out)


def read_inputs(
    tree,
    *,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    btag_branch: str = DEFAULT_BTAG_BRANCH,
    filename: str | None = None,
) -> ChunkInputs:
    """Read the pipeline's columns of entries ``[entry_start, entry_stop)`` straight from a tree.

    The fast path of :func:`load_inputs`: one ``tree.arrays`` call for exactly the needed
    branches (no counters: the offsets come with the jagged branches), as a plain uproot
    read does, then the flat numpy buffers of each array — no NanoEvents records or
    behaviours are built.

    Parameters
    ----------
    tree : uproot.TTree
        The ``Events`` tree.
    entry_start, entry_stop : int, optional
        The chunk (all entries by default).
    btag_branch : str
        The b-tag score branch.
    filename : str, optional
        For messages (default: the tree's file).

    Raises
    ------
    MissingBranchError
        A needed branch is absent (listing what exists).
    BadInputError
        Reading failed (a corrupt or truncated file): names the file and the entry range.

    Examples
    --------
    >>> import os, tempfile
    >>> import awkward as ak, numpy as np, uproot
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.root")
    >>> two, one = ak.Array([[50.0, 40.0], [35.0]]), ak.Array([[30.0], []])
    >>> branches = {b: np.ones(2, np.uint32) for b in ("run", "luminosityBlock", "event")}
    >>> branches |= {"MET_pt": np.ones(2), "MET_phi": np.zeros(2)}
    >>> branches |= {b: two for b in required_branches() if b.startswith("Jet_")}
    >>> branches |= {b: one for b in required_branches() if b[:3] in ("Muo", "Ele")}
    >>> del branches["Jet_hadronFlavour"]  # no genWeight: collision data
    >>> with uproot.recreate(path) as f:
    ...     f["Events"] = branches
    >>> with uproot.open(path) as f:
    ...     chunk = read_inputs(f["Events"])
    >>> chunk.jets.offsets.tolist(), chunk.jets["pt"].tolist(), chunk.simulation
    ([0, 2, 3], [50.0, 40.0, 35.0], False)
    """
    filename = filename or getattr(getattr(tree, "file", None), "file_path", "<tree>")
    simulation = check_branches(filename, tree.keys(), btag_branch)
    jet_fields = {f: f for f in COLLECTION_FIELDS["Jet"]}
    jet_fields["btag"] = _field(btag_branch)
    if simulation:
        jet_fields["hadronFlavour"] = "hadronFlavour"
    flat = [*EVENT_BRANCHES, *(f"MET_{f}" for f in MET_FIELDS)]
    if simulation:
        flat.append("genWeight")
    collections = {
        "Jet": jet_fields,
        "Muon": {f: f for f in COLLECTION_FIELDS["Muon"]},
        "Electron": {f: f for f in COLLECTION_FIELDS["Electron"]},
    }
    names = input_branches(btag_branch, simulation=simulation)
    try:
        arrays = tree.arrays(names, entry_start=entry_start, entry_stop=entry_stop, how=dict)
        values = {name: _content(arrays[name], name) for name in flat}
        jets, muons, electrons = (_collection_from(arrays, p, f) for p, f in collections.items())
    except Exception as exc:
        where = ""
        if entry_start is not None or entry_stop is not None:
            where = f" (entries {entry_start}-{entry_stop})"
        raise BadInputError(
            filename, f"cannot read the events{where}: {type(exc).__name__}: {exc}"
        ) from exc
    return ChunkInputs(
        run=values["run"],
        luminosity_block=values["luminosityBlock"],
        event=values["event"],
        gen_weight=values.get("genWeight"),
        met_pt=values["MET_pt"],
        met_phi=values["MET_phi"],
        jets=jets,
        muons=muons,
        electrons=electrons,
    )


def load_inputs(
    events,
    *,
    btag_branch: str = DEFAULT_BTAG_BRANCH,
    filename: str | None = None,
) -> ChunkInputs:
    """Check and read the pipeline's columns from a NanoEvents chunk (``NanoAODSchema``).

    Parameters
    ----------
    events : awkward.Array
        NanoEvents (``mode="virtual"`` or eager).
    btag_branch : str
        The b-tag score branch.
    filename : str, optional
        For messages (default: ``events.metadata["filename"]``).

    Raises
    ------
    MissingBranchError
        A needed branch is absent (listing what exists).
    BadInputError
        Reading failed (a corrupt or truncated file): names the file and the entry range.
    """
    meta = getattr(events, "metadata", None) or {}
    filename = filename or meta.get("filename", "<events>")
    simulation = check_branches(filename, nanoevents_branches(events), btag_branch)
    jet_fields = {f: f for f in COLLECTION_FIELDS["Jet"]}
    jet_fields["btag"] = _field(btag_branch)
    if simulation:
        jet_fields["hadronFlavour"] = "hadronFlavour"
    try:
        return ChunkInputs(
            run=_flat(events.run),
            luminosity_block=_flat(events.luminosityBlock),
            event=_flat(events.event),
            gen_weight=_flat(events.genWeight) if simulation else None,
            met_pt=_flat(events.MET.pt),
            met_phi=_flat(events.MET.phi),
            jets=_collection(events, "Jet", jet_fields),
            muons=_collection(events, "Muon", {f: f for f in COLLECTION_FIELDS["Muon"]}),
            electrons=_collection(
                events, "Electron", {f: f for f in COLLECTION_FIELDS["Electron"]}
            ),
        )
    except Exception as exc:
        where = ""
        if "entrystart" in meta:
            where = f" (entries {meta['entrystart']}-{meta['entrystop']})"
        raise BadInputError(
            filename, f"cannot read the events{where}: {type(exc).__name__}: {exc}"
        ) from exc
