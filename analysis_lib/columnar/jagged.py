"""A flat numpy view of a NanoAOD collection: offsets plus one flat array per field.

The pipeline works on flat numpy arrays rather than on awkward records with vector
behaviours: a variation re-runs the selection and features several times per chunk, and on
flat arrays each pass is one compiled loop (:mod:`.kernels`) over the offsets.

Examples
--------
>>> import numpy as np
>>> jets = Jagged(np.array([0, 2, 2, 5]), {"pt": np.array([50.0, 40, 90, 35, 20])})
>>> len(jets), jets.n_objects, jets.counts.tolist()
(3, 5, [2, 0, 3])
>>> jets.event_index.tolist(), jets.local_index.tolist()
([0, 0, 2, 2, 2], [0, 1, 0, 1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(eq=False)
class Jagged:
    """Offsets (``n + 1`` of them, starting at 0) and flat field arrays of one collection.

    Parameters
    ----------
    offsets : numpy.ndarray
        Start of each event's objects in the flat arrays, plus the end.
    fields : mapping of str to numpy.ndarray
        Flat arrays, all ``offsets[-1]`` long.
    """

    offsets: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.fields = dict(self.fields)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fields[name]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_objects(self) -> int:
        """Number of objects over all events."""
        return int(self.offsets[-1])

    @cached_property
    def counts(self) -> np.ndarray:
        """Objects per event."""
        return np.diff(self.offsets)

    @cached_property
    def event_index(self) -> np.ndarray:
        """For each flat object, the index of its event."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.counts)

    @cached_property
    def local_index(self) -> np.ndarray:
        """For each flat object, its position inside its event (0 for the first)."""
        return np.arange(self.n_objects, dtype=np.int64) - self.offsets[:-1][self.event_index]
