"""The pipeline on a migrated database, every stage logged in as its least-privilege login.

As in production: `dataplatform db migrate` ran as the bootstrap owner, who also made one login
per stage with `dataplatform db create-login`; then the CLI, configured by environment variables
and a secrets folder only, runs ingest/load as a pipeline_service login (raw only), dbt as
a dbt_service login, and training, promotion, batch scoring and monitoring as an ml_service
login. No stage may need more than its grants: the run creates no object of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from security_world import Cluster
from typer.testing import CliRunner

from dataplatform.cli import app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCHEMAS = ("raw", "analytics", "monitoring", "registry", "audit", "security")


def _scalar(conninfo: str, query: str) -> Any:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _counts(conninfo: str) -> dict[str, int]:
    tables = ("raw.commits", "analytics.commit_features", "analytics.commit_predictions")
    return {t: _scalar(conninfo, f"SELECT count(*) FROM {t}") for t in tables}


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_pipeline_runs_end_to_end_as_least_privilege_logins(
    migrated: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = conninfo_to_dict(migrated.admin_dsn)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    env = {
        "HOME": str(tmp_path / "home"),
        "SECRETS_DIR": str(secrets_dir),
        "WAREHOUSE_BACKEND": "postgres",
        "POSTGRES_HOST": str(pg.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(pg.get("port", 5432)),
        "POSTGRES_DB": migrated.dbname,
        "POSTGRES_SSLMODE": "disable",
        "POSTGRES_ADMIN_USER": str(pg.get("user", "postgres")),
        "POSTGRES_ADMIN_PASSWORD": str(pg.get("password", "")),
    }
    for key, value in env.items():
        monkeypatch.setenv(f"DATAPLATFORM_{key}", value)
    # One login per stage, made as an operator would; passwords land in the secrets folder
    # under the names Settings reads (never printed, never in env vars).
    logins = {"": "pipeline_service", "_DBT": "dbt_service", "_ML": "ml_service"}
    for suffix, group in logins.items():
        name = f"{group}_login_{migrated.suffix}"
        made = _invoke(
            "db", "create-login", name, "--group", group,
            "--password-file", str(secrets_dir / f"DATAPLATFORM_POSTGRES{suffix}_PASSWORD"),
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        migrated.logins.append(name)
        monkeypatch.setenv(f"DATAPLATFORM_POSTGRES{suffix}_USER", name)
    monkeypatch.delenv("DATAPLATFORM_POSTGRES_ADMIN_PASSWORD")  # the stages never need it
    monkeypatch.setenv("DATAPLATFORM_DBT_REQUIRE_RLS", "true")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    admin = migrated.admin

    first = _invoke("run")  # the shipped histories (the two-repository sample fails a gate)
    assert first.exit_code == 0, first.output
    after_first = _counts(admin)
    assert after_first["raw.commits"] > 15_000
    assert after_first["analytics.commit_features"] == after_first["raw.commits"]
    assert after_first["analytics.commit_predictions"] == 0  # no production version yet

    promoted = _invoke(
        "model", "promote", "commit-classifier", "1", "--to", "production",
        "--approve", "--approver", "alice", "--reason", "least-privilege test",
    )  # fmt: skip
    assert promoted.exit_code == 0, promoted.output
    history = _scalar(
        admin,
        "SELECT count(*) FROM registry.promotion_history "
        "WHERE to_alias = 'production' AND action = 'promote'",
    )
    assert history == 1

    scored = _invoke("predict-batch")
    assert scored.exit_code == 0, scored.output
    assert _counts(admin)["analytics.commit_predictions"] == after_first["raw.commits"]

    monitored = _invoke("monitor", "--no-report")
    assert monitored.exit_code in (0, 2), monitored.output  # 2: an alert, still a clean run
    assert _scalar(admin, "SELECT count(*) FROM monitoring.monitor_runs") == 1

    again = _invoke("run")
    assert again.exit_code == 0, again.output
    after_second = _counts(admin)
    assert after_second["raw.commits"] == after_first["raw.commits"]
    assert after_second["analytics.commit_features"] == after_first["analytics.commit_features"]
    # The second run scored nothing new: every commit already has its production prediction.
    assert after_second["analytics.commit_predictions"] == after_first["raw.commits"]

    # Least privilege held: the run created nothing of its own. Every relation belongs to the
    # migration owner or to dbt_service (the marts); none to a service login.
    with psycopg.connect(admin) as conn:
        rows = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s)",
            [list(SCHEMAS)],
        ).fetchall()
    owners = {row[0] for row in rows}
    migration_owner = conninfo_to_dict(admin).get("user", "postgres")
    assert owners <= {migration_owner, "dbt_service"}, owners
    # ... and no service role could have: only dbt_service creates, and only in its schemas.
    creators = _scalar(
        admin,
        "SELECT array_agg(r.rolname || ' on ' || n.nspname ORDER BY r.rolname, n.nspname) "
        "FROM pg_namespace AS n CROSS JOIN pg_roles AS r "
        "WHERE n.nspname = ANY(ARRAY['raw', 'analytics', 'monitoring', 'registry', 'audit']) "
        "AND r.rolname IN ('pipeline_service', 'ml_service', 'dbt_service') "
        "AND has_schema_privilege(r.oid, n.oid, 'CREATE')",
    )
    assert creators == ["dbt_service on analytics"]
