"""pandera quality summaries, F1 drop, and the API numbers read from Prometheus text."""

from __future__ import annotations

import pandas as pd
import pytest

from dataplatform.monitor.performance import (
    api_checks,
    api_stats,
    f1_check,
    f1_score,
    histogram_quantile,
    parse_prometheus_text,
)
from dataplatform.monitor.quality import RAW_COMMITS, check_frame


def _raw(n: int = 200) -> pd.DataFrame:
    ts = pd.Timestamp("2024-01-01T12:00:00", tz="UTC")
    return pd.DataFrame(
        {
            "repo": ["pallets/flask"] * n,
            "commit_sha": [f"{i:040x}" for i in range(n)],
            "parent_count": [1] * n,
            "author_name": ["a"] * n,
            "author_email": ["a@example.org"] * n,
            "committer_name": ["c"] * n,
            "committer_email": [None] * n,  # nullable by contract
            "authored_at": [ts] * n,
            "author_utc_offset_minutes": [60] * n,
            "committed_at": [ts] * n,
            "committer_utc_offset_minutes": [None] * n,
            "message": ["fix"] * n,
            "files_changed": [1] * n,
            "lines_added": [2] * n,
            "lines_deleted": [0] * n,
            "author_email_hash": ["ab" * 32] * n,
            "batch_id": ["b1"] * n,
        }
    )


def test_a_clean_batch_is_ok() -> None:
    report = check_frame(_raw(), RAW_COMMITS)
    assert report.severity == "ok"
    assert all(c.violation_rate == 0 for c in report.columns)
    email = next(c for c in report.columns if c.column == "committer_email")
    assert email.null_rate == 1.0  # reported, allowed by the contract: no violation
    assert email.violation_rate == 0.0


def test_one_percent_is_the_limit_per_column() -> None:
    frame = _raw(200)
    frame.loc[0:1, "commit_sha"] = "not-a-sha"  # 2 of 200 = 1.0 %: not above
    frame.loc[0:2, "lines_added"] = -5  # 3 of 200 = 1.5 %: alert
    report = check_frame(frame, RAW_COMMITS)
    by_col = {c.column: c for c in report.columns}
    assert by_col["commit_sha"].violation_rate == pytest.approx(0.01)
    assert by_col["commit_sha"].severity() == "ok"
    assert by_col["lines_added"].violation_rate == pytest.approx(0.015)
    assert by_col["lines_added"].severity() == "alert"
    assert report.severity == "alert"
    check = next(c for c in report.checks() if c.name == "quality:lines_added")
    assert check.severity == "alert"
    assert "in_range" in check.detail


def test_nulls_where_not_allowed_are_violations_and_missing_columns_alert() -> None:
    frame = _raw(100)
    frame.loc[0:4, "message"] = None
    report = check_frame(frame.drop(columns=["batch_id"]), RAW_COMMITS)
    message = next(c for c in report.columns if c.column == "message")
    assert message.null_rate == pytest.approx(0.05)
    assert message.violation_rate == pytest.approx(0.05)
    assert report.frame_errors == ("column 'batch_id' missing",)
    assert any(c.name == "quality:schema" and c.severity == "alert" for c in report.checks())


def test_f1_and_relative_drop_levels() -> None:
    assert f1_score([1, 1, 0, 0], [1, 0, 0, 1]) == pytest.approx(0.5)
    assert f1_score([0, 0], [0, 0]) == 0.0
    kw = {"floor": 0.8, "alert_drop": 0.05, "critical_drop": 0.10, "rows": 100}
    assert f1_check(0.95, model_f1=0.96, **kw).severity == "ok"
    assert f1_check(0.90, model_f1=0.96, **kw).severity == "alert"  # 6.25 % drop
    assert f1_check(0.85, model_f1=0.96, **kw).severity == "critical"
    # a forced model with a poor F1 of its own is held to the promotion floor
    forced = f1_check(0.40, model_f1=0.41, **kw)
    assert forced.severity == "critical"
    assert forced.value == pytest.approx(0.5)
    assert "promotion floor" in forced.detail


METRICS = """
# HELP dataplatform_http_requests_total HTTP requests by route and status.
# TYPE dataplatform_http_requests_total counter
dataplatform_http_requests_total{route="/api/v1/predict",status="200"} 97.0
dataplatform_http_requests_total{route="/api/v1/predict",status="503"} 3.0
dataplatform_http_requests_total{route="/health",status="200"} 500.0
dataplatform_http_request_duration_seconds_bucket{le="0.1",route="/api/v1/predict"} 50.0
dataplatform_http_request_duration_seconds_bucket{le="0.5",route="/api/v1/predict"} 90.0
dataplatform_http_request_duration_seconds_bucket{le="1.0",route="/api/v1/predict"} 100.0
dataplatform_http_request_duration_seconds_bucket{le="+Inf",route="/api/v1/predict"} 100.0
"""


def test_api_stats_from_prometheus_text() -> None:
    stats = api_stats(parse_prometheus_text(METRICS))
    assert stats.requests == 100  # /health excluded
    assert stats.error_rate == pytest.approx(0.03)
    # p95: rank 95 lies in (0.5, 1.0] holding 10 -> 0.5 + 0.5 * 5/10
    assert stats.p95_seconds == pytest.approx(0.75)
    checks = {
        c.name: c
        for c in api_checks(stats, error_alert=0.01, error_critical=0.05, latency_p95_ms=500)
    }
    assert checks["api_error_rate"].severity == "alert"
    assert checks["api_latency_p95_ms"].severity == "alert"
    assert checks["api_latency_p95_ms"].value == pytest.approx(750)


def test_histogram_quantile_edge_cases() -> None:
    assert histogram_quantile(0.95, {}) is None
    assert histogram_quantile(0.95, {1.0: 0.0, float("inf"): 0.0}) is None
    assert histogram_quantile(0.5, {1.0: 0.0, float("inf"): 10.0}) == 1.0  # beyond last bucket
    no_traffic = api_stats([])
    assert no_traffic.error_rate is None
