"""record_event on the embedded DuckDB warehouse (no roles there) and its input checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataplatform.adapters.warehouse import DuckDBWarehouse
from dataplatform.security.audit import AuditAction, AuditError, record_event


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
