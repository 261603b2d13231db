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
_INDEX = {name: i for i, name in enumerate(FEATURE_COLUMNS)}
compute_features = features.compute_features
feature_matrix = features.feature_matrix
redact_emails = features.redact_emails

__all__ = [
    "FEATURE_COLUMNS",
    "INPUT_COLUMNS",
    "TEXT_COLUMN",
    "FeatureRows",
    "compute_features",
    "feature_index",
    "feature_matrix",
    "features",
    "input_frame",
    "model_frame",
    "model_matrix",
    "redact_emails",
]


def feature_index(input_columns: Sequence[str]) -> np.ndarray | None:
    """Positions of `input_columns` in FEATURE_COLUMNS, or None when one is not a feature."""
    if not input_columns or not all(c in _FEATURES for c in input_columns):
        return None
    return np.array([_INDEX[c] for c in input_columns], dtype=np.intp)


class FeatureRows:
    """The rows one or more requests are scored on.

    Either the shared feature matrix (`feature_matrix`: FEATURE_COLUMNS, int64) with each row's
    repo and sha, or a frame (mart rows from `compute_features`, or client-sent model inputs).
    The matrix form never touches pandas on the request path; `frame` builds one on demand
    (repo, commit_sha and the features) for callers that want a DataFrame.
    """

    __slots__ = ("_frame", "matrix", "repos", "shas")

    def __init__(
        self,
        *,
        matrix: np.ndarray | None = None,
        repos: Sequence[Any] = (),
        shas: Sequence[Any] = (),
        frame: pd.DataFrame | None = None,
    ) -> None:
        if (matrix is None) == (frame is None):
            raise ValueError("FeatureRows needs a matrix or a frame")
        self.matrix, self.repos, self.shas = matrix, repos, shas
        self._frame = frame

    @classmethod
    def of_commits(cls, records: Sequence[Mapping[str, Any]]) -> FeatureRows:
        """The shared features of commit records (ValueError etc. for unusable input)."""
        return cls(
            matrix=feature_matrix(records),
            repos=[r["repo"] for r in records],
            shas=[r["commit_sha"] for r in records],
        )

    def __len__(self) -> int:
        return len(self.matrix) if self.matrix is not None else len(self.frame)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (built once from the matrix when needed)."""
        if self._frame is None:
            assert self.matrix is not None
            data: dict[str, Any] = {"repo": list(self.repos), "commit_sha": list(self.shas)}
            for i, name in enumerate(FEATURE_COLUMNS):
                data[name] = self.matrix[:, i]
            self._frame = pd.DataFrame(data)
        return self._frame

    def slice(self, start: int, end: int) -> FeatureRows:
        """Rows `start:end` (a view of the matrix; a re-indexed copy of a frame)."""
        if self.matrix is not None:
            return FeatureRows(
                matrix=self.matrix[start:end], repos=self.repos[start:end],
                shas=self.shas[start:end],
            )  # fmt: skip
        if start == 0 and end == len(self.frame):
            return self
        return FeatureRows(frame=self.frame.iloc[start:end].reset_index(drop=True))

    @staticmethod
    def concat(parts: Sequence[FeatureRows]) -> FeatureRows:
        """All `parts` in order, as one (a matrix when every part is one)."""
        if len(parts) == 1:
            return parts[0]
        if all(p.matrix is not None for p in parts):
            return FeatureRows(
                matrix=np.concatenate([p.matrix for p in parts if p.matrix is not None]),
                repos=[r for p in parts for r in p.repos],
                shas=[s for p in parts for s in p.shas],
            )
        return FeatureRows(frame=pd.concat([p.frame for p in parts], ignore_index=True))

    def model_input(
        self, input_columns: Sequence[str], index: np.ndarray | None
    ) -> np.ndarray | pd.DataFrame:
        """What a model takes: a float64 matrix when `index` (its `feature_index`) is given."""
        if index is not None:
            if self.matrix is not None:
                return self.matrix[:, index].astype("float64")
            matrix = model_matrix(self.frame, input_columns)
            if matrix is not None:
                return matrix
        return model_frame(self.frame, input_columns)

    def records(self, columns: Sequence[str]) -> list[dict[str, Any]]:
        """Per row, the values of those `columns` the rows have (for the prediction log)."""
        if self.matrix is not None:
            wanted = [c for c in columns if c in _FEATURES]
            if not wanted:
                return [{} for _ in range(len(self))]
            values = self.matrix[:, [_INDEX[c] for c in wanted]].tolist()
            return [dict(zip(wanted, row, strict=True)) for row in values]
        frame = self.frame
        present = [c for c in columns if c in frame.columns]
        if not present:
            return [{} for _ in range(len(frame))]
        out: list[dict[str, Any]] = frame[present].to_dict("records")
        return out

    def keys(self) -> tuple[list[Any], list[Any]]:
        """(repo, commit_sha) of each row; None where the rows have none (feature tensors)."""
        if self.matrix is not None:
            return list(self.repos), list(self.shas)
        frame, n = self.frame, len(self.frame)
        repos = frame["repo"].tolist() if "repo" in frame.columns else [None] * n
        shas = frame["commit_sha"].tolist() if "commit_sha" in frame.columns else [None] * n
        return repos, shas


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
