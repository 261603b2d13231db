"""Pure pieces of batch inference: SQL builders (run on in-memory DuckDB), chunk staging, ids."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dataplatform.serve.batch import (
    PREDICTIONS_DDL,
    BatchInferenceError,
    BatchScoreResult,
    insert_predictions_sql,
    make_batch_id,
    positive_class_index,
    prediction_table,
    qualified_table,
    quote_identifier,
    scored_counts_sql,
    selected_columns,
    split_invalid,
    unscored_rows_sql,
)

MART = "analytics.commit_features"
INPUTS = ["message_length", "files_changed"]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with the predictions DDL and a 10-row mart (keys k0..k9)."""
    c = duckdb.connect(":memory:")
    for statement in PREDICTIONS_DDL:
        c.execute(statement)
    c.execute(
        f"CREATE TABLE {MART} AS SELECT 'k' || i AS commit_key, 'o/r' AS repo, "
        "'sha' || i AS commit_sha, i * 10 AS message_length, i AS files_changed "
        "FROM range(10) t(i)"
    )
    return c


def _score(c: duckdb.DuckDBPyConnection, keys: list[str], version: int, name: str = "m") -> None:
    for key in keys:
        c.execute(
            "INSERT INTO analytics.commit_predictions VALUES "
            "(?, 'o/r', 'sha', ?, ?, NULL, 'production', 1, 0.9, now(), 'b')",
            [key, name, version],
        )


def _page(c: duckdb.DuckDBPyConnection, after: str | None, size: int, version: int) -> list[str]:
    sql = unscored_rows_sql(MART, INPUTS, after_key=after is not None)
    params = ([after] if after is not None else []) + ["m", version, size]
    return [row[0] for row in c.execute(sql, params).fetchall()]


def test_unscored_rows_excludes_only_this_versions_predictions(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _score(con, ["k1", "k3"], version=1)
    _score(con, ["k5"], version=2)
    _score(con, ["k7"], version=1, name="other-model")
    assert _page(con, None, 100, version=1) == [f"k{i}" for i in (0, 2, 4, 5, 6, 7, 8, 9)]
    assert _page(con, None, 100, version=2) == [f"k{i}" for i in (0, 1, 2, 3, 4, 6, 7, 8, 9)]


def test_keyset_pages_cover_every_unscored_row_once(con: duckdb.DuckDBPyConnection) -> None:
    _score(con, ["k4"], version=1)
    seen: list[str] = []
    after: str | None = None
    while True:
        page = _page(con, after, 3, version=1)
        if not page:
            break
        seen += page
        after = page[-1]
    assert seen == [f"k{i}" for i in (0, 1, 2, 3, 5, 6, 7, 8, 9)]


def test_unscored_rows_selects_ids_then_inputs(con: duckdb.DuckDBPyConnection) -> None:
    cursor = con.execute(unscored_rows_sql(MART, INPUTS, after_key=False), ["m", 1, 1])
    assert [d[0] for d in cursor.description] == ["commit_key", "repo", "commit_sha", *INPUTS]
    assert selected_columns(["repo", "a", "a"]) == ["commit_key", "repo", "commit_sha", "a"]


def test_scored_counts(con: duckdb.DuckDBPyConnection) -> None:
    _score(con, ["k1", "k2", "k99"], version=1)  # k99 is not in the mart: not counted
    assert con.execute(scored_counts_sql(MART), ["m", 1]).fetchone() == (10, 2)
    assert con.execute(scored_counts_sql(MART), ["m", 2]).fetchone() == (10, 0)


def test_insert_skips_existing_keys_and_stamps_rows(con: duckdb.DuckDBPyConnection) -> None:
    _score(con, ["k1"], version=3)
    staged = pa.table(
        {
            "commit_key": ["k1", "k2"],
            "repo": ["o/r", "o/r"],
            "commit_sha": ["sha1", "sha2"],
            "predicted_class": pa.array([0, 1], pa.int32()),
            "probability": [0.25, 0.75],
        }
    )
    con.register("staged", staged)
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    inserted = con.execute(
        insert_predictions_sql("staged"), ["m", 3, "v1.2.0", "production", at, "b-2"]
    ).fetchone()
    assert inserted == (1,)
    row = con.execute(
        "SELECT model_name, model_version, semver, alias, predicted_class, probability, "
        "scored_at, batch_id FROM analytics.commit_predictions WHERE commit_key = 'k2'"
    ).fetchone()
    assert row is not None
    assert row[:6] == ("m", 3, "v1.2.0", "production", 1, 0.75)
    assert row[6] == at
    assert row[7] == "b-2"
    assert insert_predictions_sql("s", "%s").count("%s") == 6
    assert "?" not in insert_predictions_sql("s", "%s")


@pytest.mark.parametrize("name", ["features", "a-b", 'x"y', "1abc", "", "a b"])
def test_odd_identifiers_are_refused(name: str) -> None:
    if name == "features":
        assert quote_identifier(name) == '"features"'
        return
    with pytest.raises(BatchInferenceError):
        quote_identifier(name)


@pytest.mark.parametrize("table", ["commit_features", "a.b.c", "analytics.x;drop", "a."])
def test_table_names_must_be_schema_dot_table(table: str) -> None:
    with pytest.raises(BatchInferenceError):
        qualified_table(table)


@pytest.mark.parametrize(
    ("classes", "expected"),
    [([0, 1], 1), ([1, 0], 0), ([False, True], 1), (np.array([0, 1]), 1), (["no", "yes"], 1)],
)
def test_positive_class_index(classes: list[object], expected: int) -> None:
    assert positive_class_index(classes) == expected


@pytest.mark.parametrize("classes", [[0], [0, 1, 2]])
def test_positive_class_index_refuses_non_binary(classes: list[int]) -> None:
    with pytest.raises(BatchInferenceError, match="binary"):
        positive_class_index(classes)


def test_batch_ids_are_time_prefixed_and_unique() -> None:
    at = datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)
    ids = {make_batch_id(at) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"predict-20250607T080910Z-[0-9a-f]{8}", i) for i in ids)


