"""Forward-only migrations: applied once, recorded with checksums, tampering refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from security_world import DEPARTMENTS, Cluster

from dataplatform.adapters.ddl import RAW_SCHEMA_DDL, RAW_TABLES
from dataplatform.monitor.store import MONITORING_DDL, MONITORING_TABLES
from dataplatform.registry.history import HISTORY_DDL, HISTORY_TABLE
from dataplatform.security.migrate import (
    MigrationError,
    default_migrations_dir,
    discover_migrations,
    migrate,
)
from dataplatform.serve.batch import BATCHES_TABLE, PREDICTIONS_DDL, PREDICTIONS_TABLE
from dataplatform.serve.prediction_log import PREDICTION_LOG_DDL, PREDICTION_LOG_TABLE
from dataplatform.workers.queue import QUEUE_DDL

pytestmark = pytest.mark.postgres


def test_migrations_are_recorded_with_checksums_and_rerun_is_a_no_op(migrated: Cluster) -> None:
    on_disk = discover_migrations()
    with psycopg.connect(migrated.admin) as conn:
        recorded = conn.execute(
            "SELECT version, name, checksum FROM audit.schema_migrations ORDER BY version"
        ).fetchall()
        schemas = {
            r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_'")
        }
        events = conn.execute(
            "SELECT action, subject FROM audit.events WHERE action = 'db.migrate'"
        ).fetchall()
    assert recorded == [(m.version, m.name, m.checksum) for m in on_disk]
    assert {
        "raw",
        "staging",
        "intermediate",
        "analytics",
        "monitoring",
        "registry",
        "audit",
        "security",
    } <= schemas
    assert events == [("db.migrate", f"{on_disk[-1].version:04d}_{on_disk[-1].name}")]

    again = migrate(migrated.admin, repo_departments=DEPARTMENTS)
    assert again.applied == ()
    assert again.already_applied == len(on_disk)
    assert again.departments == 2


def test_changed_applied_migration_is_an_error(migrated: Cluster, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), folder)
    target = sorted(folder.glob("0003_*.sql"))[0]
    target.write_text(target.read_text() + "\n-- edited after it was applied\n")
    (folder / "9999_later.sql").write_text("CREATE TABLE raw.never_created (a int);\n")
    with pytest.raises(MigrationError, match=r"0003_.*changed after it was applied"):
        migrate(migrated.admin, directory=folder)
    with psycopg.connect(migrated.admin) as conn:
        assert conn.execute("SELECT to_regclass('raw.never_created')").fetchone() == (None,)


def test_failing_migration_applies_nothing_of_itself(migrated: Cluster, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), folder)
    (folder / "9000_good.sql").write_text("CREATE TABLE raw.good (a int);\n")
    (folder / "9001_bad.sql").write_text(
        "CREATE TABLE raw.half_done (a int);\nSELECT no_such_function();\n"
    )
    with pytest.raises(MigrationError, match=r"9001_bad\.sql failed"):
        migrate(migrated.admin, directory=folder)
    with psycopg.connect(migrated.admin) as conn:
        assert conn.execute("SELECT to_regclass('raw.good') IS NOT NULL").fetchone() == (True,)
        assert conn.execute("SELECT to_regclass('raw.half_done')").fetchone() == (None,)
        versions = [r[0] for r in conn.execute("SELECT version FROM audit.schema_migrations")]
    assert 9000 in versions
    assert 9001 not in versions


# Every table the code creates on first use (DuckDB, unmigrated PostgreSQL) and a migration
# creates in production: the two DDLs must agree column for column.
CODE_DDL: tuple[tuple[str, ...], ...] = (
    RAW_SCHEMA_DDL,
    PREDICTIONS_DDL,
    PREDICTION_LOG_DDL,
    MONITORING_DDL,
    HISTORY_DDL,
    QUEUE_DDL,
)
CODE_TABLES = (
    *RAW_TABLES,
    PREDICTIONS_TABLE,
    BATCHES_TABLE,
    PREDICTION_LOG_TABLE,
    *MONITORING_TABLES,
    HISTORY_TABLE,
    "raw.ingest_queue",
)


def columns(conninfo: str) -> list[tuple[str, ...]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            """
            SELECT table_schema || '.' || table_name, column_name, data_type, is_nullable,
                   ordinal_position::text, coalesce(column_default, '')
            FROM information_schema.columns
            WHERE table_schema || '.' || table_name = ANY(%s)
            ORDER BY 1, ordinal_position
            """,
            [list(CODE_TABLES)],
        ).fetchall()


def test_tables_created_by_code_match_the_migrations(
    migrated: Cluster, pg_db: dict[str, str]
) -> None:
    with psycopg.connect(pg_db["conninfo"]) as conn:
        for ddl in CODE_DDL:
            for statement in ddl:
                conn.execute(statement)
    in_code = columns(pg_db["conninfo"])
    assert {row[0] for row in in_code} == set(CODE_TABLES)
    assert columns(migrated.admin) == in_code
