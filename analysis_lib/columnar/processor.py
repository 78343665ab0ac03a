"""The coffea processor: selection, features, systematic variations and inference per chunk.

For each chunk of events the processor reads the needed columns once into flat numpy
arrays (straight from the tree with :meth:`SemileptonicProcessor.process_tree`, or from
NanoEvents with :meth:`SemileptonicProcessor.process`), finds each event's lepton, then
for every shape variation (``nominal``, ``jes_*``, ``jer_*``) selects the jets, propagates
their change to the MET, applies the event selection and builds the features of the
selected events, all variations in one compiled pass over the events
(:func:`~analysis_lib.columnar.variation_pass.run_variations`); weight variations
(``btag_sf_*``, ``lepton_sf_*``) reuse the nominal features with another weight. With a
model, each variation's table gets a score column in the same pass.

Its output per chunk is ``{"chunks": [record]}`` (records concatenate when coffea
accumulates); :func:`analysis_lib.columnar.runner.run_columnar` turns the records into one
table per sample and variation. A record holds the chunk's identity (``dataset``,
``filename``, ``fileuuid``, ``entrystart``, ``entrystop``), ``tables`` (variation → columns,
for nominal and shape variations), ``weights`` (weight variation → the ``weight`` column for
the nominal events), ``cutflow`` (variation → labels, event counts and weight sums),
``timing`` and ``bad`` (None, or why the chunk could not be read when ``record_bad_input``).

Used on its own with coffea's ``Runner``, pass ``schema=EventsSchema`` (or coffea's
``NanoAODSchema``) and a fileset from
:meth:`analysis_lib.columnar.samples.PreparedFileset.coffea_fileset` so the chunks know the
sample's cross-section and Sum genWeight (without them the weight is ``genWeight`` x scale
factors).

When ``one_lepton`` is required, events without exactly one tight lepton are set aside
before the jets are looked at (they can neither enter the tables nor pass the later cuts
of the cumulative cutflow): their jet counts are 0 and their b-tag scale factor 1.

Examples
--------
>>> proc = SemileptonicProcessor(variations=["jes_up"], require=("one_lepton", "jets"))
>>> [v.name for v in proc.variations]
['nominal', 'jes_up']
>>> proc.columns[:5]
['run', 'luminosityBlock', 'event', 'weight', 'lep_pt']
>>> SemileptonicProcessor(require=("two_leptons",))
Traceback (most recent call last):
...
ValueError: unknown cut(s) 'two_leptons' in require; the cuts are one_lepton, jets, btag, met
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import numbers
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
from coffea.nanoevents import NanoAODSchema
from coffea.processor import ProcessorABC

from .errors import BadInputError
from .features import FeatureConfig, jet_columns
from .inference import FeatureScorer
from .inputs import (
    DEFAULT_BTAG_BRANCH,
    ChunkInputs,
    btag_working_point,
    events_tree,
    load_inputs,
    read_inputs,
)
from .selection import (
    CUT_NAMES,
    Cuts,
    EventSelection,
    cutflow_tables,
    select_leptons,
)
from .systematics import (
    SystematicsConfig,
    btag_sf_table,
    event_weights,
    jet_factors,
    jet_normals,
    lepton_sf,
    resolve_variations,
    weight_factors,
)
from .variation_pass import run_variations

#: 139 fb⁻¹ in pb⁻¹, the default integrated luminosity.
DEFAULT_LUMI_PB = 139_000.0
#: Event identifiers copied into every table.
ID_COLUMNS: tuple[str, ...] = ("run", "luminosityBlock", "event")


class EventsSchema(NanoAODSchema):
    """coffea's NanoAOD schema, quiet about cross-references our files do not carry."""

    warn_missing_crossrefs = False


