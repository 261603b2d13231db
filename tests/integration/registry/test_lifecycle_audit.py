"""Promotions, approvals, refusals, archives and rollbacks leave rows in ``audit.events``.

DuckDB (the embedded default, table created on first use) and a real PostgreSQL database with
the migrations applied, the lifecycle logged in as an ``ml_service`` login (the role the registry
runs as: INSERT on audit.events, no UPDATE/DELETE). A registry change that cannot be audited does
not happen: history and audit rows share one transaction and the alias move is undone.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo
from registry_world import NAME, OK, RecordingNotifier, register
from typer.testing import CliRunner

from dataplatform.adapters.audit import AuditEntry, AuditLog
from dataplatform.adapters.warehouse import DuckDBWarehouse, PostgresWarehouse
from dataplatform.config import Settings
from dataplatform.registry.cli import model_app
from dataplatform.registry.gates import Approval
from dataplatform.registry.history import read_history
from dataplatform.registry.lifecycle import (
    LifecycleError,
    ModelLifecycle,
    NothingToRollBack,
    open_lifecycle,
)
from dataplatform.registry.locks import FileLock, PostgresAdvisoryLock
from dataplatform.registry.thresholds import load_thresholds

PASSWORD = "Test-Only-Registry-Pw-41d9"  # pragma: allowlist secret


def subject(version: str) -> str:
    return f"models:/{NAME}/{version}"


def audit_rows(warehouse: Any) -> list[dict[str, Any]]:
    """The model.* audit rows, oldest first, details decoded."""
    frame = warehouse.query_df(
        "SELECT action, subject, actor, db_user, details, occurred_at FROM audit.events "
        "WHERE action LIKE 'model.%' ORDER BY occurred_at, action"
    )
    rows = frame.to_dict("records")
    for row in rows:
        if isinstance(row["details"], str):
            row["details"] = json.loads(row["details"])
    return rows


def triples(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["action"], r["subject"], r["actor"]) for r in rows]


# --- DuckDB -----------------------------------------------------------------------------------
def test_promotions_approvals_and_archive_are_audited(
    lifecycle: ModelLifecycle, client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    v1 = register(client, settings, saved_models["logistic"])
    v2 = register(client, settings, saved_models["logistic"])
    assert lifecycle.promote(NAME, v1, "staging", actor="ci").status == "promoted"
    assert lifecycle.promote(NAME, v1, "production", actor="ci", approval=OK).status == "promoted"
    out = lifecycle.promote(NAME, v2, "production", actor="ci", approval=OK, reason="better")
    assert out.archived_version == v1

    rows = audit_rows(lifecycle.warehouse)
    assert triples(rows) == [
        ("model.promote", subject(v1), "ci"),  # staging
        ("model.approve", subject(v1), "alice"),  # the approver, not the one who ran it
        ("model.promote", subject(v1), "ci"),  # production, from staging
        ("model.approve", subject(v2), "alice"),
        ("model.archive", subject(v1), "ci"),  # the previous production
        ("model.promote", subject(v2), "ci"),
    ]
    staging, approve, production = (r["details"] for r in rows[:3])
    assert (staging["to_alias"], staging["from_alias"], staging["semver"]) == (
        "staging",
        None,
        "v1.0.0",
    )
    assert all(g["passed"] for g in staging["gates"])
    assert approve == {
        "all_gates_passed": True,
        "model": NAME,
        "reason": OK.reason,
        "semver": "v1.0.0",
        "to_alias": "production",
        "version": v1,
    }
    assert (production["from_alias"], production["approved_by"]) == ("staging", "alice")
    archive, promote = rows[4]["details"], rows[5]["details"]
    assert (archive["replaced_by"], archive["cause"], archive["from_alias"]) == (
        v2,
        "promote",
        "production",
    )
    assert (promote["replaced_version"], promote["archived_version"], promote["reason"]) == (
        v1,
        v1,
        "better",
    )
    # Every audit row of a move points at its history row, written in the same transaction.
    history = {e.event_id: e for e in read_history(lifecycle.warehouse, NAME)}
    linked = [
        history[r["details"]["history_event_id"]] for r in rows if r["action"] != "model.approve"
    ]
    assert [(e.action, e.version) for e in linked] == [
        ("promote", v1),
        ("promote", v1),
        ("archive", v1),
        ("promote", v2),
    ]
    assert {r["db_user"] for r in rows} == {"duckdb"}


def test_refused_promotions_are_audited(
    lifecycle: ModelLifecycle, client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    good = register(client, settings, saved_models["logistic"])
    weak = register(client, settings, saved_models["logistic"], f1=0.5)

    assert lifecycle.promote(NAME, good, "production", actor="ci").status == "blocked"
    assert lifecycle.promote(NAME, weak, "production", actor="ci", approval=OK).status == "blocked"
    half = Approval("bob", "")
    assert lifecycle.promote(NAME, good, "production", actor="ci", approval=half).status == (
        "blocked"
    )

    rows = audit_rows(lifecycle.warehouse)
    assert triples(rows) == [
        ("model.promote_refused", subject(good), "ci"),
        ("model.approve", subject(weak), "alice"),  # approved, yet the F1 gate said no
        ("model.promote_refused", subject(weak), "ci"),
        ("model.promote_refused", subject(good), "ci"),  # no approve row for a half approval
    ]
    no_approval, weak_refusal, half_refusal = rows[0]["details"], rows[2]["details"], rows[3]
    assert no_approval["failed_gates"] == ["approval"]
    assert no_approval["approved_by"] is None
    assert rows[1]["details"]["all_gates_passed"] is False
    assert "f1_threshold" in weak_refusal["failed_gates"]
    assert weak_refusal["approved_by"] == "alice"
    assert half_refusal["details"]["failed_gates"] == ["approval"]
    assert "production" not in lifecycle.current_holders(NAME)
    blocked_ids = {e.event_id for e in read_history(lifecycle.warehouse, NAME)}
    assert {
        r["details"]["history_event_id"] for r in rows if r["action"] == "model.promote_refused"
    } == blocked_ids


def test_manual_rollback_and_a_refused_one_are_audited(
    lifecycle: ModelLifecycle, client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    v1 = register(client, settings, saved_models["logistic"])
    v2 = register(client, settings, saved_models["logistic"])
    for v in (v1, v2):
        lifecycle.promote(NAME, v, "production", actor="ci", approval=OK)

    lifecycle.rollback(NAME, reason="F1 dropped 12%", actor="oncall")
    with pytest.raises(NothingToRollBack):
        lifecycle.rollback(NAME, reason="still bad", actor="oncall")

    rows = audit_rows(lifecycle.warehouse)
    assert triples(rows[-3:]) == [
        ("model.archive", subject(v2), "oncall"),
        ("model.rollback", subject(v1), "oncall"),
        ("model.rollback_refused", subject(v1), "oncall"),
    ]
    archive, rollback, refused = (r["details"] for r in rows[-3:])
    assert (archive["cause"], archive["replaced_by"]) == ("rollback", v1)
    assert rollback == {
        "from_semver": "v1.1.0",
        "from_version": v2,
        "history_event_id": rollback["history_event_id"],
        "model": NAME,
        "reason": "F1 dropped 12%",
        "smoke_rows_scored": 3,
        "to_semver": "v1.0.0",
        "to_version": v1,
        "trigger": "manual",
    }
    assert (refused["trigger"], refused["reason"]) == ("manual", "still bad")
    assert "nothing to roll back to" in refused["refusal"]


def test_automatic_rollback_by_the_monitor_is_audited(
    client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    from dataplatform import pipeline

    v1 = register(client, settings, saved_models["logistic"])
    v2 = register(client, settings, saved_models["logistic"])
    with open_lifecycle(settings, notifier=RecordingNotifier()) as lc:
        for v in (v1, v2):
            assert lc.promote(NAME, v, "production", actor="ci", approval=OK).status == "promoted"

    # Exactly what `dataplatform monitor --auto-rollback` calls on a confirmed critical.
    result = pipeline.monitor_deps(settings, NAME).rollback(NAME, "monitor run-1: critical f1")
    assert (result.from_version, result.to_version) == (v2, v1)

    with DuckDBWarehouse(settings.warehouse_path) as wh:
        rows = audit_rows(wh)
    assert triples(rows[-2:]) == [
        ("model.archive", subject(v2), "monitor"),
        ("model.rollback", subject(v1), "monitor"),
    ]
    assert rows[-1]["details"]["trigger"] == "automatic"
    assert rows[-1]["details"]["reason"] == "monitor run-1: critical f1"


class BrokenAudit(AuditLog):
    """An audit log whose inserts fail (a revoked grant, a full disk, a dropped connection)."""

    def record(self, entries: Sequence[AuditEntry]) -> list[str]:
        raise RuntimeError("audit log unavailable")


def test_a_promotion_that_cannot_be_audited_does_not_happen(
    client: Any, warehouse: DuckDBWarehouse, settings: Settings, saved_models: dict[str, Path]
) -> None:
    lc = ModelLifecycle(
        client,
        warehouse,
        FileLock(settings.home / "locks"),
        load_thresholds(),
        RecordingNotifier(),
        audit=BrokenAudit(warehouse),
    )
    v1 = register(client, settings, saved_models["logistic"])
    with pytest.raises(LifecycleError, match=r"audit log unavailable.*alias restored"):
        lc.promote(NAME, v1, "production", actor="ci", approval=OK)
    assert lc.current_holders(NAME) == {}
    # The history row went in first and was rolled back with the failed audit insert.
    assert read_history(warehouse, NAME) == []

    with pytest.raises(LifecycleError, match="refusal could not be recorded"):
        lc.promote(NAME, v1, "production", actor="ci")  # no approval: refused, unauditable
    assert read_history(warehouse, NAME) == []

    # A refused rollback is not silently unaudited either: exit 1 naming both problems.
    with pytest.raises(LifecycleError, match="nothing to roll back; and the refusal could not"):
        lc.rollback(NAME, reason="bad", actor="oncall")


def test_cli_promotion_audits_the_actor_and_approver(
    client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    version = register(client, settings, saved_models["logistic"])
    args = ["promote", NAME, version, "--to", "production", "--actor", "deploy-bot"]
    approve = ["--approve", "--approver", "carol", "--reason", "release 7"]
    result = CliRunner().invoke(model_app, args + approve, obj=settings)
    assert result.exit_code == 0, result.output
    with DuckDBWarehouse(settings.warehouse_path) as wh:
        rows = audit_rows(wh)
    assert triples(rows) == [
        ("model.approve", subject(version), "carol"),
        ("model.promote", subject(version), "deploy-bot"),
    ]
    assert rows[0]["details"]["reason"] == "release 7"


# --- PostgreSQL -------------------------------------------------------------------------------
@dataclass
class MigratedDb:
    admin: str  # superuser conninfo of the database
    login: str  # an ml_service LOGIN role
    login_conninfo: str


@pytest.fixture
def migrated_db(pg_admin_dsn: str) -> Iterator[MigratedDb]:
    """A fresh database with every migration applied and one ml_service login."""
    from dataplatform.security.migrate import migrate
    from dataplatform.security.roles import create_login

    dbname = f"reg_{uuid.uuid4().hex[:12]}"
    login = f"ml_service_{dbname}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    admin = make_conninfo(pg_admin_dsn, dbname=dbname)
    try:
        migrate(admin)
        with psycopg.connect(admin, autocommit=True) as conn:
            create_login(conn, login, PASSWORD, "ml_service")
        yield MigratedDb(admin, login, make_conninfo(admin, user=login, password=PASSWORD))
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


@pytest.fixture
def pg_lifecycle(client: Any, migrated_db: MigratedDb) -> Iterator[ModelLifecycle]:
    """The lifecycle on the migrated database as the ml_service login (audit required)."""
    wh = PostgresWarehouse(migrated_db.login_conninfo)
    try:
        yield ModelLifecycle(
            client,
            wh,
            PostgresAdvisoryLock(migrated_db.login_conninfo),
            load_thresholds(),
            RecordingNotifier(),
            audit=AuditLog(wh, required=True),
        )
    finally:
        wh.close()


@pytest.mark.postgres
def test_postgres_promotion_refusal_and_rollback_are_audited(
    pg_lifecycle: ModelLifecycle,
    migrated_db: MigratedDb,
    client: Any,
    settings: Settings,
    saved_models: dict[str, Path],
) -> None:
    v1 = register(client, settings, saved_models["logistic"])
    v2 = register(client, settings, saved_models["logistic"])
    v3 = register(client, settings, saved_models["logistic"])
    lc = pg_lifecycle
    for v in (v1, v2):
        assert lc.promote(NAME, v, "production", actor="ci", approval=OK).status == "promoted"
    assert lc.promote(NAME, v3, "production", actor="ci").status == "blocked"
    assert lc.rollback(NAME, reason="F1 dropped", actor="oncall").to_version == v1

    with PostgresWarehouse(migrated_db.admin) as admin:  # the login may not read the log
        rows = audit_rows(admin)
    assert triples(rows) == [
        ("model.approve", subject(v1), "alice"),
        ("model.promote", subject(v1), "ci"),
        ("model.approve", subject(v2), "alice"),
        ("model.archive", subject(v1), "ci"),
        ("model.promote", subject(v2), "ci"),
        ("model.promote_refused", subject(v3), "ci"),
        ("model.archive", subject(v2), "oncall"),
        ("model.rollback", subject(v1), "oncall"),
    ]
    assert {r["db_user"] for r in rows} == {migrated_db.login}
    assert rows[5]["details"]["failed_gates"] == ["approval"]
    assert rows[-1]["details"]["trigger"] == "manual"
    history = {e.event_id for e in lc.history(NAME)}
    assert {r["details"].get("history_event_id") for r in rows} - {None} <= history

    # Append-only for the role that wrote them: audit rows and history rows alike.
    with psycopg.connect(migrated_db.login_conninfo, autocommit=True) as conn:
        for statement in (
            "UPDATE audit.events SET actor = 'someone else'",
            "DELETE FROM audit.events",
            "TRUNCATE audit.events",
            "UPDATE registry.promotion_history SET actor = 'someone else'",
            "DELETE FROM registry.promotion_history",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)


@pytest.mark.postgres
def test_postgres_promotion_that_cannot_be_audited_does_not_happen(
    pg_lifecycle: ModelLifecycle,
    migrated_db: MigratedDb,
    client: Any,
    settings: Settings,
    saved_models: dict[str, Path],
) -> None:
    v1 = register(client, settings, saved_models["logistic"])
    with psycopg.connect(migrated_db.admin, autocommit=True) as conn:
        conn.execute("REVOKE INSERT ON audit.events FROM ml_service")

    with pytest.raises(LifecycleError, match=r"permission denied.*alias restored"):
        pg_lifecycle.promote(NAME, v1, "production", actor="ci", approval=OK)

    assert pg_lifecycle.current_holders(NAME) == {}
    with psycopg.connect(migrated_db.admin) as conn:
        assert conn.execute("SELECT count(*) FROM registry.promotion_history").fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM audit.events WHERE action LIKE 'model.%'"
        ).fetchone() == (0,)


@pytest.mark.postgres
def test_unmigrated_postgres_warns_outside_prod_and_fails_when_required(
    client: Any,
    settings: Settings,
    saved_models: dict[str, Path],
    pg_db: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    v1 = register(client, settings, saved_models["logistic"])
    v2 = register(client, settings, saved_models["logistic"])
    with PostgresWarehouse(pg_db["conninfo"]) as wh:
        lock = PostgresAdvisoryLock(pg_db["conninfo"])
        lenient = ModelLifecycle(
            client, wh, lock, load_thresholds(), audit=AuditLog(wh, required=False)
        )
        with caplog.at_level(logging.WARNING, logger="dataplatform.adapters.audit"):
            assert lenient.promote(NAME, v1, "staging", actor="ci").status == "promoted"
        assert "audit.events does not exist" in caplog.text

        strict = ModelLifecycle(client, wh, lock, load_thresholds(), audit=AuditLog(wh))
        with pytest.raises(LifecycleError, match="dataplatform db migrate"):
            strict.promote(NAME, v2, "staging", actor="ci")
        assert strict.current_holders(NAME) == {"staging": v1}
        assert [e.version for e in strict.history(NAME)] == [v1]
