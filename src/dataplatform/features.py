"""Python twin of the SQL feature mart `analytics.commit_features`, and its e-mail redaction.

`compute_features` turns commit fields into the mart's rows: the key columns, the message (e-mail
addresses replaced by `<email>`, as dbt does), the label when the input has it, and
`FEATURE_COLUMNS` (all int64, never null). Every row goes through the same pure function
(`_commit_features`) whether training reads the whole mart or serving scores one commit, so the
values cannot drift apart; the DataFrame is built once at the end (pandas' per-call cost is paid
once, not per column). A parity test compares the values with the dbt model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import numpy as np
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
_OPTIONAL = {"author_utc_offset_minutes"}

# `[0-9]` and `[A-Z]`, not `\d`/`\w`: Python's classes match non-ASCII digits, SQL's do not.
ISSUE_REF_PATTERN = r"#[0-9]+|[A-Z][A-Z0-9]+-[0-9]+"
_ISSUE_REF = re.compile(ISSUE_REF_PATTERN)

# Same text as dbt/macros/email_pattern.sql (a parity test compares both, also on DuckDB):
# a run of non-delimiters, '@', another run. Delimiters: ASCII whitespace and <>()"',;:@`.
EMAIL_PART = "[^ \\t\\n\\r\\f\\v<>()\"',;:@`]+"
EMAIL_PATTERN = EMAIL_PART + "@" + EMAIL_PART
EMAIL_REPLACEMENT = "<email>"
_EMAIL = re.compile(EMAIL_PATTERN)

CommitInput: TypeAlias = pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any] | Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_SECOND = 1_000_000
_US_PER_MINUTE = 60 * _US_PER_SECOND
_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


def redact_emails(text: str) -> str:
    """`text` with every e-mail-like token replaced by `<email>` (as the dbt marts do).

    Redacting twice changes nothing. The mart's `message` column is redacted this way; features
    are computed on the original text.
    """
    return _EMAIL.sub(EMAIL_REPLACEMENT, text) if "@" in text else text


def compute_features(commits: CommitInput) -> pd.DataFrame:
    """Mart rows for `commits`: KEY_COLUMNS, `message`, FEATURE_COLUMNS (+ `is_merge_commit`).

    `commits` is a DataFrame with `INPUT_COLUMNS`, one mapping (a single commit at serving time),
    or a sequence of mappings / `CommitRecord`s. Timestamps may be aware (converted to UTC) or
    naive (taken as UTC). `message` comes out with e-mails redacted (`redact_emails`); features
    are computed on the original text, as in dbt. The label column is passed through when every
    input row has `is_merge_commit` or `parent_count`. Raises `ValueError` naming missing or
    null columns.
    """
    columns = _checked_columns(commits)
    repos = [str(v) for v in columns["repo"]]
    shas = [str(v) for v in columns["commit_sha"]]
    messages = [str(v) for v in columns["message"]]
    authored_us = _epoch_micros(columns["authored_at"])
    committed_us = _epoch_micros(columns["committed_at"])
    matrix = _feature_matrix(columns, messages, authored_us, committed_us)
    data: dict[str, Any] = {
        "commit_key": [f"{r}:{s}" for r, s in zip(repos, shas, strict=True)],
        "repo": repos,
        "commit_sha": shas,
        "authored_at": _utc_column(authored_us),
        "committed_at": _utc_column(committed_us),
        "message": [redact_emails(m) for m in messages],
    }
    for i, name in enumerate(FEATURE_COLUMNS):
        data[name] = matrix[:, i]
    label = _label(columns)
    if label is not None:
        data[LABEL_COLUMN] = np.array(label, dtype=bool)
    return pd.DataFrame(data, copy=False)


def feature_matrix(commits: CommitInput) -> np.ndarray:
    """FEATURE_COLUMNS of `commits` as one int64 matrix, without the rest of the mart row.

    The same checks and the same per-commit function as `compute_features` (which calls this
    code), minus pandas: what real-time scoring needs for one commit.
    """
    columns = _checked_columns(commits)
    messages = [str(v) for v in columns["message"]]
    authored_us = _epoch_micros(columns["authored_at"])
    return _feature_matrix(columns, messages, authored_us, _epoch_micros(columns["committed_at"]))


def _checked_columns(commits: CommitInput) -> dict[str, Column]:
    columns = _as_columns(commits)
    missing = [c for c in INPUT_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"compute_features: missing input columns {missing}")
    nulls = [c for c in INPUT_COLUMNS if c not in _OPTIONAL and _has_null(columns[c])]
    if nulls:
        raise ValueError(f"compute_features: null values in required columns {nulls}")
    return columns


def _feature_matrix(
    columns: Mapping[str, Column],
    messages: list[str],
    authored_us: list[int],
    committed_us: list[int],
) -> np.ndarray:
    rows = [
        _commit_features(*args)
        for args in zip(
            messages,
            columns["author_name"],
            authored_us,
            columns["author_utc_offset_minutes"],
            committed_us,
            columns["files_changed"],
            columns["lines_added"],
            columns["lines_deleted"],
            strict=True,
        )
    ]
    if not rows:
        return np.empty((0, len(FEATURE_COLUMNS)), dtype="int64")
    return np.array(rows, dtype="int64")


def feature_row(commit: Mapping[str, Any] | Any) -> dict[str, int]:
    """FEATURE_COLUMNS of one commit (mapping or `CommitRecord`), via `compute_features`."""
    values = compute_features([commit])[FEATURE_COLUMNS].to_numpy()[0].tolist()
    return dict(zip(FEATURE_COLUMNS, values, strict=True))


def _commit_features(
    message: str,
    author_name: Any,
    authored_at_us: int,
    author_offset_minutes: Any,
    committed_at_us: int,
    files_changed: Any,
    lines_added: Any,
    lines_deleted: Any,
) -> tuple[int, ...]:
    """One commit's FEATURE_COLUMNS, in order (the definitions of the SQL mart).

    Timestamps are microseconds since the Unix epoch (UTC): integer arithmetic is exact and far
    cheaper than datetime objects.
    """
    lower_message = message.lower()
    author = str(author_name).lower()
    offset = 0 if _is_null(author_offset_minutes) else author_offset_minutes
    # The author's wall clock: UTC shifted by their own offset (UTC when it is unknown).
    local_s = (authored_at_us + round(float(offset) * _US_PER_MINUTE)) // _US_PER_SECOND
    # Everything before the first LF, then trailing CRs removed (CRLF messages; SQL rtrim).
    subject = message.split("\n", 1)[0].rstrip("\r")
    return (
        len(message),  # code points, as SQL char_length
        message.count("\n") + 1,
        len(subject),
        int(_ISSUE_REF.search(message) is not None),
        int("merge" in lower_message),
        local_s // 3600 % 24,
        (local_s // 86_400 + 3) % 7 + 1,  # ISO day of week: 1970-01-01 was a Thursday (4)
        int(files_changed),
        int(lines_added),
        int(lines_deleted),
        # Whole seconds, truncated toward zero (git timestamps are whole seconds anyway).
        _truncate_div(committed_at_us - authored_at_us, _US_PER_SECOND),
        int("[bot]" in author or author.endswith("bot")),
        int("Signed-off-by:" in message),
        int("co-authored-by:" in lower_message),
    )


Column: TypeAlias = list[Any] | pd.Series


def _as_columns(commits: CommitInput) -> dict[str, Column]:
    """Column name -> values. A frame's datetime columns stay Series (converted vectorised)."""
    if isinstance(commits, pd.DataFrame):
        return {
            str(c): commits[c] if commits[c].dtype.kind == "M" else commits[c].tolist()
            for c in commits.columns
        }
    if isinstance(commits, Mapping):
        return {k: [v] for k, v in commits.items()}
    rows = [_as_mapping(c) for c in commits]
    if not rows:
        return {c: [] for c in INPUT_COLUMNS}
    keys = dict.fromkeys(k for row in rows for k in row)
    return {key: [row.get(key) for row in rows] for key in keys}


