"""Python twin of the SQL feature mart `analytics.commit_features`.

`compute_features` turns commit fields into the mart's rows: the key columns, the message, the
label when the input has it, and `FEATURE_COLUMNS` (all int64, never null). Training (whole mart)
and serving (one commit) go through the same vectorised code, so the values cannot drift apart;
a parity test compares them with the dbt model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, TypeAlias

import pandas as pd

FEATURE_COLUMNS: list[str] = [
    "message_length",
    "message_line_count",
    "subject_length",
    "has_issue_ref",
    "mentions_merge",
    "hour_of_day",
    "day_of_week",
    "files_changed",
    "lines_added",
    "lines_deleted",
    "commit_lag_seconds",
    "is_bot_author",
    "has_signed_off",
    "has_co_author",
]

# Columns of the mart that are not features (the label comes last and only when known).
KEY_COLUMNS: list[str] = ["commit_key", "repo", "commit_sha", "authored_at", "committed_at"]
TEXT_COLUMN = "message"
LABEL_COLUMN = "is_merge_commit"

INPUT_COLUMNS: list[str] = [
    "repo",
    "commit_sha",
    "message",
    "author_name",
    "authored_at",
    "author_utc_offset_minutes",
    "committed_at",
    "files_changed",
    "lines_added",
    "lines_deleted",
]

# `[0-9]` and `[A-Z]`, not `\d`/`\w`: Python's classes match non-ASCII digits, SQL's do not.
ISSUE_REF_PATTERN = r"#[0-9]+|[A-Z][A-Z0-9]+-[0-9]+"

CommitInput: TypeAlias = pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any] | Any]


def compute_features(commits: CommitInput) -> pd.DataFrame:
    """Mart rows for `commits`: KEY_COLUMNS, `message`, FEATURE_COLUMNS (+ `is_merge_commit`).

    `commits` is a DataFrame with `INPUT_COLUMNS`, one mapping (a single commit at serving time),
    or a sequence of mappings / `CommitRecord`s. Timestamps may be aware (converted to UTC) or
    naive (taken as UTC). The label column is passed through when the input has
    `is_merge_commit` or `parent_count`. Raises `ValueError` naming missing or null columns.
    """
    frame = _as_frame(commits)
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"compute_features: missing input columns {missing}")
    required = [c for c in INPUT_COLUMNS if c != "author_utc_offset_minutes"]
    nulls = [c for c in required if frame[c].isna().any()]
    if nulls:
        raise ValueError(f"compute_features: null values in required columns {nulls}")

    message = frame["message"].astype(str)
    lower_message = message.str.lower()
    author = frame["author_name"].astype(str).str.lower()
    authored_at = _utc(frame["authored_at"])
    committed_at = _utc(frame["committed_at"])
    offset = pd.to_numeric(frame["author_utc_offset_minutes"], errors="raise").fillna(0)
    local = authored_at + pd.to_timedelta(offset, unit="min")
    # Everything before the first LF, then trailing CRs removed (CRLF messages; SQL rtrim).
    subject = message.str.split("\n", n=1, regex=False).str[0].str.rstrip("\r")
    lag_us = (committed_at - authored_at) // pd.Timedelta(microseconds=1)

    out = pd.DataFrame(index=frame.index)
    out["commit_key"] = frame["repo"].astype(str) + ":" + frame["commit_sha"].astype(str)
    out["repo"] = frame["repo"].astype(str)
    out["commit_sha"] = frame["commit_sha"].astype(str)
    out["authored_at"] = authored_at
    out["committed_at"] = committed_at
    out["message"] = message
    features = {
        "message_length": message.str.len(),
        "message_line_count": message.str.count("\n") + 1,
        "subject_length": subject.str.len(),
        "has_issue_ref": message.str.contains(ISSUE_REF_PATTERN, regex=True),
        "mentions_merge": lower_message.str.contains("merge", regex=False),
        "hour_of_day": local.dt.hour,
        "day_of_week": local.dt.dayofweek + 1,  # pandas Monday=0 -> ISO Monday=1
        "files_changed": frame["files_changed"],
        "lines_added": frame["lines_added"],
        "lines_deleted": frame["lines_deleted"],
        # Whole seconds, truncated toward zero (git timestamps are whole seconds anyway).
        "commit_lag_seconds": _truncate_div(lag_us, 1_000_000),
        "is_bot_author": author.str.contains("[bot]", regex=False) | author.str.endswith("bot"),
        "has_signed_off": message.str.contains("Signed-off-by:", regex=False),
        "has_co_author": lower_message.str.contains("co-authored-by:", regex=False),
    }
    for name in FEATURE_COLUMNS:
        out[name] = pd.Series(features[name], index=frame.index).astype("int64")
    label = _label(frame)
    if label is not None:
        out[LABEL_COLUMN] = label
    return out.reset_index(drop=True)


def feature_row(commit: Mapping[str, Any] | Any) -> dict[str, int]:
    """FEATURE_COLUMNS of one commit (mapping or `CommitRecord`), via `compute_features`."""
    row = compute_features([commit]).iloc[0]
    return {name: int(row[name]) for name in FEATURE_COLUMNS}


def _as_frame(commits: CommitInput) -> pd.DataFrame:
    if isinstance(commits, pd.DataFrame):
        return commits
    if isinstance(commits, Mapping):
        return pd.DataFrame([dict(commits)])
    rows = [_as_mapping(c) for c in commits]
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else INPUT_COLUMNS)


def _as_mapping(commit: Any) -> dict[str, Any]:
    if isinstance(commit, Mapping):
        return dict(commit)
    if is_dataclass(commit) and not isinstance(commit, type):
        return asdict(commit)
    raise TypeError(f"compute_features: cannot read a commit from {type(commit).__name__}")


def _utc(column: pd.Series) -> pd.Series:
    values = pd.to_datetime(column)
    if values.dt.tz is None:
        return values.dt.tz_localize("UTC")
    return values.dt.tz_convert("UTC")


def _truncate_div(values: pd.Series, divisor: int) -> pd.Series:
    magnitude = values.abs() // divisor
    return magnitude.where(values >= 0, -magnitude)


def _label(frame: pd.DataFrame) -> pd.Series | None:
    if LABEL_COLUMN in frame.columns and frame[LABEL_COLUMN].notna().all():
        return frame[LABEL_COLUMN].astype(bool)
    if "parent_count" in frame.columns and frame["parent_count"].notna().all():
        return frame["parent_count"].astype("int64") > 1
    return None
