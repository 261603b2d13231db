"""Model and API performance: F1 drop against the model's reference, API error rate and p95.

Pure functions over arrays and Prometheus text; the runner fetches the data.

* F1 drop = (reference F1 - recent F1) / reference F1. The reference is the model's own held-out
  F1 (its training run's ``f1_score``), but never less than the promotion floor (the threshold
  file's ``gates.min_f1``): a version that reached production by a forced approval is still held
  to the quality production promises.
* API error rate = 5xx responses / all responses of ``dataplatform_http_requests_total``; p95 from
  the ``dataplatform_http_request_duration_seconds`` histogram, interpolated like PromQL's
  ``histogram_quantile``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dataplatform.monitor.policy import CheckResult, level

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
REQUESTS_TOTAL = "dataplatform_http_requests_total"
DURATION_BUCKET = "dataplatform_http_request_duration_seconds_bucket"
# Routes that only probe or scrape the service: they say nothing about what users get.
PROBE_ROUTES = frozenset({"/metrics", "/health", "/ready", "/v2/health/live", "/v2/health/ready"})


def f1_score(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """F1 of the positive class (0.0 when there are no true and no predicted positives)."""
    truth = np.asarray(y_true).astype(bool)
    pred = np.asarray(y_pred).astype(bool)
    tp = int(np.count_nonzero(truth & pred))
    fp = int(np.count_nonzero(~truth & pred))
    fn = int(np.count_nonzero(truth & ~pred))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def reference_f1(model_f1: float | None, floor: float | None) -> float | None:
    """What the recent F1 is compared with: max(model's own F1, promotion floor)."""
    known = [v for v in (model_f1, floor) if v is not None and not math.isnan(v)]
    return max(known) if known else None


def f1_check(
    recent_f1: float,
    *,
    model_f1: float | None,
    floor: float | None,
    alert_drop: float,
    critical_drop: float,
    rows: int,
) -> CheckResult:
    """Relative F1 drop of the recent window against `reference_f1` (alert / critical)."""
    reference = reference_f1(model_f1, floor)
    if reference is None or reference <= 0:
        return CheckResult(
            "f1_drop", "performance", "ok", None, alert_drop,
            f"recent F1 {recent_f1:.4f} on {rows} commits; no reference F1 to compare with",
        )  # fmt: skip
    drop = (reference - recent_f1) / reference
    source = (
        f"model F1 {model_f1:.4f}"
        if model_f1 is not None and reference == model_f1
        else f"promotion floor {floor:.4f}"
        + (f" (model's own F1 {model_f1:.4f} is below it)" if model_f1 is not None else "")
    )
    return CheckResult(
        name="f1_drop",
        kind="performance",
        severity=level(drop, alert_drop, critical_drop),
        value=drop,
        threshold=alert_drop,
        detail=(
            f"recent F1 {recent_f1:.4f} on {rows} labelled commits vs reference "
            f"{reference:.4f} from {source}; critical above {critical_drop:.0%}"
        ),
    )


# --- Prometheus text -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sample:
    """One sample line of the text exposition format."""

    name: str
    labels: dict[str, str]
    value: float


def parse_prometheus_text(text: str) -> list[Sample]:
    """Samples of a /metrics page (comments and malformed lines are skipped)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        samples.append(Sample(match["name"], labels, value))
    return samples


@dataclass(frozen=True, slots=True)
class ApiStats:
    """Totals since the service started (Prometheus counters are cumulative)."""

    requests: float
    errors: float  # 5xx
    p95_seconds: float | None

    @property
    def error_rate(self) -> float | None:
        """5xx share; None without traffic."""
        return self.errors / self.requests if self.requests else None


def api_stats(
    samples: Iterable[Sample], *, exclude_routes: frozenset[str] = PROBE_ROUTES
) -> ApiStats:
    """Requests, 5xx and p95 latency over the routes users call (probes excluded)."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for s in samples:
        route = s.labels.get("route", "")
        if route in exclude_routes:
            continue
        if s.name == REQUESTS_TOTAL:
            requests += s.value
            if s.labels.get("status", "").startswith("5"):
                errors += s.value
        elif s.name == DURATION_BUCKET:
            le = float(s.labels.get("le", "nan").replace("+Inf", "inf"))
            buckets[le] = buckets.get(le, 0.0) + s.value
    return ApiStats(requests, errors, histogram_quantile(0.95, buckets))


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """PromQL's histogram_quantile over cumulative `buckets` (upper bound -> count)."""
    if not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[math.inf]
    if total <= 0:
        return None
    rank_ = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank_:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its upper bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank_ - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return None


def api_checks(
    stats: ApiStats, *, error_alert: float, error_critical: float, latency_p95_ms: float
) -> list[CheckResult]:
    """Error-rate (alert / critical) and p95 latency (alert) checks of the API."""
    rate = stats.error_rate
    p95_ms = None if stats.p95_seconds is None else stats.p95_seconds * 1000
    return [
        CheckResult(
            "api_error_rate", "api", level(rate, error_alert, error_critical), rate, error_alert,
            f"{stats.errors:.0f} of {stats.requests:.0f} requests answered 5xx; critical above "
            f"{error_critical:.0%}" if rate is not None else "no requests yet",
        ),
        CheckResult(
            "api_latency_p95_ms", "api", level(p95_ms, latency_p95_ms), p95_ms, latency_p95_ms,
            "p95 over all requests since the service started" if p95_ms is not None
            else "no latency samples yet",
        ),
    ]  # fmt: skip
