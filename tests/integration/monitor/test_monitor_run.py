"""`run_monitor` against a real DuckDB warehouse and a real MLflow store (no dbt: the mart is
written from the shared feature code, which the parity test keeps equal to dbt's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dataplatform.adapters.warehouse import DuckDBWarehouse
from dataplatform.config import Settings, get_settings
from dataplatform.monitor.quality import check_feature_mart
from dataplatform.monitor.runner import MonitorDeps, MonitorError, run_monitor
from dataplatform.registry.gates import Approval
from dataplatform.registry.lifecycle import open_lifecycle
from dataplatform.registry.register import register_model
from dataplatform.registry.thresholds import load_thresholds
from dataplatform.train.lineage import Lineage
from dataplatform.train.specs import COMMIT_CLASSIFIER
from dataplatform.train.trainer import train_model

pytestmark = pytest.mark.slow

NAME = "commit-classifier"
LINEAGE = Lineage(git_commit="0" * 40, git_branch="main")


def _deps(rolled: list[tuple[str, str]] | None = None) -> MonitorDeps:
    t = load_thresholds().for_model(NAME)

    def rollback(name: str, reason: str) -> Any:
        assert rolled is not None
        rolled.append((name, reason))
        return type("R", (), {"from_version": "2", "to_version": "1"})()

    return MonitorDeps(t.monitoring, f1_floor=t.gates.min_f1, rollback=rollback)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, flask_feature_frame: pd.DataFrame) -> Settings:
    """A home whose production model is v1 trained on flask; the mart holds flask's commits."""
    import os

    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    settings = get_settings(
        home=tmp_path_factory.mktemp("home"), monitor_window_rows=800, monitor_confirm_windows=2
    )
    frame = flask_feature_frame
    with DuckDBWarehouse(settings.warehouse_path) as wh:
        wh.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        wh.connection.register("_mart", frame)
        wh.execute("CREATE TABLE analytics.commit_features AS SELECT * FROM _mart")
    result = train_model(COMMIT_CLASSIFIER, frame, settings, lineage=LINEAGE)
    version = str(register_model(settings, result, COMMIT_CLASSIFIER).version)
    with open_lifecycle(settings) as lc:
        out = lc.promote(NAME, version, "production", actor="test", approval=Approval("a", "ok"))
        assert out.status == "promoted", [r.line() for r in out.gate_results]
    return settings


def test_monitor_reports_quality_drift_performance_and_records_them(home: Settings) -> None:
    outcome = run_monitor(home, NAME, _deps(), html_report=True)
    names = {c.name for c in outcome.checks}
    assert "f1_drop" in names
    assert "prediction_kl" in names
    assert {f"psi:{f}" for f in COMMIT_CLASSIFIER.feature_columns} <= names
    assert {"quality:hour_of_day", "quality:commit_key"} <= names
    assert outcome.window_rows == 800
    assert outcome.recent_f1 is not None
    assert outcome.recent_f1 > 0.9
    assert outcome.decision.verdict == "ok"  # one window can never confirm anything (k=2)
    assert outcome.exit_code == 0
    # the Evidently report, the MLflow run, the Prometheus text file
    assert outcome.report_path is not None
    assert outcome.report_path.stat().st_size > 10_000
    assert "<html" in outcome.report_path.read_text(encoding="utf-8")[:2000].lower()
    assert outcome.mlflow_run_id
    prom = Path(home.home / "metrics" / "monitor.prom").read_text(encoding="utf-8")
    assert 'dataplatform_feature_psi{model="commit-classifier",version="1",feature=' in prom
    assert "dataplatform_prediction_kl{" in prom
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=home.tracking_uri).get_run(outcome.mlflow_run_id)
    assert "f1_drop" in run.data.metrics
    assert run.data.tags["verdict"] == "ok"
    with DuckDBWarehouse(home.warehouse_path) as wh:
        runs = wh.query_df(
            "SELECT * FROM monitoring.monitor_runs WHERE run_id = ?", [outcome.run_id]
        )
        checks = wh.query_df("SELECT * FROM monitoring.checks WHERE run_id = ?", [outcome.run_id])
    assert len(runs) == 1
    assert runs["verdict"].iloc[0] == "ok"
    assert len(checks) == len(outcome.checks)


def test_api_metrics_snapshot_drives_the_error_rate_and_k_of_n_confirms(home: Settings) -> None:
    metrics = "\n".join(
        [
            'dataplatform_http_requests_total{route="/api/v1/predict",status="200"} 90',
            'dataplatform_http_requests_total{route="/api/v1/predict",status="500"} 10',
            'dataplatform_http_requests_total{route="/metrics",status="200"} 1000',
        ]
    )
    rolled: list[tuple[str, str]] = []
    first = run_monitor(
        home, NAME, _deps(rolled), metrics_text=metrics, auto_rollback=True,
        html_report=False, log_to_mlflow=False,
    )  # fmt: skip
    errors = next(c for c in first.checks if c.name == "api_error_rate")
    assert errors.value == pytest.approx(0.10)  # probes excluded from the denominator
    assert errors.severity == "critical"
    # earlier windows of this version had no error-rate check: one critical is not confirmed
    assert first.decision.pending.get("api_error_rate") == "critical"
    assert not rolled
    second = run_monitor(
        home, NAME, _deps(rolled), metrics_text=metrics, auto_rollback=True,
        html_report=False, log_to_mlflow=False,
    )  # fmt: skip
    assert second.decision.verdict == "critical"
    assert second.exit_code == 2
    assert rolled
    assert "api_error_rate" in rolled[0][1]
    assert second.incident is not None
    assert second.incident.action_status == "done"
    with DuckDBWarehouse(home.warehouse_path) as wh:
        incidents = wh.query_df("SELECT * FROM monitoring.incidents")
    assert list(incidents["monitor_run_id"]) == [second.run_id]
    assert "api_error_rate" in incidents["evidence_json"].iloc[0]


def test_feature_mart_quality_is_clean_on_real_commits(home: Settings) -> None:
    with DuckDBWarehouse(home.warehouse_path) as wh:
        report = check_feature_mart(wh)
    assert report.rows > 1000
    assert report.severity == "ok", [c for c in report.columns if c.violation_rate]


def test_no_production_version_is_a_clear_error(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path / "empty")
    with pytest.raises(MonitorError, match="production"):
        run_monitor(settings, "no-such-model", _deps())
