"""dbt build of the whole project on DuckDB with real commits: models, tests, values, privacy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pytest
from transform_data import check_marts

from dataplatform.config import Settings
from dataplatform.transform.dbt_runner import NodeStatus, TransformError, run_dbt

pytestmark = pytest.mark.slow

REPO_DBT = Path(__file__).resolve().parents[3] / "dbt"


def test_build_creates_tested_marts(duckdb_settings: Settings, raw_commits: list[dict[str, Any]]):
    before = sorted(p.name for p in REPO_DBT.iterdir())
    env_before = {k: v for k, v in os.environ.items() if k.startswith("DATAPLATFORM_DBT_")}
    finished: list[NodeStatus] = []

    result = run_dbt(duckdb_settings, progress=finished.append)

    assert result.target == "duckdb"
    assert result.models_built == len(list(REPO_DBT.glob("models/**/*.sql")))
    assert result.tests_failed == 0
    assert result.tests_passed > 100
    assert result.tests_passed == sum(1 for n in result.nodes if n.resource_type == "test")
    assert {n.unique_id for n in finished} == {n.unique_id for n in result.nodes}
    assert "commit_features" in {n.name for n in result.nodes if n.status == "success"}
    assert "assert_no_plaintext_email_in_analytics" in {n.name for n in result.nodes}
    # dbt's files went under settings.home, and the environment is as it was
    assert (duckdb_settings.home / "dbt" / "target-duckdb" / "run_results.json").exists()
    assert (duckdb_settings.home / "dbt" / "logs" / "dbt.log").exists()
    assert sorted(p.name for p in REPO_DBT.iterdir()) == before
    env_after = {k: v for k, v in os.environ.items() if k.startswith("DATAPLATFORM_DBT_")}
    assert env_after == env_before

    con = duckdb.connect(str(duckdb_settings.warehouse_path), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema <> 'raw' order by 1, 2"
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
        assert {schema for schema, _, _ in tables} == {"analytics", "intermediate", "staging"}
        check_marts(lambda sql: con.execute(sql).fetchall(), raw_commits)
    finally:
        con.close()


def test_features_do_not_depend_on_the_session_time_zone(
    duckdb_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    # DuckDB's timestamptz functions follow the process time zone: the models must not.
    monkeypatch.setenv("TZ", "Pacific/Chatham")  # +12:45/+13:45, far from UTC
    run_dbt(duckdb_settings, select="+commit_features")
    con = duckdb.connect(str(duckdb_settings.warehouse_path), read_only=True)
    try:
        assert con.execute("select current_setting('TimeZone')").fetchone() == ("Pacific/Chatham",)
        row = con.execute(
            "select hour_of_day, day_of_week, commit_lag_seconds from analytics.commit_features "
            "where commit_key = 'encode/httpx:23f11aaa8db466fd78eea2a812e35b008017d617'"
        ).fetchone()
    finally:
        con.close()
    assert row == (14, 6, 19643)


def test_failing_data_test_raises_transform_error_naming_it(duckdb_settings: Settings):
    con = duckdb.connect(str(duckdb_settings.warehouse_path))
    try:
        # A load that skipped hashing: the plaintext e-mail sits in the hash column.
        con.execute(
            "insert into raw.commits select * replace ("
            "'f' || substr(commit_sha, 2) as commit_sha, "
            "'leaked.person@example.org' as author_email_hash) "
            "from raw.commits where repo = 'encode/httpx' limit 1"
        )
    finally:
        con.close()

    with pytest.raises(TransformError) as caught:
        run_dbt(duckdb_settings)

    message = str(caught.value)
    assert "is_hex_digest_stg_raw__commits_author_email_hash" in message
    assert "1 failing row(s)" in message
    failed = {n.name for n in caught.value.failures}
    assert "is_hex_digest_stg_raw__commits_author_email_hash" in failed
    assert all(n.status in {"fail", "error"} for n in caught.value.failures)


def test_unusable_project_raises_transform_error(duckdb_settings: Settings, tmp_path: Path):
    broken = duckdb_settings.model_copy(update={"dbt_project_dir": tmp_path / "no-such-project"})
    with pytest.raises(TransformError, match="could not run"):
        run_dbt(broken)
