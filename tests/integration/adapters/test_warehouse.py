"""Warehouse adapters against real DuckDB and PostgreSQL: SQL helpers, lifecycle, settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dataplatform.adapters.warehouse import (
    DuckDBWarehouse,
    PostgresWarehouse,
    Warehouse,
    open_warehouse,
)
from dataplatform.config import Settings


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "duckdb":
        return Settings(home=tmp_path, warehouse_backend="duckdb")
    db: dict[str, Any] = request.getfixturevalue("pg_db")
    return Settings(
        home=tmp_path,
        warehouse_backend="postgres",
        postgres_host=db["host"],
        postgres_port=db["port"],
        postgres_db=db["dbname"],
        postgres_user=db["user"],
        postgres_password=db["password"],
        postgres_sslmode="disable",
    )


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    with open_warehouse(settings) as wh:
        yield wh


def test_open_warehouse_picks_the_backend(settings: Settings, warehouse: Warehouse) -> None:
    expected = PostgresWarehouse if settings.warehouse_backend == "postgres" else DuckDBWarehouse
    assert isinstance(warehouse, expected)
    assert isinstance(warehouse, Warehouse)
    assert warehouse.backend == settings.warehouse_backend


def test_ensure_raw_schema_is_idempotent(warehouse: Warehouse) -> None:
    warehouse.ensure_raw_schema()
    warehouse.ensure_raw_schema()
    assert warehouse.table_row_counts() == {
        "raw.commit_labels": 0,
        "raw.commit_quarantine": 0,
        "raw.commits": 0,
        "raw.ingest_batches": 0,
    }
    assert warehouse.loaded_batch_ids() == set()


def test_execute_query_df_and_counts_of_views(warehouse: Warehouse) -> None:
    warehouse.ensure_raw_schema()
    warehouse.execute("CREATE TABLE analytics.t (id INTEGER, label TEXT)")
    warehouse.execute("INSERT INTO analytics.t VALUES (?, ?), (?, ?)", [1, "a?%", 2, "b"])
    warehouse.execute("CREATE VIEW analytics.v AS SELECT * FROM analytics.t WHERE id > 1")
    frame = warehouse.query_df(
        "SELECT id, label, '?' AS q FROM analytics.t WHERE label LIKE ? ORDER BY id", ["%"]
    )
    assert frame.to_dict("records") == [
        {"id": 1, "label": "a?%", "q": "?"},
        {"id": 2, "label": "b", "q": "?"},
    ]
    assert warehouse.query_df("SELECT count(*) AS n FROM analytics.t")["n"].tolist() == [2]
    counts = warehouse.table_row_counts()
    assert counts["analytics.t"] == 2
    assert counts["analytics.v"] == 1
    assert set(warehouse.table_row_counts(("analytics",))) == {"analytics.t", "analytics.v"}
    empty = warehouse.query_df("SELECT id FROM analytics.t WHERE id > ?", [99])
    assert list(empty.columns) == ["id"]
    assert empty.empty


def test_closed_warehouse_refuses_work(warehouse: Warehouse) -> None:
    warehouse.close()
    warehouse.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        warehouse.query_df("SELECT 1")


def test_duckdb_file_is_free_for_dbt_after_close(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "w.duckdb"
    with DuckDBWarehouse(path) as wh:
        wh.ensure_raw_schema()
    # another process/connection (dbt) can now open it read-write
    con = duckdb.connect(str(path))
    assert con.execute("SELECT count(*) FROM raw.commits").fetchone() == (0,)
    con.close()


def test_two_duckdb_warehouses_on_one_file_in_one_process(tmp_path: Path) -> None:
    # The API's readiness probe opens the warehouse while its prediction log writer may hold
    # it: DuckDB refuses a second instance attaching the same file, so they share one.
    path = tmp_path / "w.duckdb"
    first = DuckDBWarehouse(path, lock_wait_s=0)
    first.ensure_raw_schema()
    first.execute("CREATE TABLE raw.numbers (n INTEGER)")
    second = DuckDBWarehouse(tmp_path / "." / "w.duckdb", lock_wait_s=0)  # same file
    second.connection.begin()
    second.execute("INSERT INTO raw.numbers VALUES (1)")
    assert first.query_df("SELECT count(*) AS n FROM raw.numbers")["n"][0] == 0  # not committed
    second.connection.commit()
    assert first.query_df("SELECT count(*) AS n FROM raw.numbers")["n"][0] == 1
    first.close()
    second.execute("INSERT INTO raw.numbers VALUES (2)")  # the other one still works
    with pytest.raises(duckdb.Error):
        duckdb.connect(str(path))  # still attached here
    second.close()
    con = duckdb.connect(str(path))  # the last close lets go of the file (dbt can open it)
    assert con.execute("SELECT count(*) FROM raw.numbers").fetchone() == (2,)
    con.close()


def test_duckdb_warehouse_dropped_unclosed_lets_go_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    DuckDBWarehouse(path).ensure_raw_schema()  # never closed
    gc.collect()
    con = duckdb.connect(str(path))
    assert con.execute("SELECT count(*) FROM raw.commits").fetchone() == (0,)
    con.close()


@pytest.mark.parametrize("stem", ["warehouse", "temp", "main", "system", "memory", "my ware'house"])
def test_duckdb_file_of_any_name_is_attached_with_small_row_groups(
    tmp_path: Path, stem: str
) -> None:
    path = tmp_path / f"{stem}.duckdb"
    with DuckDBWarehouse(path) as wh:
        wh.ensure_raw_schema()
        con = wh.connection
        con.execute("CREATE TABLE raw.numbers AS SELECT range AS n FROM range(20000)")
        row_groups = con.execute(
            "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('raw.numbers')"
        ).fetchone()
        assert row_groups == (3,)  # 20,000 rows in groups of 8,192 (DuckDB's default: 1 group)
    con = duckdb.connect(str(path))  # a plain connection (dbt's) reads the same tables
    assert con.execute("SELECT count(*) FROM raw.numbers").fetchone() == (20_000,)
    con.close()
