"""record_event / AuditLog / atomic on the embedded DuckDB warehouse (no roles there), the
missing-table policy of AuditLog, and the input checks."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dataplatform.adapters.audit import atomic
from dataplatform.adapters.warehouse import DuckDBWarehouse
from dataplatform.security.audit import (
    AuditAction,
    AuditEntry,
    AuditError,
    AuditLog,
    AuditUnavailable,
    ensure_audit_table,
    record_event,
)


def test_record_event_on_duckdb_appends_rows(tmp_path: Path) -> None:
    with DuckDBWarehouse(tmp_path / "wh.duckdb") as wh:
        first = record_event(wh, AuditAction.ROLLBACK, "commit-classifier/v2", actor="alice")
        second = record_event(
            wh, "model.approve", "commit-classifier/v3", actor="bob", details={"ticket": "OPS-1"}
        )
        rows = wh.query_df(
            "SELECT event_id, action, subject, actor, details FROM audit.events ORDER BY actor"
        )
    assert list(rows["event_id"]) == [first, second]
    assert list(rows["action"]) == ["model.rollback", "model.approve"]
    assert json.loads(rows["details"][1]) == {"ticket": "OPS-1"}


@pytest.mark.parametrize("action", ["", "promote", "Model.Promote", "model.", "model promote"])
def test_malformed_action_is_refused(tmp_path: Path, action: str) -> None:
    with DuckDBWarehouse(tmp_path / "wh.duckdb") as wh, pytest.raises(AuditError):
        record_event(wh, action, "x")


def test_empty_subject_is_refused(tmp_path: Path) -> None:
    with DuckDBWarehouse(tmp_path / "wh.duckdb") as wh, pytest.raises(AuditError):
        record_event(wh, AuditAction.MIGRATION, "")


def test_security_module_re_exports_the_adapter() -> None:
    from dataplatform.adapters import audit as adapter
    from dataplatform.security import audit

    assert audit.record_event is adapter.record_event
    assert audit.insert_event is adapter.insert_event
    assert audit.AuditAction is adapter.AuditAction


def test_atomic_rolls_back_every_write_of_the_block(tmp_path: Path) -> None:
    with DuckDBWarehouse(tmp_path / "wh.duckdb") as wh:
        ensure_audit_table(wh)

        def failing_block() -> None:
            with atomic(wh):
                record_event(wh, AuditAction.PROMOTION, "models:/m/1", actor="ci")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            failing_block()
        with atomic(wh):
            record_event(wh, AuditAction.PROMOTION, "models:/m/2", actor="ci")
        rows = wh.query_df("SELECT subject FROM audit.events")
    assert list(rows["subject"]) == ["models:/m/2"]


class _UnmigratedPostgres:
    """A PostgreSQL-like warehouse whose catalog has no audit.events (never migrated)."""

    backend = "postgres"

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.statements.append(sql)

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        assert "pg_catalog.pg_class" in sql
        return pd.DataFrame({"n": [0]})


ENTRY = AuditEntry(AuditAction.PROMOTION, "models:/m/1", "ci", {"to_alias": "staging"})


def test_missing_table_is_an_error_when_required() -> None:
    wh = _UnmigratedPostgres()
    with pytest.raises(AuditUnavailable, match="dataplatform db migrate"):
        AuditLog(wh, required=True).record([ENTRY])
    assert wh.statements == []


def test_missing_table_only_warns_when_not_required(caplog: pytest.LogCaptureFixture) -> None:
    wh = _UnmigratedPostgres()
    with caplog.at_level(logging.WARNING, logger="dataplatform.adapters.audit"):
        assert AuditLog(wh, required=False).record([ENTRY, ENTRY]) == []
    assert "2 audit event(s) not recorded" in caplog.text
    assert wh.statements == []


def test_audit_log_records_entries_in_order_on_duckdb(tmp_path: Path) -> None:
    with DuckDBWarehouse(tmp_path / "wh.duckdb") as wh:
        log = AuditLog(wh, required=False)  # DuckDB: the table is always there
        log.ensure()
        second = AuditEntry(AuditAction.ARCHIVE, "models:/m/0", "ci", {"replaced_by": "1"})
        ids = log.record([ENTRY, second])
        rows = wh.query_df("SELECT event_id, action, details FROM audit.events")
    assert sorted(ids) == sorted(rows["event_id"])
    assert set(rows["action"]) == {"model.promote", "model.archive"}