def _as_mapping(commit: Any) -> Mapping[str, Any]:
    if isinstance(commit, Mapping):
        return commit
    if is_dataclass(commit) and not isinstance(commit, type):
        return asdict(commit)
    raise TypeError(f"compute_features: cannot read a commit from {type(commit).__name__}")


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _has_null(values: Column) -> bool:
    if isinstance(values, pd.Series):
        return bool(values.isna().any())
    return any(map(_is_null, values))


def _epoch_micros(values: Column) -> list[int]:
    """Microseconds since the epoch of each timestamp (aware: its instant; naive: UTC)."""
    if isinstance(values, pd.Series):  # a datetime64 column: one vectorised conversion
        if values.dt.tz is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        micros: list[int] = values.astype("datetime64[us]").astype("int64").tolist()
        return micros
    return [_micros(v) for v in values]


def _micros(value: Any) -> int:
    if not isinstance(value, datetime):  # strings, numpy datetime64: pandas' parser, as before
        value = pd.Timestamp(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US_PER_SECOND + delta.microseconds


def _utc_column(micros: list[int]) -> pd.DatetimeIndex:
    """datetime64[ns, UTC] values of epoch microseconds, built in one vectorised step."""
    ns = np.array(micros, dtype="int64") * 1000
    return pd.DatetimeIndex(ns.view("datetime64[ns]"), dtype=_UTC_NS)


def _truncate_div(value: int, divisor: int) -> int:
    magnitude = abs(value) // divisor
    return magnitude if value >= 0 else -magnitude


def _label(columns: Mapping[str, Column]) -> list[bool] | None:
    labels = columns.get(LABEL_COLUMN)
    if labels is not None and not _has_null(labels):
        return [bool(v) for v in labels]
    parents = columns.get("parent_count")
    if parents is not None and not _has_null(parents):
        return [int(v) > 1 for v in parents]
    return None
