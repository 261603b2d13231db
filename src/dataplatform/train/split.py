"""Train/test splits without leakage, and the content hash that versions a training frame."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd


class SplitError(ValueError):
    """The frame cannot be split as asked (empty side, missing column, key in both sides)."""


@dataclass(frozen=True, slots=True)
class Split:
    """Result of a split: disjoint train/test frames and what decided the boundary."""

    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: str  # human-readable boundary (ISO timestamp for time splits)
    params: dict[str, str]  # logged as MLflow params


class SplitStrategy(Protocol):
    """How a spec divides its mart into train and test."""

    def split(self, frame: pd.DataFrame, key: str) -> Split: ...


@dataclass(frozen=True, slots=True)
class TimeSplit:
    """The last `test_fraction` of time (by `column`) is test; train is strictly before it.

    The cutoff is the (1 - test_fraction) quantile of `column`. Rows exactly at the cutoff go to
    test, so commits sharing a second never straddle the boundary.
    """

    column: str = "committed_at"
    test_fraction: float = 0.2

    def split(self, frame: pd.DataFrame, key: str) -> Split:
        if not 0.0 < self.test_fraction < 1.0:
            raise SplitError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.column not in frame.columns:
            raise SplitError(f"time split needs column {self.column!r}")
        when = pd.to_datetime(frame[self.column], utc=True)
        if when.isna().any():
            raise SplitError(f"time split column {self.column!r} has nulls")
        # An observed timestamp (not an interpolated one): the first instant of the test window.
        cutoff = when.quantile(1.0 - self.test_fraction, interpolation="higher")
        is_test = when >= cutoff
        train, test = frame[~is_test], frame[is_test]
        _check_disjoint(train, test, key)
        return Split(
            train=train.reset_index(drop=True),
            test=test.reset_index(drop=True),
            cutoff=cutoff.isoformat(),
            params={
                "split_kind": "time",
                "split_column": self.column,
                "split_test_fraction": str(self.test_fraction),
                "split_cutoff": cutoff.isoformat(),
            },
        )


@dataclass(frozen=True, slots=True)
class ColumnSplit:
    """A split fixed by the data set itself (e.g. labels' `split == 'paper_test_random'`)."""

    column: str
    test_values: tuple[str, ...]

    def split(self, frame: pd.DataFrame, key: str) -> Split:
        if self.column not in frame.columns:
            raise SplitError(f"column split needs column {self.column!r}")
        is_test = frame[self.column].astype(str).isin(self.test_values)
        train, test = frame[~is_test], frame[is_test]
        _check_disjoint(train, test, key)
        boundary = f"{self.column} in {list(self.test_values)}"
        return Split(
            train=train.reset_index(drop=True),
            test=test.reset_index(drop=True),
            cutoff=boundary,
            params={"split_kind": "column", "split_column": self.column, "split_test": boundary},
        )


def _check_disjoint(train: pd.DataFrame, test: pd.DataFrame, key: str) -> None:
    if train.empty or test.empty:
        raise SplitError(f"split left an empty side: {len(train)} train / {len(test)} test rows")
    both = set(train[key]) & set(test[key])
    if both:
        raise SplitError(f"{len(both)} keys in both train and test, e.g. {sorted(both)[:3]}")


def dataset_version(frame: pd.DataFrame, key: str, columns: Sequence[str]) -> str:
    """sha256 hex of `frame[columns]` sorted by `key`, serialised canonically.

    Independent of row order, index and integer/bool width; any changed value changes it.
    Timestamps are serialised as UTC ISO strings, missing values as JSON null.
    """
    cols = [key, *[c for c in columns if c != key]]
    ordered = frame.loc[:, cols].sort_values(key, kind="stable")
    digest = hashlib.sha256()
    digest.update(json.dumps(cols).encode())
    for row in zip(*(_canonical(ordered[c]) for c in cols), strict=True):
        digest.update(b"\n")
        digest.update(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode())
    return digest.hexdigest()


def _canonical(column: pd.Series) -> list[Any]:
    if pd.api.types.is_datetime64_any_dtype(column):
        utc = pd.to_datetime(column, utc=True)
        return [None if pd.isna(v) else v.isoformat() for v in utc]
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_integer_dtype(column):
        return [int(v) for v in column]
    return [None if _is_missing(v) else v for v in column.tolist()]


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
