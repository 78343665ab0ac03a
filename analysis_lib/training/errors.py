"""Errors the training estimators raise about their input.

Every one is a :class:`ValueError` (so ``except ValueError`` catches bad input as scikit-learn
users expect), carries a message that names the offending field or value, and pickles with
its message, so it crosses Dask workers intact.

Examples
--------
>>> err = FeatureMismatchError("features differ: missing 'theta'")
>>> isinstance(err, ValueError), str(err)
(True, "features differ: missing 'theta'")
"""

from __future__ import annotations


class TrainingInputError(ValueError):
    """Input an estimator cannot train or predict on (NaN, wrong shape, one class, ...)."""


class FeatureMismatchError(TrainingInputError):
    """A model applied to a feature set other than the one it was trained on."""


class UnknownParameterError(TrainingInputError):
    """A physics parameter (or nuisance) that is not known: wrong name or out of range."""


class UnknownVariationError(TrainingInputError):
    """A systematic variation name that the estimator was not given or trained on."""