def test_split_invalid_separates_rows_with_null_inputs() -> None:
    frame = pd.DataFrame(
        {
            "commit_key": ["a", "b", "c", None],
            "repo": ["r"] * 4,
            "commit_sha": ["s"] * 4,
            "x": [1.0, None, 3.0, 4.0],
            "unused": [None] * 4,
        }
    )
    good, bad = split_invalid(frame, ["x"])
    assert list(good["commit_key"]) == ["a", "c"]
    assert len(bad) == 2


def test_prediction_table_types_and_null_probability() -> None:
    frame = pd.DataFrame({"commit_key": ["a", "b"], "repo": ["r", "r"], "commit_sha": ["1", "2"]})
    table = prediction_table(frame, np.array([1, 0], dtype="int64"), np.array([0.9, 0.1]))
    assert table.column("predicted_class").type == pa.int32()
    assert table.column("probability").to_pylist() == [0.9, 0.1]
    assert prediction_table(frame, np.array([1, 0]), None).column("probability").null_count == 2


def test_result_label_and_throughput() -> None:
    result = BatchScoreResult(
        batch_id="b",
        model_name="m",
        model_version=4,
        semver="v2.1.0",
        alias="production",
        source_table=MART,
        rows_scored=1000,
        rows_already_scored=0,
        rows_invalid=0,
        chunks=1,
        seconds=2.0,
        scored_at=datetime.now(UTC),
    )
    assert result.label == "v2.1.0-production"
    assert result.commits_per_minute == 30_000
    assert replace(result, semver=None).label == "version 4-production"


def test_dbt_pre_hook_creates_the_same_tables_as_python() -> None:
    """The dbt model creates the tables too (fresh warehouses): its DDL must not drift."""
    macros = Path(__file__).resolve().parents[3] / "dbt/macros"
    sql = (macros / "create_if_missing.sql").read_text()
    hooks = re.findall(r"\{% macro \w+_table_ddl\(\) -%\}(.*?)\{%- endmacro %\}", sql, flags=re.S)

    def norm(text: str) -> str:
        return " ".join(text.lower().split())

    assert [norm(h) for h in hooks] == [norm(s) for s in PREDICTIONS_DDL[1:]]
