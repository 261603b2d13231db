"""The `monitoring` schema: monitor_runs, checks, incidents (portable DDL, DuckDB and PostgreSQL).

`ensure_tables` is idempotent; `write_run` stores one monitor run with its checks;
`recent_windows` reads back the last windows of one model version for the k-of-n rule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dataplatform.monitor.policy import SEVERITIES, CheckResult, Decision, Window

if TYPE_CHECKING:
    from dataplatform.adapters.warehouse import Warehouse

MONITORING_TABLES = ("monitoring.monitor_runs", "monitoring.checks", "monitoring.incidents")
MONITORING_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS monitoring",
    """
    CREATE TABLE IF NOT EXISTS monitoring.monitor_runs (
        run_id          TEXT PRIMARY KEY,
        model_name      TEXT NOT NULL,
        model_version   TEXT,
        model_semver    TEXT,
        started_at      TIMESTAMPTZ NOT NULL,
        finished_at     TIMESTAMPTZ NOT NULL,
        window_rows     BIGINT NOT NULL,
        verdict         TEXT NOT NULL,
        window_severity TEXT NOT NULL,
        decision_json   TEXT NOT NULL,
        mlflow_run_id   TEXT,
        report_path     TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS monitoring.checks (
        run_id          TEXT NOT NULL,
        model_name      TEXT,
        model_version   TEXT,
        check_name      TEXT NOT NULL,
        kind            TEXT NOT NULL,
        severity        TEXT NOT NULL,
        value           DOUBLE PRECISION,
        threshold       DOUBLE PRECISION,
        detail          TEXT NOT NULL,
        checked_at      TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (run_id, check_name)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS monitoring.incidents (
        incident_id     TEXT PRIMARY KEY,
        model_name      TEXT NOT NULL,
        model_version   TEXT NOT NULL,
        detected_at     TIMESTAMPTZ NOT NULL,
        severity        TEXT NOT NULL,
        summary         TEXT NOT NULL,
        evidence_json   TEXT NOT NULL,
        action          TEXT NOT NULL,
        action_status   TEXT NOT NULL,
        rolled_back_to  TEXT,
        resolved_at     TIMESTAMPTZ,
        monitor_run_id  TEXT,
        notified        BOOLEAN NOT NULL,
        error           TEXT
    )
    """,
)


def ensure_tables(warehouse: Warehouse) -> None:
    """Create the monitoring schema and tables if missing."""
    warehouse.ensure_ddl(MONITORING_DDL, MONITORING_TABLES)


def write_checks(
    warehouse: Warehouse,
    run_id: str,
    checks: Sequence[CheckResult],
    *,
    checked_at: datetime,
    model_name: str | None = None,
    model_version: str | None = None,
) -> None:
    """Insert `checks` of one run (one multi-row INSERT)."""
    if not checks:
        return
    rows: list[Any] = []
    for c in checks:
        rows += [
            run_id, model_name, model_version, c.name, c.kind, c.severity, c.value, c.threshold,
            c.detail, checked_at,
        ]  # fmt: skip
    one = "(" + ", ".join("?" * 10) + ")"
    warehouse.execute(
        "INSERT INTO monitoring.checks (run_id, model_name, model_version, check_name, kind, "
        "severity, value, threshold, detail, checked_at) VALUES " + ", ".join(one for _ in checks),
        rows,
    )


def write_run(
    warehouse: Warehouse,
    *,
    run_id: str,
    model_name: str,
    model_version: str,
    model_semver: str | None,
    started_at: datetime,
    finished_at: datetime,
    window_rows: int,
    window_severity: str,
    decision: Decision,
    checks: Sequence[CheckResult],
    mlflow_run_id: str | None,
    report_path: str | None,
) -> None:
    """Store one monitor run and its checks."""
    decision_json = json.dumps(
        {
            "verdict": decision.verdict,
            "confirmed": decision.confirmed,
            "pending": decision.pending,
            "k": decision.k,
            "n": decision.n,
            "windows": decision.windows,
            "reasons": list(decision.reasons),
        },
        sort_keys=True,
    )
    warehouse.execute(
        "INSERT INTO monitoring.monitor_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id, model_name, model_version, model_semver, started_at, finished_at,
            window_rows, decision.verdict, window_severity, decision_json, mlflow_run_id,
            report_path,
        ],
    )  # fmt: skip
    write_checks(
        warehouse,
        run_id,
        checks,
        checked_at=finished_at,
        model_name=model_name,
        model_version=model_version,
    )


def recent_windows(
    warehouse: Warehouse, model_name: str, model_version: str, limit: int
) -> list[Window]:
    """The last `limit` stored windows of one model version, oldest first."""
    if limit <= 0:
        return []
    runs = warehouse.query_df(
        "SELECT run_id FROM monitoring.monitor_runs WHERE model_name = ? AND model_version = ? "
        "ORDER BY finished_at DESC LIMIT ?",
        [model_name, model_version, limit],
    )
    run_ids = [str(r) for r in runs["run_id"]][::-1]
    if not run_ids:
        return []
    rows = warehouse.query_df(
        "SELECT run_id, check_name, kind, severity, value, threshold, detail "
        "FROM monitoring.checks WHERE run_id IN (" + ", ".join("?" for _ in run_ids) + ")",
        run_ids,
    )
    windows = []
    for run_id in run_ids:
        mine = rows[rows["run_id"] == run_id]
        checks = tuple(
            CheckResult(
                name=str(r.check_name),
                kind=r.kind,
                severity=r.severity if r.severity in SEVERITIES else "ok",
                value=None if r.value is None or r.value != r.value else float(r.value),
                threshold=None
                if r.threshold is None or r.threshold != r.threshold
                else float(r.threshold),
                detail=str(r.detail),
            )
            for r in mine.itertuples(index=False)
        )
        windows.append(Window(checks, label=run_id))
    return windows
