"""Variation tables as training input: one table per systematic variation.

The columnar pipeline writes one table per sample and variation
(``<output>/<sample>/<variation>.parquet``, a ``weight`` column plus the features;
:class:`~analysis_lib.columnar.ColumnarResult` ``.tables[sample][variation]``). A classifier
needs signal and background together with a label: :func:`label_tables` stacks them per
variation. The estimators that train on variations take ``{variation: DataFrame}``.

Examples
--------
>>> import pandas as pd
>>> sig = {"nominal": pd.DataFrame({"x": [1.0, 2.0], "weight": 1.0}),
...        "jes_up": pd.DataFrame({"x": [1.1, 2.2], "weight": 1.0})}
>>> bkg = {"nominal": pd.DataFrame({"x": [0.0], "weight": 2.0}),
...        "jes_up": pd.DataFrame({"x": [0.1], "weight": 2.0})}
>>> tables = label_tables(sig, bkg)
>>> list(tables), tables["jes_up"]["label"].tolist()
(['nominal', 'jes_up'], [1, 1, 0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from . import inputs
from .errors import FeatureMismatchError, TrainingInputError, UnknownVariationError

Tables = Mapping[str, Any]


def as_frame(table: Any, *, name: str = "table") -> pd.DataFrame:
    """A pandas DataFrame from a DataFrame, a pyarrow Table or a parquet path."""
    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, "to_pandas"):
        return table.to_pandas()
    if isinstance(table, (str, bytes)) or hasattr(table, "__fspath__"):
        return pd.read_parquet(table)
    raise TrainingInputError(
        f"{name}: expected a pandas DataFrame, a pyarrow Table or a parquet path, "
        f"got {type(table).__name__}"
    )


def variations_named(names: Sequence[str]) -> str:
    """``variation 'a'`` or ``variations 'a', 'b'``: variation names for an error message.

    Examples
    --------
    >>> variations_named(["jes_up"]), variations_named(["jes_up", "jes_down"])
    ("variation 'jes_up'", "variations 'jes_up', 'jes_down'")
    """
    return f"variation{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))}"


def select_features(X: Any, columns: Sequence[str], *, owner: str) -> Any:
    """The trained feature ``columns`` of a table, in training order; arrays pass as they are.

    A pyarrow Table becomes a DataFrame; extra columns (label, weight, ...) are dropped, a
    missing one raises :class:`~analysis_lib.training.errors.FeatureMismatchError` naming it.

    Examples
    --------
    >>> select_features(pd.DataFrame({"w": [1.0], "b": [2.0], "a": [3.0]}), ["a", "b"],
    ...                 owner="model").columns.tolist()
    ['a', 'b']
    >>> select_features(pd.DataFrame({"a": [1.0]}), ["a", "b"], owner="model")
    Traceback (most recent call last):
    ...
    analysis_lib.training.errors.FeatureMismatchError: the model was trained on features ['a', 'b']; X lacks 'b'
    """  # noqa: E501
    if not isinstance(X, pd.DataFrame) and hasattr(X, "to_pandas"):
        X = as_frame(X)
    if isinstance(X, pd.DataFrame):
        cols = list(columns)
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise FeatureMismatchError(
                f"the {owner} was trained on features {cols}; X lacks "
                f"{', '.join(map(repr, missing))}"
            )
        return X[cols]
    return X


def label_tables(
    signal: Tables | Sequence[Tables],
    background: Tables | Sequence[Tables],
    *,
    label_column: str = "label",
) -> dict[str, pd.DataFrame]:
    """Signal and background tables stacked per variation, with a 0/1 label column.

    Parameters
    ----------
    signal, background : mapping variation -> table, or a sequence of such mappings
        (several samples, e.g. ``[result.tables["ttbar"], result.tables["wjets"]]``).
        Every mapping must have the same variations.
    label_column : str, default "label"

    Returns
    -------
    dict of variation -> DataFrame
        Signal rows first (label 1), then background (label 0); variations in the
        order of the first signal mapping.
    """
    groups = [(1, m) for m in (signal if isinstance(signal, (list, tuple)) else [signal])] + [
        (0, m) for m in (background if isinstance(background, (list, tuple)) else [background])
    ]
    names = list(groups[0][1])
    if not names:
        raise TrainingInputError("no variation tables given")
    for _, mapping in groups[1:]:
        if set(mapping) != set(names):
            missing = sorted(set(names) - set(mapping))
            extra = sorted(set(mapping) - set(names))
            raise UnknownVariationError(
                f"the samples have different variations: missing {missing}, extra {extra}"
            )
    out = {}
    for variation in names:
        frames = []
        for label, mapping in groups:
            frame = as_frame(mapping[variation], name=variation)
            if label_column in frame.columns:
                raise TrainingInputError(
                    f"table {variation!r} already has a column {label_column!r}"
                )
            frames.append(frame.assign(**{label_column: label}))
        out[variation] = pd.concat(frames, ignore_index=True)
    return out


def check_tables(X: Any) -> dict[str, pd.DataFrame]:
    """``{variation: DataFrame}`` from a mapping of tables, or a clear error."""
    if not isinstance(X, Mapping):
        raise TrainingInputError(
            "X must be a mapping {variation name: table}, e.g. label_tables(...) output, "
            f"got {type(X).__name__}"
        )
    if not X:
        raise TrainingInputError("X has no variation tables")
    return {str(k): as_frame(v, name=str(k)) for k, v in X.items()}


def feature_columns(
    frames: Mapping[str, pd.DataFrame], features: Sequence[str] | None, exclude: Sequence[str]
) -> list[str]:
    """The feature columns: ``features`` or every column of the first table except
    ``exclude``; each table must have all of them."""
    first = next(iter(frames.values()))
    cols = (
        list(features)
        if features is not None
        else [str(c) for c in first.columns if c not in exclude]
    )
    if not cols:
        raise TrainingInputError("no feature columns (all columns are label/weight columns)")
    for name, frame in frames.items():
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise TrainingInputError(
                f"table {name!r} lacks feature column(s) {', '.join(map(repr, missing))}"
            )
    return cols


def labels_and_weights(
    frames: Mapping[str, pd.DataFrame],
    y: Any,
    sample_weight: Any,
    label_column: str,
    weight_column: str | None,
) -> tuple[dict[str, NDArray], dict[str, NDArray]]:
    """Per-variation labels and weights: from mappings ``y``/``sample_weight`` if given,
    else from the label and weight columns (unit weights when ``weight_column`` is None).

    A ``weight_column`` that a table lacks is an error: with ``features=None`` every other
    column is a feature, so a misnamed weight column would otherwise train unweighted, on
    the real weights as an input."""
    ys, ws = {}, {}
    for name, frame in frames.items():
        n = len(frame)
        if y is None:
            if label_column not in frame.columns:
                raise TrainingInputError(
                    f"table {name!r} has no label column {label_column!r} and no y was given"
                )
            ys[name] = inputs.labels(frame[label_column].to_numpy(), n)
        else:
            if not isinstance(y, Mapping) or name not in y:
                raise TrainingInputError(f"y must be a mapping with labels for {name!r}")
            ys[name] = inputs.labels(y[name], n)
        if sample_weight is not None:
            if not isinstance(sample_weight, Mapping) or name not in sample_weight:
                raise TrainingInputError(
                    f"sample_weight must be a mapping with weights for {name!r}"
                )
            ws[name] = inputs.sample_weights(sample_weight[name], n)
        elif weight_column is not None:
            if weight_column not in frame.columns:
                raise TrainingInputError(
                    f"table {name!r} has no weight column {weight_column!r} "
                    f"(columns: {', '.join(map(str, frame.columns))}); name the weight "
                    "column, or pass weight_column=None for unit weights"
                )
            ws[name] = inputs.sample_weights(frame[weight_column].to_numpy(), n)
        else:
            ws[name] = np.ones(n)
    return ys, ws
