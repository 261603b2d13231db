"""Append-only audit log of platform actions: ``audit.events`` in the warehouse.

Every stage may record what it did here (the registry: promotions, approvals, refusals, archives,
rollbacks; security: rotations, migrations), so the writer is an adapter like the warehouse and
no stage imports another to use it. `dataplatform.security.audit` re-exports it.

On PostgreSQL the table comes from migration 0004: application roles may INSERT (and engineers
SELECT) but never UPDATE, DELETE or TRUNCATE (revoked, and a trigger raises). On DuckDB (the
embedded dev default) the writer creates the table on first use; there are no roles there.

* `record_event(warehouse, action, subject, ...)` appends one event through a warehouse adapter.
* `insert_event(conn, ...)` does the same on a bare psycopg connection (migrate, rotate).
* `AuditLog` is what a stage holds: `record_event` on one warehouse plus the policy for a
  PostgreSQL database that lacks the table (fail, or warn and skip: see `AuditLog`).
* `atomic(warehouse)` runs several writes (a history row and its audit rows) as one transaction.
"""

from __future__ import annotations

import getpass
import json
import logging
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

ACTION_PATTERN = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
AUDIT_TABLE = "audit.events"

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

# Catalog lookup that needs no privilege on the table (information_schema would hide it from a
# role that may only INSERT).
_PG_TABLE_EXISTS = (
    "SELECT count(*) AS n FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'audit' AND c.relname = 'events'"
)


class AuditAction(StrEnum):
    """Actions the platform records (free-form ``area.verb`` names are accepted too)."""

    PROMOTION = "model.promote"
    APPROVAL = "model.approve"
    PROMOTION_REFUSED = "model.promote_refused"
    ARCHIVE = "model.archive"
    ROLLBACK = "model.rollback"
    ROLLBACK_REFUSED = "model.rollback_refused"
    ROTATION = "secret.rotate"
    MIGRATION = "db.migrate"


class AuditError(ValueError):
    """An audit event is malformed."""


class AuditUnavailable(RuntimeError):
    """The audit log cannot be written (table missing where it is required)."""


class SqlWarehouse(Protocol):
    """The slice of a warehouse adapter the audit writer uses (``?`` placeholders)."""

    backend: str

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any: ...


def _check(action: str, subject: str) -> None:
    if not ACTION_PATTERN.match(action):
        raise AuditError(f"audit action {action!r} must look like 'area.verb'")
    if not subject:
        raise AuditError("audit subject must not be empty")


def default_actor() -> str:
    """The OS user name, or "unknown" when there is none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with an arbitrary uid)
        return "unknown"


def _payload(details: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(details or {}), sort_keys=True, default=str)


def ensure_audit_table(warehouse: SqlWarehouse) -> None:
    """DuckDB: create schema `audit` and the table when missing. PostgreSQL: nothing (0004)."""
    if warehouse.backend == "duckdb":
        for statement in DUCKDB_AUDIT_DDL:
            warehouse.execute(statement)


def record_event(
    warehouse: SqlWarehouse,
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
    who = actor or default_actor()
    payload = _payload(details)
    if warehouse.backend == "duckdb":
        ensure_audit_table(warehouse)
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
        [event_id, action, subject, actor or default_actor(), _payload(details)],
    )
    return event_id


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One event to record: what `AuditLog.record` takes."""

    action: AuditAction | str
    subject: str
    actor: str
    details: Mapping[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None


class AuditLog:
    """`record_event` on one warehouse, with a policy for a PostgreSQL database without the table.

    `required=True` (the prod profile, and the default): a missing ``audit.events`` is an error
    like any other failed insert, so the caller's action fails. `required=False` (dev/staging on
    a PostgreSQL database that was never migrated): the writer logs one warning and records
    nothing. Only a *missing* table is tolerated; when the table exists, every failure (no INSERT
    grant, a constraint) propagates whatever the policy.
    """

    def __init__(self, warehouse: SqlWarehouse, *, required: bool = True) -> None:
        self.warehouse = warehouse
        self.required = required
        self._available: bool | None = None  # PostgreSQL: is the table there? (asked once)

    def ensure(self) -> None:
        """Create the DuckDB table now (outside any transaction); no-op on PostgreSQL."""
        ensure_audit_table(self.warehouse)

    def available(self) -> bool:
        """True when events can be written (always on DuckDB; the table exists on PostgreSQL)."""
        if self.warehouse.backend == "duckdb":
            return True
        if self._available is None:
            query = getattr(self.warehouse, "query_df", None)
            if query is None:
                return True  # cannot tell: let the insert decide
            self._available = bool(int(query(_PG_TABLE_EXISTS)["n"].iloc[0]))
        return self._available

    def record(self, entries: Sequence[AuditEntry]) -> list[str]:
        """Append `entries` in order; returns their event ids ([] when skipped by the policy)."""
        if not entries:
            return []
        if not self.available():
            if self.required:
                raise AuditUnavailable(
                    "audit.events does not exist in this database: run `dataplatform db migrate`"
                )
            log.warning(
                "audit.events does not exist (database not migrated): %d audit event(s) not "
                "recorded; run `dataplatform db migrate`",
                len(entries),
            )
            return []
        return [
            record_event(
                self.warehouse,
                e.action,
                e.subject,
                actor=e.actor,
                details=e.details,
                occurred_at=e.occurred_at,
            )
            for e in entries
        ]


@contextmanager
def atomic(warehouse: SqlWarehouse) -> Iterator[None]:
    """Run the block's `warehouse.execute` calls as one transaction (all or nothing).

    PostgreSQL: psycopg's ``connection.transaction()`` (a savepoint when already inside one).
    DuckDB (and any other SQL adapter): ``BEGIN TRANSACTION`` ... ``COMMIT`` / ``ROLLBACK``.
    The adapter's connection must not be used by another thread meanwhile (the registry holds
    its per-model lock around it).
    """
    connection = getattr(warehouse, "connection", None)
    if warehouse.backend == "postgres" and connection is not None:
        with connection.transaction():
            yield
        return
    warehouse.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        warehouse.execute("ROLLBACK")
        raise
    warehouse.execute("COMMIT")
