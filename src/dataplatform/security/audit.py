"""Append-only audit log of platform actions: ``audit.events`` (re-exported from the adapter).

The writer lives in `dataplatform.adapters.audit` so that every stage (the registry records
promotions, approvals, refusals, archives and rollbacks) can use it without importing this
package; migrate and rotate keep importing it from here.

On PostgreSQL the table comes from migration 0004: application roles may INSERT (and engineers
SELECT) but never UPDATE, DELETE or TRUNCATE (revoked, and a trigger raises). On DuckDB (the
embedded dev default) `record_event` creates the table on first use; there are no roles there.

`record_event(warehouse, action, subject, ...)` is what the stages call, e.g.
``record_event(wh, AuditAction.ROTATION, "postgres_password", actor="ops", details={...})``.
"""

from __future__ import annotations

from dataplatform.adapters.audit import (
    ACTION_PATTERN,
    DUCKDB_AUDIT_DDL,
    AuditAction,
    AuditEntry,
    AuditError,
    AuditLog,
    AuditUnavailable,
    ensure_audit_table,
    insert_event,
    record_event,
)

__all__ = [
    "ACTION_PATTERN",
    "DUCKDB_AUDIT_DDL",
    "AuditAction",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditUnavailable",
    "ensure_audit_table",
    "insert_event",
    "record_event",
]
