"""Data quality with pandera: null rate and schema violations per column.

Two schemas: `RAW_COMMITS` (the rows of one ingest batch in ``raw.commits``) and `COMMIT_FEATURES`
(the feature mart ``analytics.commit_features``). `check_frame` validates lazily (every failure
collected) and reduces pandera's failure cases to one `ColumnQuality` per column: the share of
rows that are null, and the share of rows that break a rule (type, range, pattern, nullability).
Above `alert_rate` (design: 1%) the column's check is an alert: nulls count for every column the
contract requires (a null there is a violation); where the contract allows nulls (e.g.
``committer_email``, absent from the shipped datasets) the null rate is reported, not alerted.

`check_ingest_batches(warehouse, batch_ids)` is what the pipeline calls after `load`;
`check_feature_mart(warehouse)` after `transform`. Both only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from dataplatform.monitor.policy import CheckResult, Severity, worst

if TYPE_CHECKING:
    from dataplatform.adapters.warehouse import Warehouse

QUALITY_ALERT_RATE = 0.01  # design 4.3: more than 1% nulls or violations in a column alerts
INT32_MAX = 2**31 - 1
_SHA = r"^[0-9a-f]{40}$"
_REPO = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


def _count(nullable: bool = False, minimum: int = 0) -> pa.Column:
    return pa.Column("int64", pa.Check.in_range(minimum, INT32_MAX), nullable=nullable, coerce=True)


def _flag() -> pa.Column:
    return pa.Column("int64", pa.Check.isin([0, 1]), coerce=True)


def _text(pattern: str | None = None, nullable: bool = False) -> pa.Column:
    checks = [pa.Check.str_matches(pattern)] if pattern else []
    return pa.Column(str, checks, nullable=nullable)


def _timestamp() -> pa.Column:
    return pa.Column("datetime64[ns, UTC]", coerce=True)


def _offset() -> pa.Column:
    return pa.Column("Int64", pa.Check.in_range(-1439, 1439), nullable=True, coerce=True)


# Rows of one ingest batch as loaded in raw.commits (nullable exactly where the DDL allows).
RAW_COMMITS = pa.DataFrameSchema(
    {
        "repo": _text(_REPO),
        "commit_sha": _text(_SHA),
        "parent_count": _count(),
        "author_name": _text(),
        "author_email": _text(),
        "committer_name": _text(nullable=True),
        "committer_email": _text(nullable=True),
        "authored_at": _timestamp(),
        "author_utc_offset_minutes": _offset(),
        "committed_at": _timestamp(),
        "committer_utc_offset_minutes": _offset(),
        "message": _text(),
        "files_changed": _count(),
        "lines_added": _count(),
        "lines_deleted": _count(),
        "author_email_hash": _text(r"^[0-9a-f]{64}$"),
        "batch_id": _text(),
    },
    name="raw.commits",
    strict=False,
)

# The feature mart's contract (docs/HELPERS-CONTEXT.md): integer features, no nulls.
COMMIT_FEATURES = pa.DataFrameSchema(
    {
        "commit_key": pa.Column(str, unique=True),
        "repo": _text(_REPO),
        "commit_sha": _text(_SHA),
        "authored_at": _timestamp(),
        "committed_at": _timestamp(),
        "is_merge_commit": pa.Column("bool", coerce=True),
        "message_length": _count(),
        "message_line_count": _count(minimum=1),
        "subject_length": _count(),
        "has_issue_ref": _flag(),
        "mentions_merge": _flag(),
        "hour_of_day": pa.Column("int64", pa.Check.in_range(0, 23), coerce=True),
        "day_of_week": pa.Column("int64", pa.Check.in_range(1, 7), coerce=True),
        "files_changed": _count(),
        "lines_added": _count(),
        "lines_deleted": _count(),
        "commit_lag_seconds": pa.Column("int64", coerce=True),
        "is_bot_author": _flag(),
        "has_signed_off": _flag(),
        "has_co_author": _flag(),
    },
    name="analytics.commit_features",
    strict=False,
)


@dataclass(frozen=True, slots=True)
class ColumnQuality:
    """Null and violation shares of one column."""

    column: str
    nullable: bool  # the contract allows nulls here
    null_rate: float
    violation_rate: float  # rows breaking any rule of the column (nulls where not allowed too)
    failed_checks: tuple[str, ...]
    examples: tuple[str, ...]  # a few failing values, for the reader

    def severity(self, alert_rate: float = QUALITY_ALERT_RATE) -> Severity:
        """'alert' when violations (nulls included where not allowed) exceed `alert_rate`."""
        nulls = 0.0 if self.nullable else self.null_rate
        return "alert" if max(nulls, self.violation_rate) > alert_rate else "ok"


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Quality of one data set (a batch or the mart)."""

    dataset: str  # e.g. "raw.commits batch <id>" or "analytics.commit_features"
    rows: int
    columns: tuple[ColumnQuality, ...]
    frame_errors: tuple[str, ...] = ()  # failures not tied to a column (e.g. missing column)
    alert_rate: float = QUALITY_ALERT_RATE

    @property
    def severity(self) -> Severity:
        """Worst column severity; any frame-level error is an alert."""
        column_levels = [c.severity(self.alert_rate) for c in self.columns]
        return worst([*column_levels, *(["alert"] if self.frame_errors else [])])

    def checks(self, prefix: str = "quality") -> list[CheckResult]:
        """One `CheckResult` per column (value = the larger share) plus one for frame errors."""
        out = [
            CheckResult(
                name=f"{prefix}:{c.column}",
                kind="quality",
                severity=c.severity(self.alert_rate),
                value=max(0.0 if c.nullable else c.null_rate, c.violation_rate),
                threshold=self.alert_rate,
                detail=(
                    f"{self.dataset}: nulls {c.null_rate:.2%}"
                    + (" (allowed)" if c.nullable else "")
                    + f", violations {c.violation_rate:.2%}"
                    + (f" ({', '.join(c.failed_checks)})" if c.failed_checks else "")
                    + (f", e.g. {', '.join(c.examples)}" if c.examples else "")
                ),
            )
            for c in self.columns
        ]
        if self.frame_errors:
            out.append(
                CheckResult(
                    name=f"{prefix}:schema",
                    kind="quality",
                    severity="alert",
                    value=float(len(self.frame_errors)),
                    threshold=0.0,
                    detail=f"{self.dataset}: " + "; ".join(self.frame_errors),
                )
            )
        return out


