"""Fixtures: raw tables filled with real commits, for dbt runs on DuckDB and PostgreSQL.

The rows come from transform_data (built from the commit datasets, not by the store stage).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pydantic import SecretStr
from transform_data import (
    LOADED_AT,
    MALFORMED_SHA,
    REQUESTS_SLICE,
    arrow_table,
    raw_row,
    read_dataset,
)

from dataplatform.adapters.ddl import RAW_SCHEMA_DDL
from dataplatform.config import Settings, get_settings


@pytest.fixture(scope="session")
def raw_commits() -> list[dict[str, Any]]:
    """raw.commits rows: all of encode/httpx + 300 psf/requests rows around MALFORMED_SHA."""
    httpx = read_dataset("encode__httpx.jsonl.gz")
    requests = read_dataset("psf__requests.jsonl.gz")
    at = next(i for i, r in enumerate(requests) if r["sha"] == MALFORMED_SHA)
    half = REQUESTS_SLICE // 2
    rows = [raw_row(r, "batch-httpx-1") for r in httpx]
    rows += [raw_row(r, "batch-requests-1") for r in requests[at - half : at + half]]
    return rows


@pytest.fixture(scope="session")
def raw_batches(raw_commits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """raw.ingest_batches rows: one batch per repository."""
    counts: dict[tuple[str, str], int] = {}
    for row in raw_commits:
        key = (row["batch_id"], row["repo"])
        counts[key] = counts.get(key, 0) + 1
    return [
        {
            "batch_id": batch_id,
            "repo": repo,
            "source": f"dataset:{repo.replace('/', '__')}.jsonl.gz",
            "ingest_date": "2026-11-26",
            "row_count": n,
            "rows_inserted": n,
            "quarantined_count": 1 if repo == "encode/httpx" else 0,
            "checksum": hashlib.sha256(batch_id.encode()).hexdigest(),
            "watermark_json": json.dumps({"repo": repo}),
            "loaded_at": LOADED_AT,
        }
        for (batch_id, repo), n in sorted(counts.items())
    ]


@pytest.fixture(scope="session")
def raw_quarantine() -> list[dict[str, Any]]:
    """raw.commit_quarantine rows: one rejected record whose payload holds an e-mail."""
    payload = json.dumps({"sha": "not-a-sha", "author_email": "leak.check@example.org"})
    return [
        {
            "batch_id": "batch-httpx-1",
            "source": "dataset:encode__httpx.jsonl.gz",
            "position": 99999,
            "reason": "sha is not 40 hex characters",
            "raw": payload,
            "repo": "encode/httpx",
            "commit_sha": None,
            "loaded_at": LOADED_AT,
        }
    ]


@pytest.fixture(scope="session")
def load_raw_duckdb(
    raw_commits: list[dict[str, Any]],
    raw_batches: list[dict[str, Any]],
    raw_quarantine: list[dict[str, Any]],
) -> Callable[[Path], None]:
    """Create the raw schema in a DuckDB file and fill it; the connection is closed after."""

    def load(path: Path) -> None:
        con = duckdb.connect(str(path))
        try:
            for ddl in RAW_SCHEMA_DDL:
                con.execute(ddl)
            for table, rows in (
                ("commits", raw_commits),
                ("ingest_batches", raw_batches),
                ("commit_quarantine", raw_quarantine),
            ):
                arrow_rows = arrow_table(rows)  # noqa: F841 - read by DuckDB's replacement scan
                columns = ", ".join(rows[0])
                con.execute(f"INSERT INTO raw.{table} ({columns}) SELECT {columns} FROM arrow_rows")
        finally:
            con.close()

    return load


@pytest.fixture(scope="session")
def load_raw_postgres(
    raw_commits: list[dict[str, Any]],
    raw_batches: list[dict[str, Any]],
    raw_quarantine: list[dict[str, Any]],
) -> Callable[[str], None]:
    """Create the raw schema in a PostgreSQL database (conninfo) and fill it with COPY."""

    def load(conninfo: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(conninfo) as con:
            for ddl in RAW_SCHEMA_DDL:
                con.execute(ddl)
            for table, rows in (
                ("commits", raw_commits),
                ("ingest_batches", raw_batches),
                ("commit_quarantine", raw_quarantine),
            ):
                columns = list(rows[0])
                statement = sql.SQL("COPY raw.{} ({}) FROM STDIN").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                with con.cursor().copy(statement) as copy:
                    for row in rows:
                        copy.write_row([row[c] for c in columns])

    return load


@pytest.fixture(scope="session")
def dbt_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One DATAPLATFORM_HOME for the session: dbt's parse cache (target/) is reused by runs."""
    return tmp_path_factory.mktemp("dataplatform-home")


@pytest.fixture
def duckdb_settings(
    tmp_path: Path, dbt_home: Path, load_raw_duckdb: Callable[[Path], None]
) -> Settings:
    """Settings of a DuckDB warehouse (a fresh file with raw tables filled) under tmp_path."""
    settings = get_settings(
        home=dbt_home, warehouse_backend="duckdb", duckdb_path=tmp_path / "wh.duckdb"
    )
    load_raw_duckdb(settings.warehouse_path)
    return settings


@pytest.fixture
def postgres_settings(
    dbt_home: Path, pg_db: dict[str, Any], load_raw_postgres: Callable[[str], None]
) -> Settings:
    """Settings of a PostgreSQL warehouse (fresh database of `pg_db`, raw tables filled)."""
    load_raw_postgres(pg_db["conninfo"])
    settings = get_settings(
        home=dbt_home,
        warehouse_backend="postgres",
        postgres_host=pg_db["host"],
        postgres_port=pg_db["port"],
        postgres_db=pg_db["dbname"],
        postgres_user=pg_db["user"],
        postgres_password=SecretStr(pg_db["password"]),
        postgres_sslmode="disable",
    )
    return settings
