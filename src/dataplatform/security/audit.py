"""Append-only audit log of platform actions: ``audit.events``.

On PostgreSQL the table comes from migration 0004: application roles may INSERT (and engineers
SELECT) but never UPDATE, DELETE or TRUNCATE (revoked, and a trigger raises). On DuckDB (the
embedded dev default) `record_event` creates the table on first use; there are no roles there.

`record_event(warehouse, action, subject, ...)` is what the stages call, e.g. the registry
after a promotion: ``record_event(wh, AuditAction.PROMOTION, "commit-classifier/v3", ...)``.
"""

from __future__ import annotations

import getpass
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from dataplatform.adapters.warehouse import Warehouse

ACTION_PATTERN = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")

# DuckDB only: PostgreSQL gets the table (with grants and the append-only trigger) by migration.
DUCKDB_AUDIT_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS audit",
    """
    CREATE TABLE IF NOT EXISTS audit.events (
        event_id     TEXT PRIMARY KEY,
        occurred_at  TIMESTAMPTZ NOT NULL,
        action       TEXT NOT NULL,
        subject      TEXT NOT NULL,
        actor        TEXT NOT NULL,
        db_user      TEXT NOT NULL,
        details      JSON NOT NULL
    )
    """,
)


class AuditAction(StrEnum):
    """Actions the platform records (free-form ``area.verb`` names are accepted too)."""

    PROMOTION = "model.promote"
    APPROVAL = "model.approve"
    ROLLBACK = "model.rollback"
    ROTATION = "secret.rotate"
    MIGRATION = "db.migrate"


class AuditError(ValueError):
    """An audit event is malformed."""


def _check(action: str, subject: str) -> None:
    if not ACTION_PATTERN.match(action):
        raise AuditError(f"audit action {action!r} must look like 'area.verb'")
    if not subject:
        raise AuditError("audit subject must not be empty")


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with an arbitrary uid)
        return "unknown"


def record_event(
    warehouse: Warehouse,
    action: AuditAction | str,
    subject: str,
    *,
    actor: str | None = None,
    details: Mapping[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> str:
    """Append one event to ``audit.events``; returns its event_id.

    `details` must be JSON-serialisable and must never hold secrets.
    """
    action = str(action)
    _check(action, subject)
    event_id = uuid.uuid4().hex
    when = occurred_at or datetime.now(UTC)
    who = actor or _default_actor()
    payload = json.dumps(dict(details or {}), sort_keys=True, default=str)
    if warehouse.backend == "duckdb":
        for statement in DUCKDB_AUDIT_DDL:
            warehouse.execute(statement)
        warehouse.execute(
            "INSERT INTO audit.events VALUES (?, ?, ?, ?, ?, current_user, ?)",
            [event_id, when, action, subject, who, payload],
        )
    else:
        warehouse.execute(
            "INSERT INTO audit.events (event_id, occurred_at, action, subject, actor, details) "
            "VALUES (?, ?, ?, ?, ?, CAST(? AS jsonb))",
            [event_id, when, action, subject, who, payload],
        )
    return event_id


def insert_event(
    conn: psycopg.Connection[Any],
    action: AuditAction | str,
    subject: str,
    *,
    actor: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """`record_event` on a bare psycopg connection (used by migrate and rotate)."""
    action = str(action)
    _check(action, subject)
    event_id = uuid.uuid4().hex
    conn.execute(
        "INSERT INTO audit.events (event_id, action, subject, actor, details) "
        "VALUES (%s, %s, %s, %s, %s::jsonb)",
        [
            event_id,
            action,
            subject,
            actor or _default_actor(),
            json.dumps(dict(details or {}), sort_keys=True, default=str),
        ],
    )
    return event_id
