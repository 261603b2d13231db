"""The one place the serve stage gets its features from: the shared feature module.

Training builds `analytics.commit_features` with the same code (the parity test compares both with
the SQL mart), so online features cannot drift from offline ones. A model's input frame is the
columns its MLflow signature names, taken from those rows: the metadata features for
`commit-classifier`, the one e-mail-redacted `message` column for `corrective-classifier`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dataplatform import features

FEATURE_COLUMNS: list[str] = features.FEATURE_COLUMNS
INPUT_COLUMNS: list[str] = features.INPUT_COLUMNS
TEXT_COLUMN: str = features.TEXT_COLUMN
_FEATURES = frozenset(FEATURE_COLUMNS)
compute_features = features.compute_features
redact_emails = features.redact_emails

__all__ = [
    "FEATURE_COLUMNS",
    "INPUT_COLUMNS",
    "TEXT_COLUMN",
    "compute_features",
    "features",
    "input_frame",
    "model_frame",
    "model_matrix",
    "redact_emails",
]


def model_frame(rows: pd.DataFrame, input_columns: Sequence[str]) -> pd.DataFrame:
    """The columns a model's signature names, in its order (KeyError names what is missing)."""
    missing = [c for c in input_columns if c not in rows.columns]
    if missing:
        raise KeyError(f"input lacks the model's columns {missing}")
    return rows.loc[:, list(input_columns)]


def model_matrix(rows: pd.DataFrame, input_columns: Sequence[str]) -> np.ndarray | None:
    """The input columns as one float64 matrix when they are all integer features, else None.

    sklearn validates a DataFrame's column names at every step of a pipeline (~1 ms per call for
    the commit model); a matrix skips that. The caller checks the column order once against the
    estimator's `feature_names_in_`.
    """
    if not all(c in _FEATURES for c in input_columns):
        return None
    return np.column_stack([rows[c].to_numpy(dtype="float64") for c in input_columns])


def input_frame(columns: Mapping[str, Sequence[Any]], input_columns: Sequence[str]) -> pd.DataFrame:
    """A model's input frame from client-sent column values (OIP tensors).

    Feature columns become int64; the text column is redacted as the mart's `message` is, so a
    text model sees online what it saw in training.
    """
    data: dict[str, Any] = {}
    for name in input_columns:
        values = columns[name]
        if name == TEXT_COLUMN:
            data[name] = [redact_emails(str(v)) for v in values]
        elif name in FEATURE_COLUMNS:
            data[name] = pd.array(list(values), dtype="int64")
        else:
            data[name] = list(values)
    return pd.DataFrame(data)
