"""Pure parts of the dbt runner: environment handling, messages, the profile holds no secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from dataplatform.config import get_settings
from dataplatform.transform.dbt_runner import (
    NodeStatus,
    _failure_message,
    _scrub,
    _temporary_env,
    dbt_env,
    run_dbt,
)

PROFILES = Path(__file__).resolve().parents[3] / "dbt" / "profiles.yml"


def test_dbt_env_for_duckdb_names_the_warehouse_file(tmp_path: Path):
    settings = get_settings(home=tmp_path, warehouse_backend="duckdb")
    env = dbt_env(settings)
    assert env["DATAPLATFORM_DBT_TARGET"] == "duckdb"
    assert env["DATAPLATFORM_DBT_DUCKDB_PATH"] == str(tmp_path / "warehouse.duckdb")
    assert not any(key.startswith("DATAPLATFORM_DBT_PG_") for key in env)


def test_dbt_env_for_postgres_carries_the_connection(tmp_path: Path):
    settings = get_settings(
        home=tmp_path,
        warehouse_backend="postgres",
        postgres_host="db.internal",
        postgres_port=6543,
        postgres_db="wh",
        postgres_user="dbt_service",
        postgres_password=SecretStr("s3cr3t-value"),
        postgres_sslmode="require",
    )
    env = dbt_env(settings)
    assert env["DATAPLATFORM_DBT_TARGET"] == "postgres"
    assert env["DATAPLATFORM_DBT_PG_HOST"] == "db.internal"
    assert env["DATAPLATFORM_DBT_PG_PORT"] == "6543"
    assert env["DATAPLATFORM_DBT_PG_DBNAME"] == "wh"
    assert env["DATAPLATFORM_DBT_PG_USER"] == "dbt_service"
    assert env["DATAPLATFORM_DBT_PG_PASSWORD"] == "s3cr3t-value"
    assert env["DATAPLATFORM_DBT_PG_SSLMODE"] == "require"
    assert env["DATAPLATFORM_DBT_PG_SSLROOTCERT"] == ""


def test_temporary_env_restores_previous_values(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATAPLATFORM_DBT_PG_HOST", "before")
    monkeypatch.setenv("DATAPLATFORM_DBT_STALE", "stale")
    monkeypatch.delenv("DATAPLATFORM_DBT_PG_PASSWORD", raising=False)

    with _temporary_env(
        {"DATAPLATFORM_DBT_PG_HOST": "during", "DATAPLATFORM_DBT_PG_PASSWORD": "x"}
    ):
        assert os.environ["DATAPLATFORM_DBT_PG_HOST"] == "during"
        assert os.environ["DATAPLATFORM_DBT_PG_PASSWORD"] == "x"
        assert "DATAPLATFORM_DBT_STALE" not in os.environ  # only what the run sets is visible

    assert os.environ["DATAPLATFORM_DBT_PG_HOST"] == "before"
    assert os.environ["DATAPLATFORM_DBT_STALE"] == "stale"
    assert "DATAPLATFORM_DBT_PG_PASSWORD" not in os.environ


def test_temporary_env_restores_after_an_exception(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DATAPLATFORM_DBT_PG_PASSWORD", raising=False)
    with pytest.raises(RuntimeError), _temporary_env({"DATAPLATFORM_DBT_PG_PASSWORD": "x"}):
        raise RuntimeError("dbt blew up")
    assert "DATAPLATFORM_DBT_PG_PASSWORD" not in os.environ


def test_unknown_command_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="unsupported dbt command 'seed-all'"):
        run_dbt(get_settings(home=tmp_path), command="seed-all")  # type: ignore[arg-type]


def test_scrub_removes_every_secret_occurrence():
    assert _scrub("auth pw=hunter22 failed (hunter22)", ["hunter22"]) == "auth pw=*** failed (***)"
    assert _scrub("nothing to hide", []) == "nothing to hide"


def test_failure_message_names_each_failing_node_on_one_line():
    failures = [
        NodeStatus(
            "test.dataplatform.t1",
            "not_null_fct_commits_repo",
            "test",
            "fail",
            "Got 3 results,\nconfigured to fail",
            3,
            0.1,
        ),
        NodeStatus(
            "model.dataplatform.fct_commits",
            "fct_commits",
            "model",
            "error",
            "Catalog Error",
            None,
            0.2,
        ),
    ]
    message = _failure_message("build", "duckdb", failures, Path("/h/dbt/logs"))
    lines = message.splitlines()
    assert lines[0] == "dbt build (duckdb): 2 node(s) failed (logs: /h/dbt/logs)"
    assert lines[1] == (
        "  test not_null_fct_commits_repo [fail, 3 failing row(s)]: "
        "Got 3 results, configured to fail"
    )
    assert lines[2] == "  model fct_commits [error]: Catalog Error"


def test_profiles_take_every_connection_value_from_the_environment():
    profile = yaml.safe_load(PROFILES.read_text())["dataplatform"]
    assert set(profile["outputs"]) == {"duckdb", "postgres"}
    literal_ok = {"type", "schema", "threads", "connect_timeout"}
    for name, output in profile["outputs"].items():
        for key, value in output.items():
            if key in literal_ok and "env_var" not in str(value):
                continue
            assert "env_var('DATAPLATFORM_DBT_" in str(value), (name, key)
    assert profile["outputs"]["postgres"]["password"] == (
        "{{ env_var('DATAPLATFORM_DBT_PG_PASSWORD', '') }}"
    )
