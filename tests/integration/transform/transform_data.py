"""Data and checks for the dbt integration tests (imported by conftest.py and the tests).

The rows are built here from the commit datasets (not by the store stage, which is tested on its
own): all of encode/httpx and a slice of psf/requests around commit 5e6ecdad (malformed offset
`+518:00` -> offset NULL, instant = local time - 518 h). Hash columns are sha256 hex of the
e-mail (any 64-hex value will do for dbt), batch ids and load times are constants.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

DATASETS = Path(__file__).resolve().parents[3] / "data" / "commits"
MALFORMED_SHA = "5e6ecdad9f69b1ff789a17733b8edc6fd7091bd8"
REQUESTS_SLICE = 300  # psf/requests rows, half before and half after MALFORMED_SHA
LOADED_AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

_ISO = re.compile(r"(?P<local>.+T\d\d:\d\d:\d\d)(?P<sign>[+-])(?P<h>\d+):(?P<m>\d\d)\Z")


def parse_git_iso(value: str) -> tuple[datetime, int | None]:
    """`%aI` text -> (UTC instant, offset minutes or None when the offset is not a real one)."""
    match = _ISO.match(value)
    assert match, value
    minutes = int(match["h"]) * 60 + int(match["m"])
    offset = -minutes if match["sign"] == "-" else minutes
    instant = datetime.fromisoformat(match["local"]).replace(tzinfo=UTC) - timedelta(minutes=offset)
    # git applied the bogus offset (+518 h) when rendering: undoing it gives the true instant.
    return instant, (offset if int(match["h"]) <= 23 else None)


def raw_row(record: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """One dataset line (parsed JSON) -> the columns of raw.commits."""
    authored_at, author_offset = parse_git_iso(record["author_time"])
    committed_at, committer_offset = parse_git_iso(record["committer_time"])
    return {
        "repo": record["repo"],
        "commit_sha": record["sha"],
        "parent_shas": None,
        "parent_count": record["parent_count"],
        "author_name": record["author_name"],
        "author_email": record["author_email"],
        "committer_name": None,
        "committer_email": None,
        "authored_at": authored_at,
        "author_utc_offset_minutes": author_offset,
        "committed_at": committed_at,
        "committer_utc_offset_minutes": committer_offset,
        "message": record["message"],
        "files_changed": record["files_changed"],
        "lines_added": record["insertions"],
        "lines_deleted": record["deletions"],
        "author_email_hash": hashlib.sha256(record["author_email"].encode()).hexdigest(),
        "committer_email_hash": None,
        "batch_id": batch_id,
        "loaded_at": LOADED_AT,
    }


def read_dataset(name: str) -> list[dict[str, Any]]:
    text = gzip.decompress((DATASETS / name).read_bytes()).decode("utf-8")
    return [json.loads(line) for line in text.split("\n") if line]


def arrow_table(rows: list[dict[str, Any]]) -> pa.Table:
    fields = []
    for name, value in rows[0].items():
        if name == "parent_shas":
            fields.append(pa.field(name, pa.list_(pa.string())))
        elif isinstance(value, datetime) or name.endswith("_at"):
            fields.append(pa.field(name, pa.timestamp("us", tz="UTC")))
        elif name in {"position", "row_count", "rows_inserted", "quarantined_count"}:
            fields.append(pa.field(name, pa.int64()))
        elif name in {
            "parent_count",
            "files_changed",
            "lines_added",
            "lines_deleted",
            "author_utc_offset_minutes",
            "committer_utc_offset_minutes",
        }:
            fields.append(pa.field(name, pa.int32()))
        else:
            fields.append(pa.field(name, pa.string()))
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


# --- what a successful build must have produced (shared by the DuckDB and PostgreSQL tests) ---

Query = Callable[[str], list[tuple[Any, ...]]]

COMMIT_FEATURES_COLUMNS = [
    "commit_key",
    "repo",
    "commit_sha",
    "authored_at",
    "committed_at",
    "message",
    "is_merge_commit",
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
FEATURES = COMMIT_FEATURES_COLUMNS[7:]

# Worked out by hand from the dataset lines (see the comments), not by running any feature code.
HAND_FEATURES: dict[str, dict[str, int]] = {
    # "Expose `FunctionAuth` in `__all__` (#3699)\n\nCo-authored-by: Kar Petrosyan <...>\n
    # Co-authored-by: ..." — subject 42 chars, trailers 78 + 57, 3 LFs: 42+1+1+78+1+57 = 180.
    # Authored 2025-12-10T08:58:48-06:00 (a Wednesday, 08 h local) = 14:58:48Z, committed
    # 18:58:48+04:00 = 14:58:48Z: lag 0.
    "encode/httpx:ae1b9f66238f75ced3ced5e4485408435de10768": {
        "message_length": 180,
        "message_line_count": 4,
        "subject_length": 42,
        "has_issue_ref": 1,
        "mentions_merge": 0,
        "hour_of_day": 8,
        "day_of_week": 3,
        "files_changed": 3,
        "lines_added": 6,
        "lines_deleted": 1,
        "commit_lag_seconds": 0,
        "is_bot_author": 0,
        "has_signed_off": 0,
        "has_co_author": 1,
    },
    # "Use chained comparison in status codes for error and success\n": 60 + LF. Authored
    # 2019-08-17T14:25:34+05:45 (Saturday, 14 h local) = 08:40:34Z; committed
    # 09:07:57-05:00 = 14:07:57Z: lag 5 h 27 min 23 s = 19643 s.
    "encode/httpx:23f11aaa8db466fd78eea2a812e35b008017d617": {
        "message_length": 61,
        "message_line_count": 2,
        "subject_length": 60,
        "has_issue_ref": 0,
        "mentions_merge": 0,
        "hour_of_day": 14,
        "day_of_week": 6,
        "files_changed": 1,
        "lines_added": 2,
        "lines_deleted": 2,
        "commit_lag_seconds": 19643,
        "is_bot_author": 0,
        "has_signed_off": 0,
        "has_co_author": 0,
    },
    # Malformed offset +518:00: offset NULL, so UTC: 2011-08-17T12:38:50Z, a Wednesday, 12 h.
    # "Typo in documentation\r\n\r\n" + a 72-char line: 21 + 4 + 72 = 97; CR stripped: 21.
    "psf/requests:5e6ecdad9f69b1ff789a17733b8edc6fd7091bd8": {
        "message_length": 97,
        "message_line_count": 3,
        "subject_length": 21,
        "has_issue_ref": 0,
        "mentions_merge": 0,
        "hour_of_day": 12,
        "day_of_week": 3,
        "files_changed": 1,
        "lines_added": 1,
        "lines_deleted": 1,
        "commit_lag_seconds": 0,
        "is_bot_author": 0,
        "has_signed_off": 0,
        "has_co_author": 0,
    },
}
# dependabot[bot], "Bump ... (#3329)\n\nSigned-off-by: ...\r\nCo-authored-by: ...".
BOT_COMMIT_KEY = "encode/httpx:1bf1fc0ea8417c8e539914aeafdb48f15591ba75"

# Same e-mail shape as dbt/macros/email_pattern.sql.
_EMAIL_PART = "[^ \\t\\n\\r\\f\\v<>()\"',;:@`]+"
EMAIL_SHAPED = re.compile(_EMAIL_PART + "@" + _EMAIL_PART)


def feature_rows(query: Query) -> dict[str, tuple[Any, ...]]:
    """commit_key -> (message, is_merge_commit, *FEATURES) of analytics.commit_features."""
    columns = ", ".join(["commit_key", "message", "is_merge_commit", *FEATURES])
    return {
        row[0]: tuple(row[1:]) for row in query(f"select {columns} from analytics.commit_features")
    }


def check_marts(query: Query, raw_commits: list[dict[str, Any]]) -> None:
    """Assert what every backend's build must give on the `raw_commits` fixture data."""
    n = len(raw_commits)
    assert query("select count(*) from analytics.fct_commits") == [(n,)]
    assert query("select count(*) from analytics.commit_features") == [(n,)]
    columns = query(
        "select column_name from information_schema.columns where table_schema = 'analytics' "
        "and table_name = 'commit_features' order by ordinal_position"
    )
    assert [c for (c,) in columns] == COMMIT_FEATURES_COLUMNS

    repos = query(
        "select repo, commit_count, merge_commit_count, latest_batch_id, quarantined_record_count"
        " from analytics.dim_repositories order by repo"
    )
    expected_repos = []
    for repo in sorted({r["repo"] for r in raw_commits}):
        mine = [r for r in raw_commits if r["repo"] == repo]
        merges = sum(1 for r in mine if r["parent_count"] > 1)
        quarantined = 1 if repo == "encode/httpx" else 0
        expected_repos.append((repo, len(mine), merges, mine[0]["batch_id"], quarantined))
    assert repos == expected_repos

    rows = feature_rows(query)
    names = ["message", "is_merge_commit", *FEATURES]
    for key, expected in HAND_FEATURES.items():
        got = dict(zip(names, rows[key], strict=True))
        assert {f: got[f] for f in FEATURES} == expected, key
    bot = dict(zip(names, rows[BOT_COMMIT_KEY], strict=True))
    assert (bot["is_bot_author"], bot["has_signed_off"], bot["has_co_author"]) == (1, 1, 1)
    assert bot["is_merge_commit"] is False
    assert all(value is not None for row in rows.values() for value in row)
    # features come from the original message; the exposed one has its e-mails redacted
    assert rows["encode/httpx:ae1b9f66238f75ced3ced5e4485408435de10768"][0].endswith(
        "Co-authored-by: Kar Petrosyan <<email>>"
    )
    assert query(
        "select author_utc_offset_minutes, hour_of_day from analytics.fct_commits "
        "join analytics.commit_features using (commit_key) "
        "where commit_key = 'psf/requests:5e6ecdad9f69b1ff789a17733b8edc6fd7091bd8'"
    ) == [(None, 12)]
    check_no_email(query, raw_commits)


def check_no_email(query: Query, raw_commits: list[dict[str, Any]]) -> None:
    """No e-mail (raw value or e-mail-shaped text) and no name column in dbt-built relations."""
    emails = {r["author_email"] for r in raw_commits if "@" in r["author_email"]}
    columns = query(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_schema in ('analytics', 'staging', 'intermediate') "
        "order by table_schema, table_name, ordinal_position"
    )
    assert columns
    for schema, table, column, data_type in columns:
        assert "email" not in column or column.endswith("_hash"), (table, column)
        # personal names never leave raw (model_name, source names etc. are not personal)
        assert column not in {"author_name", "committer_name"}, (table, column)
        if schema == "staging" and table == "stg_raw__commits" and column == "message":
            continue  # staging keeps the original message (features need it); marts redact it
        if data_type.lower() not in {"text", "varchar", "character varying"}:
            continue
        values = query(f'select "{column}" from {schema}.{table} where "{column}" like \'%@%\'')
        for (value,) in values:
            assert not EMAIL_SHAPED.search(value), (schema, table, column, value)
            assert not any(email in value for email in emails), (schema, table, column)
