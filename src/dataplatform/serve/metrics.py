"""Prometheus metrics of the service, on a registry of its own (one per app, no global state).

Names: `dataplatform_http_request_duration_seconds` (histogram, label route),
`dataplatform_http_requests_total` (route, status), `dataplatform_predictions_total` (model, class),
`dataplatform_model_info` (model, version, semver, alias), `dataplatform_model_reloads_total`
(model, alias, outcome), `dataplatform_prediction_log_dropped_total`, plus shadow counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Milliseconds matter here (target p99 <= 10 ms), so the low buckets are dense.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "MetricsMiddleware", "ServeMetrics"]


class ServeMetrics:
    """Every metric of one app instance."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.request_duration = Histogram(
            "dataplatform_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "dataplatform_http_requests", "HTTP requests by route and status.",
            ["route", "status"], registry=r,
        )  # fmt: skip
        self.predictions = Counter(
            "dataplatform_predictions", "Predictions returned, by model and class.",
            ["model", "class"], registry=r,
        )  # fmt: skip
        self.model_info = Gauge(
            "dataplatform_model_info", "Loaded model versions (value 1).",
            ["model", "version", "semver", "alias"], registry=r,
        )  # fmt: skip
        self.reloads = Counter(
            "dataplatform_model_reloads", "Model (re)loads by outcome (swapped, removed, failed).",
            ["model", "alias", "outcome"], registry=r,
        )  # fmt: skip
        self.prediction_log_dropped = Counter(
            "dataplatform_prediction_log_dropped",
            "Prediction-log rows dropped (queue full or warehouse write failed).",
            registry=r,
        )
        self.prediction_log_written = Counter(
            "dataplatform_prediction_log_written",
            "Prediction-log rows written to the warehouse.",
            registry=r,
        )
        self.shadow_predictions = Counter(
            "dataplatform_shadow_predictions", "Shadow predictions by agreement with production.",
            ["model", "agreement"], registry=r,
        )  # fmt: skip
        # Labelled children by label values: `labels()` takes a lock and builds keys each call.
        # (Safe to keep: these metrics never remove series.)
        self._prediction_children: dict[tuple[str, str], Any] = {}
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def count_prediction(self, model: str, label: str) -> None:
        """One more prediction of class `label` by `model`."""
        child = self._prediction_children.get((model, label))
        if child is None:
            child = self._prediction_children[(model, label)] = self.predictions.labels(
                model, label
            )
        child.inc()

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Latency and status of one HTTP request (`route` is the path template)."""
        children = self._request_children.get((route, status))
        if children is None:
            children = self._request_children[(route, status)] = (
                self.request_duration.labels(route),
                self.requests.labels(route, str(status)),
            )
        children[0].observe(seconds)
        children[1].inc()

    def set_model_info(
        self, model: str, alias: str, version: str | None, semver: str | None
    ) -> None:
        """One info series per (model, alias): the previous version's series is removed."""
        for labels in list(_series(self.model_info)):
            if labels.get("model") == model and labels.get("alias") == alias:
                self.model_info.remove(model, labels["version"], labels["semver"], alias)
        if version is not None:
            self.model_info.labels(model, version, semver or "", alias).set(1)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


def _series(metric: Gauge) -> Iterable[dict[str, str]]:
    for family in metric.collect():
        for sample in family.samples:
            yield dict(sample.labels)


class MetricsMiddleware:
    """ASGI middleware: latency and status per route template (not per raw path)."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label so random URLs cannot blow up the series count.
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(template, status, time.perf_counter() - started)
