"""Event weights for training: the negative-weight policy and class balancing.

Negative weights come from NLO generators (MC@NLO-type subtraction); a per-event loss with a
negative weight pulls the classifier the other way for that event. The policies:

========= ==================================================================================
``keep``  use the weights as they are (Keras only: the weighted cross-entropy is still the
          right expectation; XGBoost refuses negative weights, so it raises there)
``abs``   use ``|w|`` (the common choice for boosted trees; biases the shape slightly
          where negative weights cluster)
``zero``  drop events with ``w < 0`` (weight 0), the rest as they are
``error`` raise if any weight is negative
========= ==================================================================================

Class balancing (``class_balance=True``) then scales signal and background so each class
carries half of the total weight, whatever the cross sections: the classifier learns the
likelihood ratio at equal priors, which is what a cut-independent AUC or a
parameterised network wants.

Examples
--------
>>> import numpy as np
>>> y = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
>>> w = np.array([1.0, -0.5, 2.0, 2.0, 4.0])
>>> wb = training_weights(y, w, negative_weights="abs", class_balance=True)
>>> float(wb[y == 1].sum()), float(wb[y == 0].sum())  # |w| sums to 9.5, half each
(4.75, 4.75)
>>> training_weights(y, w, negative_weights="error")
Traceback (most recent call last):
...
analysis_lib.training.errors.TrainingInputError: sample_weight has 1 negative weight (first at row 1) and negative_weights='error'; choose 'keep', 'abs' or 'zero'
"""  # noqa: E501

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .errors import TrainingInputError

NEGATIVE_WEIGHT_POLICIES: tuple[str, ...] = ("keep", "abs", "zero", "error")


def check_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`NEGATIVE_WEIGHT_POLICIES`, else a clear error."""
    if policy not in NEGATIVE_WEIGHT_POLICIES:
        raise TrainingInputError(
            f"negative_weights must be one of {', '.join(map(repr, NEGATIVE_WEIGHT_POLICIES))}, "
            f"got {policy!r}"
        )
    return policy


def apply_negative_weight_policy(w: NDArray[np.float64], policy: str) -> NDArray[np.float64]:
    """The weights after the negative-weight ``policy`` (a new array).

    Examples
    --------
    >>> import numpy as np
    >>> apply_negative_weight_policy(np.array([1.0, -2.0]), "zero").tolist()
    [1.0, 0.0]
    """
    check_policy(policy)
    w = np.array(w, dtype=np.float64)
    negative = w < 0
    if not negative.any() or policy == "keep":
        return w
    if policy == "error":
        rows = np.flatnonzero(negative)
        plural = "s" if rows.size > 1 else ""
        raise TrainingInputError(
            f"sample_weight has {rows.size} negative weight{plural} (first at row {int(rows[0])})"
            " and negative_weights='error'; choose 'keep', 'abs' or 'zero'"
        )
    if policy == "abs":
        return np.abs(w)
    w[negative] = 0.0
    return w


def balance_classes(y: NDArray[np.float64], w: NDArray[np.float64]) -> NDArray[np.float64]:
    """Scale each class so signal and background each sum to half the total weight.

    Examples
    --------
    >>> import numpy as np
    >>> balance_classes(np.array([1.0, 0.0, 0.0]), np.ones(3)).tolist()
    [1.5, 0.75, 0.75]
    """
    w = np.array(w, dtype=np.float64)
    total = w.sum()
    for cls in (0.0, 1.0):
        mask = y == cls
        s = w[mask].sum()
        if not s > 0:
            raise TrainingInputError(
                f"class {int(cls)} has total weight {s!r} <= 0; it cannot be balanced "
                "(check the negative-weight policy)"
            )
        w[mask] *= 0.5 * total / s
    return w


def training_weights(
    y: NDArray[np.float64],
    sample_weight: NDArray[np.float64] | None,
    *,
    negative_weights: str = "keep",
    class_balance: bool = False,
) -> NDArray[np.float64]:
    """Weights as a trainer uses them: the negative-weight policy, then class balancing.

    The total must stay positive for each class; the result is not normalised (the
    estimators rescale to mean 1 themselves where the optimiser cares).
    """
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = apply_negative_weight_policy(w, negative_weights)
    for cls in (0.0, 1.0):
        s = w[y == cls].sum()
        if not s > 0:
            raise TrainingInputError(
                f"class {int(cls)} has total weight {s!r} <= 0 after negative_weights="
                f"{negative_weights!r}; a classifier cannot learn from it"
            )
    if class_balance:
        w = balance_classes(y, w)
    return w
