"""The Helm chart's alert rules: `promtool test rules`, thresholds = the threshold file, and a
dashboard with the panels operators need."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from dataplatform.registry.thresholds import load_thresholds

ROOT = Path(__file__).resolve().parents[3]
FILES = ROOT / "helm" / "data-platform" / "files"
RULES = FILES / "prometheus-rules.yaml"
RULE_TESTS = FILES / "prometheus-rules.test.yaml"
DASHBOARD = ROOT / "helm" / "data-platform" / "dashboards" / "data-platform.json"
PROMTOOL = ROOT / "scripts" / "promtool.sh"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = subprocess.run(
        ["bash", str(PROMTOOL)], capture_output=True, text=True, timeout=600, check=False
    )
    if found.returncode != 0:
        pytest.skip(f"promtool unavailable: {found.stderr.strip()[-300:]}")
    return found.stdout.strip().splitlines()[-1]


def test_rules_pass_promtool_check(promtool: str) -> None:
    out = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_pass_their_promtool_unit_tests(promtool: str) -> None:
    out = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=FILES,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def _alerts() -> dict[str, dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def _threshold(expr: str) -> float:
    match = re.search(r">\s*([0-9.]+)\s*$", expr.strip())
    assert match, expr
    return float(match.group(1))


def test_rule_thresholds_are_the_threshold_files() -> None:
    m = load_thresholds().defaults.monitoring
    alerts = _alerts()
    assert _threshold(str(alerts["DataPlatformApiLatencyP95High"]["expr"])) == pytest.approx(
        m.latency_p95_ms / 1000
    )
    assert _threshold(str(alerts["DataPlatformApiErrorRateHigh"]["expr"])) == m.error_rate_alert
    assert (
        _threshold(str(alerts["DataPlatformApiErrorRateCritical"]["expr"])) == m.error_rate_critical
    )
    assert _threshold(str(alerts["DataPlatformFeatureDrift"]["expr"])) == m.psi_alert
    assert _threshold(str(alerts["DataPlatformPredictionDrift"]["expr"])) == m.kl_alert
    assert "dataplatform_pipeline_last_success_timestamp_seconds" in str(
        alerts["DataPlatformPipelineStale"]["expr"]
    )


def test_every_alert_is_exercised_by_the_promtool_tests() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    firing = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert set(_alerts()) <= firing


def test_dashboard_has_the_operators_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = " ".join(t.get("expr", "") for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in (
        "dataplatform_http_request_duration_seconds_bucket",  # latency
        'dataplatform_http_requests_total{status=~"5.."}',  # errors
        "rate(dataplatform_http_requests_total",  # throughput
        "dataplatform_feature_psi",  # feature drift
        "dataplatform_prediction_kl",  # prediction drift
        "dataplatform_model_info",  # model version over time
    ):
        assert metric in exprs, metric
