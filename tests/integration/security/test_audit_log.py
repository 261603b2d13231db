"""audit.events is append-only: application roles insert, nobody updates, deletes or truncates."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors
from security_world import Cluster

from dataplatform.adapters.warehouse import PostgresWarehouse
from dataplatform.security.audit import AuditAction, record_event

pytestmark = pytest.mark.postgres

GROUPS = (
    "platform_admin",
    "data_engineer",
    "data_analyst",
    "pipeline_service",
    "mlflow_service",
    "dbt_service",
    "ml_service",  # the registry's role: promotions, approvals and rollbacks are audited
)


@pytest.mark.parametrize("group", GROUPS)
def test_application_role_can_insert_but_not_change_events(migrated: Cluster, group: str) -> None:
    login = migrated.login(group)
    with PostgresWarehouse(migrated.conninfo(login)) as wh:
        event_id = record_event(
            wh, AuditAction.PROMOTION, "commit-classifier/v3", details={"from": "staging"}
        )
        conn = wh.connection
        for statement in (
            "UPDATE audit.events SET subject = 'forged'",
            "DELETE FROM audit.events",
            "TRUNCATE audit.events",
            "ALTER TABLE audit.events DISABLE TRIGGER events_append_only",
            "DROP TABLE audit.events",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
    with psycopg.connect(migrated.admin) as conn:
        row = conn.execute(
            "SELECT action, subject, db_user, details->>'from' FROM audit.events "
            "WHERE event_id = %s",
            [event_id],
        ).fetchone()
    assert row == ("model.promote", "commit-classifier/v3", login, "staging")


def test_even_the_owner_is_stopped_by_the_trigger(migrated: Cluster) -> None:
    with psycopg.connect(migrated.admin, autocommit=True) as conn:
        for statement, refusal in (
            ("UPDATE audit.events SET subject = 'forged'", "audit.events .* UPDATE"),
            ("DELETE FROM audit.events", "audit.events .* DELETE"),
            ("TRUNCATE audit.events", "audit.events .* TRUNCATE"),
            ("DELETE FROM audit.schema_migrations", "audit.schema_migrations .* DELETE"),
            # Guarded by the same function since 0008, named with its own schema since 0009
            # (empty here, so only the statement-level TRUNCATE trigger fires).
            ("TRUNCATE registry.promotion_history", "registry.promotion_history .* TRUNCATE"),
        ):
            with pytest.raises(errors.InsufficientPrivilege, match=f"^{refusal} refused"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM audit.events").fetchone() == (1,)  # migrate


def test_only_engineers_and_admins_read_the_log(migrated: Cluster) -> None:
    analyst = migrated.login("data_analyst")
    with (
        psycopg.connect(migrated.conninfo(analyst)) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT * FROM audit.events")