def check_frame(
    frame: pd.DataFrame,
    schema: pa.DataFrameSchema,
    *,
    dataset: str | None = None,
    alert_rate: float = QUALITY_ALERT_RATE,
) -> QualityReport:
    """Validate `frame` against `schema` (lazily) and summarise per column."""
    rows = len(frame)
    failures = pd.DataFrame(columns=["column", "check", "index", "failure_case"])
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        failures = exc.failure_cases
    frame_errors: list[str] = []
    columns: list[ColumnQuality] = []
    for name in schema.columns:
        if name not in frame.columns:
            frame_errors.append(f"column {name!r} missing")
            continue
        null_rate = float(frame[name].isna().mean()) if rows else 0.0
        mine = failures[failures["column"] == name]
        row_index = mine["index"].dropna()
        # Dtype failures carry no row index: the whole column is unusable.
        whole_column = bool(len(mine)) and row_index.empty
        violation_rate = 1.0 if whole_column else (row_index.nunique() / rows if rows else 0.0)
        examples = tuple(dict.fromkeys(str(v)[:40] for v in mine["failure_case"].head(20)))[:3]
        columns.append(
            ColumnQuality(
                column=name,
                nullable=bool(schema.columns[name].nullable),
                null_rate=null_rate,
                violation_rate=float(violation_rate),
                failed_checks=tuple(sorted({str(c) for c in mine["check"]})),
                examples=examples,
            )
        )
    return QualityReport(
        dataset=dataset or str(schema.name),
        rows=rows,
        columns=tuple(columns),
        frame_errors=tuple(frame_errors),
        alert_rate=alert_rate,
    )


def check_ingest_batches(
    warehouse: Warehouse, batch_ids: Sequence[str], *, alert_rate: float = QUALITY_ALERT_RATE
) -> list[QualityReport]:
    """Quality of the rows each batch brought into raw.commits (one report per batch)."""
    columns = ", ".join(RAW_COMMITS.columns)
    reports = []
    for batch_id in batch_ids:
        frame = warehouse.query_df(
            f"SELECT {columns} FROM raw.commits WHERE batch_id = ?", [batch_id]
        )
        reports.append(
            check_frame(
                frame, RAW_COMMITS, dataset=f"raw.commits batch {batch_id}", alert_rate=alert_rate
            )
        )
    return reports


def check_feature_mart(
    warehouse: Warehouse,
    *,
    table: str = "analytics.commit_features",
    alert_rate: float = QUALITY_ALERT_RATE,
) -> QualityReport:
    """Quality of the whole feature mart (every column of the contract)."""
    columns = ", ".join(COMMIT_FEATURES.columns)
    frame = warehouse.query_df(f"SELECT {columns} FROM {table}")
    return check_frame(frame, COMMIT_FEATURES, dataset=table, alert_rate=alert_rate)
