"""dbt build on PostgreSQL: same checks as DuckDB, and the same feature values (parity)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from pydantic import SecretStr
from transform_data import check_marts, feature_rows

from dataplatform.config import Settings
from dataplatform.transform.dbt_runner import TransformError, run_dbt

REPO_DBT = Path(__file__).resolve().parents[3] / "dbt"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_build_on_postgres_matches_duckdb(
    postgres_settings: Settings,
    duckdb_settings: Settings,
    pg_db: dict[str, Any],
    raw_commits: list[dict[str, Any]],
):
    result = run_dbt(postgres_settings)

    assert result.target == "postgres"
    assert result.models_built == len(list(REPO_DBT.glob("models/**/*.sql")))
    assert result.tests_failed == 0
    with psycopg.connect(pg_db["conninfo"]) as con:
        tables = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema in ('analytics', 'staging', 'intermediate') order by 1, 2"
        ).fetchall()
        # the core marts and their layers (predictions and labels models come on top)
        assert set(tables) >= {
            ("analytics", "commit_features", "BASE TABLE"),
            ("analytics", "dim_repositories", "BASE TABLE"),
            ("analytics", "fct_commits", "BASE TABLE"),
            ("intermediate", "int_commits__features", "VIEW"),
            ("staging", "stg_raw__commit_quarantine", "VIEW"),
            ("staging", "stg_raw__commits", "VIEW"),
            ("staging", "stg_raw__ingest_batches", "VIEW"),
        }
        check_marts(lambda sql: con.execute(sql).fetchall(), raw_commits)  # type: ignore[arg-type]
        on_postgres = feature_rows(lambda sql: con.execute(sql).fetchall())  # type: ignore[arg-type]

    run_dbt(duckdb_settings, select="+commit_features")
    duck = duckdb.connect(str(duckdb_settings.warehouse_path), read_only=True)
    try:
        on_duckdb = feature_rows(lambda sql: duck.execute(sql).fetchall())
    finally:
        duck.close()

    assert len(on_postgres) == len(raw_commits)
    differing = [key for key in on_duckdb if on_duckdb[key] != on_postgres.get(key)]
    assert differing == []
    assert on_postgres.keys() == on_duckdb.keys()


def test_bad_password_fails_without_showing_it(postgres_settings: Settings):
    secret = "Wrong-Secret-4f1c9a"  # a deliberately wrong password
    wrong = postgres_settings.model_copy(update={"postgres_password": SecretStr(secret)})
    with pytest.raises(TransformError) as caught:
        run_dbt(wrong)
    assert secret not in str(caught.value)
    assert "password authentication failed" in str(caught.value)
    log = (wrong.home / "dbt" / "logs" / "dbt.log").read_text()
    assert secret not in log