@functools.cache
def source_digest(cls: type) -> str:
    """A hash of the code that makes a chunk's output: this package's modules and the
    module that defines ``cls`` (a user's subclass, say).

    Examples
    --------
    >>> len(source_digest(SemileptonicProcessor))
    64
    """
    package = Path(__file__).resolve().parent
    files = sorted(package.glob("*.py"))
    try:
        own = inspect.getsourcefile(cls)
    except (TypeError, OSError):  # defined in a notebook cell or an interactive session
        own = None
    if own is not None and Path(own).resolve().parent != package:
        files.append(Path(own))
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class SemileptonicProcessor(ProcessorABC):
    """Semileptonic tt̄ selection and features for the nominal and varied events.

    Parameters
    ----------
    variations : iterable of str, optional
        Variation names (see :mod:`analysis_lib.columnar.systematics`); all by default.
        ``nominal`` is always included.
    cuts : Cuts, optional
        Selection thresholds.
    require : sequence of str
        The cuts an event must pass to enter the tables (default all of
        :data:`~analysis_lib.columnar.selection.CUT_NAMES`; ``()`` keeps every event,
        a feature-extraction mode). The cutflow always has every cut.
    btag_branch : str
        The b-tag score branch (``Jet_btagDeepB`` for old NanoAOD).
    btag_wp : float, optional
        The b-tag cut (default: the known medium working point of ``btag_branch``).
    lumi_pb : float
        Integrated luminosity in pb⁻¹ for the normalization sigma x L / Σ genWeight.
    systematics : SystematicsConfig, optional
        Sizes of the variations.
    features : FeatureConfig, optional
        Jets to store and to use for the masses.
    model : FeatureScorer, model object or path, optional
        A trained model applied to every variation's table. A file is checked here (a
        missing or broken one raises :class:`~analysis_lib.columnar.ModelFileError`) and
        its checksum is part of :meth:`fingerprint`.
    model_features : sequence, optional
        The model's inputs (when ``model`` is not already a FeatureScorer).
    score_column : str
        Name of the score column (``score_0 ...`` for a model with several outputs).
    record_bad_input : bool
        Return unreadable chunks as records with ``bad`` set instead of raising
        (the runner uses this to finish the good chunks and report the bad files).
    fast_read : bool
        Read the branches straight from the chunk's tree when coffea gives one (see
        :meth:`read_chunk`); False always goes through the NanoEvents records. The
        tables are the same either way.
    """

    def __init__(
        self,
        *,
        variations: Iterable[str] | None = None,
        cuts: Cuts | None = None,
        require: Sequence[str] = CUT_NAMES,
        btag_branch: str = DEFAULT_BTAG_BRANCH,
        btag_wp: float | None = None,
        lumi_pb: float = DEFAULT_LUMI_PB,
        systematics: SystematicsConfig | None = None,
        features: FeatureConfig | None = None,
        model: Any = None,
        model_features: Sequence | None = None,
        score_column: str = "score",
        record_bad_input: bool = False,
        fast_read: bool = True,
    ) -> None:
        self.variations = resolve_variations(variations)
        self.cuts = cuts or Cuts()
        require = (require,) if isinstance(require, str) else tuple(require)
        unknown = [c for c in require if c not in CUT_NAMES]
        if unknown:
            raise ValueError(
                f"unknown cut(s) {', '.join(map(repr, unknown))} in require; "
                f"the cuts are {', '.join(CUT_NAMES)}"
            )
        self.require = tuple(c for c in CUT_NAMES if c in require)
        self.btag_branch = btag_branch
        self.btag_wp = btag_working_point(btag_branch, btag_wp)
        if not math.isfinite(self.btag_wp):
            raise ValueError(f"btag_wp must be a finite number, got {btag_wp!r}")
        if (
            isinstance(lumi_pb, bool)
            or not isinstance(lumi_pb, numbers.Real)
            or not (math.isfinite(lumi_pb) and lumi_pb > 0)
        ):
            raise ValueError(f"lumi_pb must be a positive number (pb^-1), got {lumi_pb!r}")
        self.lumi_pb = float(lumi_pb)
        for name, value, kind in (
            ("cuts", cuts, Cuts),
            ("systematics", systematics, SystematicsConfig),
            ("features", features, FeatureConfig),
        ):
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"{name} must be a {kind.__name__} or None, got {value!r}")
        self.systematics = systematics or SystematicsConfig()
        self.features = features or FeatureConfig()
        if model is not None and not isinstance(model, FeatureScorer):
            if model_features is not None:  # before the model's width is checked against them
                self._check_model_columns(
                    [f[0] if isinstance(f, (tuple, list)) else str(f) for f in model_features]
                )
            model = FeatureScorer(model, model_features)
        self.scorer: FeatureScorer | None = model
        self.score_column = score_column
        self.record_bad_input = record_bad_input
        self.fast_read = fast_read
        if self.scorer is not None:
            taken = [*ID_COLUMNS, "weight", *self.feature_columns]
            prefix = f"{score_column}_"
            clash = [c for c in taken if c == score_column or (c.startswith(prefix)
                     and c[len(prefix):].isdigit())]  # fmt: skip
            if not isinstance(score_column, str) or not score_column.strip() or clash:
                raise ValueError(
                    f"score_column {score_column!r} "
                    + (f"clashes with the table's column {clash[0]!r}" if clash else "is empty")
                    + "; choose another name (--score-column)"
                )
            self._check_model_columns(self.scorer.columns)

    def _check_model_columns(self, columns: Sequence[str]) -> None:
        absent = [c for c in columns if c not in self.feature_columns]
        if absent:
            raise ValueError(
                f"the model's feature(s) {', '.join(absent)} are not produced; "
                f"the feature columns are {', '.join(self.feature_columns)}"
            )

    # -- description ----------------------------------------------------------------------
    @property
    def feature_columns(self) -> list[str]:
        """The feature columns of every table, in order."""
        return [
            "lep_pt",
            "lep_eta",
            "lep_phi",
            "lep_charge",
            "lep_flavour",
            "met_pt",
            "met_phi",
            "n_jets",
            "n_bjets",
            *jet_columns(self.features.n_jets),
            "m_jj",
            "m_jjj",
            "m_lv",
            "m_jlv",
            "m_bb",
            "m_wbb",
            "m_wwbb",
        ]

    @property
    def columns(self) -> list[str]:
        """All columns of an output table (score columns last, with a model)."""
        cols = [*ID_COLUMNS, "weight", *self.feature_columns]
        if self.scorer is not None:
            cols.append(self.score_column)
        return cols

    def config(self) -> dict:
        """Every setting as JSON-able data (recorded in the output metadata)."""
        return {
            "processor": type(self).__name__,
            "variations": [v.name for v in self.variations],
            "cuts": self.cuts.to_dict(),
            "require": list(self.require),
            "btag_branch": self.btag_branch,
            "btag_wp": self.btag_wp,
            "lumi_pb": self.lumi_pb,
            "systematics": self.systematics.to_dict(),
            "features": self.features.to_dict(),
            "model": None if self.scorer is None else self.scorer.describe(),
            "score_column": self.score_column if self.scorer is not None else None,
        }

    def fingerprint(self) -> str:
        """A short hash of the configuration, the code and the model: checkpoints are keyed
        by it."""
        from .output import code_version

        h = hashlib.sha256(json.dumps(self.config(), sort_keys=True, default=str).encode())
        h.update(json.dumps(code_version(git=False), sort_keys=True).encode())
        h.update(source_digest(type(self)).encode())  # edited code: no stale chunks
        if self.scorer is not None and self.scorer._path is None:
            # an in-memory model; a file's checksum is in the config already
            h.update(cloudpickle.dumps(self.scorer._model))
        return h.hexdigest()[:16]

    # -- processing -----------------------------------------------------------------------
    def normalization(self, metadata: dict) -> float:
        """sigma x L / Σ genWeight from the chunk's metadata, or 1 when sigma or Σ is unknown."""
        if metadata.get("normalization") is not None:
            return float(metadata["normalization"])
        xsec, sumw = metadata.get("cross_section_pb"), metadata.get("gen_event_sumw")
        if xsec is None or not sumw:
            return 1.0
        return float(xsec) * self.lumi_pb / float(sumw)

    def process(self, events) -> dict:
        """Process one chunk of NanoEvents; see the module documentation for the output."""
        meta = dict(getattr(events, "metadata", None) or {})
        return self._process_chunk(lambda: self.read_chunk(events, meta), meta, len(events))

    def process_tree(self, tree, metadata: dict) -> dict:
        """Process the entries ``metadata["entrystart"]:["entrystop"]`` of an uproot tree.

        What :class:`~analysis_lib.columnar.direct.DirectRunner` calls instead of
        :meth:`process`: the branches are read straight from the tree
        (:func:`~analysis_lib.columnar.inputs.read_inputs`), with no NanoEvents.
        ``tree`` may be a callable that opens it (so a file that cannot be opened becomes a
        bad record with ``record_bad_input``). The output is that of :meth:`process`.
        """
        meta = dict(metadata)
        start, stop = meta.get("entrystart"), meta.get("entrystop")
        n_events = None if start is None or stop is None else int(stop) - int(start)

        def read() -> ChunkInputs:
            filename = meta.get("filename")
            try:
                opened = tree() if callable(tree) else tree
            except BadInputError:
                raise
            except Exception as exc:
                raise BadInputError(
                    filename or "<tree>", f"cannot open the file: {type(exc).__name__}: {exc}"
                ) from exc
            return read_inputs(
                opened,
                entry_start=start,
                entry_stop=stop,
                btag_branch=self.btag_branch,
                filename=filename,
            )

        return self._process_chunk(read, meta, n_events)

    def _process_chunk(self, read, meta: dict, n_events: int | None) -> dict:
        record: dict[str, Any] = {
            "dataset": meta.get("dataset"),
            "filename": meta.get("filename"),
            "fileuuid": meta.get("fileuuid"),
            "entrystart": meta.get("entrystart", 0),
            "entrystop": meta.get("entrystop", n_events),
            "n_events": n_events,
            "bad": None,
            "tables": {},
            "weights": {},
            "cutflow": {},
            "timing": {},
        }
        start = time.perf_counter()
        try:
            inputs = read()
        except BadInputError as exc:
            if not self.record_bad_input:
                raise
            record["bad"] = exc.reason  # the file is the record's "filename"
            record["n_events"] = n_events or 0
            return {"chunks": [record]}
        record["n_events"] = len(inputs)
        if record["entrystop"] is None:
            record["entrystop"] = record["entrystart"] + len(inputs)
        self._process_inputs(inputs, meta, record)
        record["timing"]["total_s"] = time.perf_counter() - start
        return {"chunks": [record]}

    def read_chunk(self, events, meta: dict | None = None) -> ChunkInputs:
        """The chunk's columns as numpy arrays.

        When the chunk comes from coffea's Runner (NanoEvents over an open ROOT file) the
        needed branches are read straight from the tree with one uproot call
        (:func:`~analysis_lib.columnar.inputs.read_inputs`); otherwise through the NanoEvents
        records (:func:`~analysis_lib.columnar.inputs.load_inputs`). Both give the same
        arrays.
        """
        meta = meta if meta is not None else dict(getattr(events, "metadata", None) or {})
        tree = events_tree(events) if self.fast_read else None
        if tree is None:
            return load_inputs(events, btag_branch=self.btag_branch)
        return read_inputs(
            tree,
            entry_start=meta.get("entrystart"),
            entry_stop=meta.get("entrystop"),
            btag_branch=self.btag_branch,
            filename=meta.get("filename"),
        )

    def _process_inputs(self, inputs, meta: dict, record: dict) -> None:
        n = len(inputs)
        jets = inputs.jets
        cuts, syst = self.cuts, self.systematics
        leptons = select_leptons(inputs, cuts)
        # cut early: without exactly one tight lepton (when that cut is required) an event
        # cannot enter the tables nor pass the later cuts of the cumulative cutflow
        if "one_lepton" in self.require:
            candidates = np.flatnonzero(leptons.n_tight == 1)
        else:
            candidates = np.arange(n)
        shape = [v for v in self.variations if v.kind in ("nominal", "shape")]
        weight_variations = [v for v in self.variations if v.kind == "weight"]
        # the up and down factors only for the weight variations
        lepton_factors = lepton_sf(leptons, syst, shifts=bool(weight_variations))
        sf_table = btag_sf_table(syst) if inputs.simulation else None
        normals = None
        if any(v.source == "jer" for v in shape):
            normals = jet_normals(inputs, syst.seed)
        normalization = self.normalization(meta)
        # vectorized float32 trigonometry (the precision of the stored angle), float64 after
        met_phi = inputs.met_phi.astype(np.float32, copy=False)
        met_pt = inputs.met_pt.astype(np.float64)
        met_x = met_pt * np.cos(met_phi)
        met_y = met_pt * np.sin(met_phi)
        # every shape variation's jet selection, MET, cuts and features in one pass
        results = run_variations(
            jets,
            leptons,
            (met_x, met_y, inputs.met_pt),
            factors=[jet_factors(v, syst, normals) for v in shape],
            nominal=[v.kind == "nominal" for v in shape],
            cuts=cuts,
            btag_wp=self.btag_wp,
            require=sum(1 << CUT_NAMES.index(c) for c in self.require),
            candidates=candidates,
            features=self.features,
            btag_sf_table=sf_table,
            met_jet_pt_min=syst.met_jet_pt_min,
            sf_shifts=bool(weight_variations),  # Weights registers btag_sf with its shifts
        )
        inference_s = 0.0
        for variation, result in zip(shape, results, strict=True):
            rows = result.rows
            selection = EventSelection.from_bits(CUT_NAMES, result.bits)
            factors = weight_factors(inputs, result.btag_sf, lepton_factors, normalization)
            total = factors.total()
            cutflow_weights = {variation.name: total}
            if variation.kind == "nominal":
                cutflow_weights.update({wv.name: factors.total(wv) for wv in weight_variations})
            record["cutflow"].update(cutflow_tables(selection, cutflow_weights, result.depth))
            if variation.kind == "nominal" and weight_variations:
                # the weight variations come from coffea's Weights; without them (and for
                # the shape variations) the weight is the same product of the factors
                weights = event_weights(factors, rows)
                weight = weights.weight()
                for wv in weight_variations:
                    record["weights"][wv.name] = weights.weight(wv.modifier)
            else:
                weight = total[rows]
            table = {
                "run": inputs.run[rows],
                "luminosityBlock": inputs.luminosity_block[rows],
                "event": inputs.event[rows],
                "weight": weight,
            }
            table.update(result.columns)
            if self.scorer is not None:
                tic = time.perf_counter()
                scores = self.scorer.score(table)
                inference_s += time.perf_counter() - tic
                if scores.ndim == 1:
                    table[self.score_column] = scores
                else:
                    for i in range(scores.shape[1]):
                        table[f"{self.score_column}_{i}"] = scores[:, i]
            record["tables"][variation.name] = table
        record["timing"]["inference_s"] = inference_s

    def postprocess(self, accumulator):
        """Nothing to do: the runner assembles the tables."""
        return accumulator
