"""Shared state of one app instance and the FastAPI dependencies that hand it to routes."""

from __future__ import annotations

import hmac
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError

from dataplatform.serve.metrics import ServeMetrics
from dataplatform.serve.prediction_log import PredictionLogWriter
from dataplatform.serve.predictor import PRODUCTION, STAGING, LoadedModel, ModelSlots, Scorer
from dataplatform.serve.settings import ServeSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from dataplatform.adapters.warehouse import Warehouse
    from dataplatform.config import Settings
    from dataplatform.serve.reloader import Reloader


@dataclass
class DependencyCheck:
    """State of one dependency at `checked_at` (monotonic seconds)."""

    ok: bool
    detail: str
    checked_at: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServeState:
    """Everything the routes share; built by `create_app`, started by its lifespan."""

    settings: Settings
    serve: ServeSettings
    metrics: ServeMetrics
    slots: ModelSlots
    scorer: Scorer
    log_writer: PredictionLogWriter
    open_warehouse: Callable[[], Warehouse]
    client: MlflowClient | None = None
    reloader: Reloader | None = None
    rng: random.Random = field(default_factory=random.Random)
    _checks: dict[str, DependencyCheck] = field(default_factory=dict)
    _check_lock: threading.Lock = field(default_factory=threading.Lock)

    def route(self, model: str) -> tuple[LoadedModel, LoadedModel | None]:
        """(model that answers, shadow model or None) for one request: canary or production."""
        production = self.slots.get(model, PRODUCTION)
        staging = self.slots.get(model, STAGING)
        if production is None:
            if staging is not None and self.serve.canary_share >= 1:
                return staging, None
            from dataplatform.serve.api.routes.health import not_ready_reason

            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, not_ready_reason(self, model))
        if staging is None or staging.version == production.version:
            return production, None
        if self.serve.canary_share > 0 and self.rng.random() < self.serve.canary_share:
            return staging, None
        return production, staging if self.serve.shadow else None

    def sampled(self) -> bool:
        """Whether this request's predictions go to the prediction log."""
        rate = self.serve.prediction_log_sample_rate
        return rate >= 1 or (rate > 0 and self.rng.random() < rate)

    def dependency(self, name: str, probe: Callable[[], DependencyCheck]) -> DependencyCheck:
        """Result of `probe`, reused for `dependency_check_ttl_s` seconds."""
        with self._check_lock:
            cached = self._checks.get(name)
            now = time.monotonic()
            if cached and now - cached.checked_at < self.serve.dependency_check_ttl_s:
                return cached
            result = probe()
            self._checks[name] = result
            return result


async def get_state(request: Request) -> ServeState:
    """The `ServeState` of the app serving `request`.

    `async` on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
    hand-off per request (about 0.5 ms and GIL waits) for one attribute read.
    """
    state: ServeState = request.app.state.serve
    return state


def known_model(state: ServeState, name: str, *, loc: tuple[str, ...] | None = None) -> str:
    """`name` if this service serves it; else 422 (body field) or 404 (path)."""
    if name in state.serve.models:
        return name
    message = f"unknown model {name!r}; served: {', '.join(state.serve.models)}"
    if loc is not None:
        raise RequestValidationError([{"loc": loc, "msg": message, "type": "unknown_model"}])
    raise HTTPException(status.HTTP_404_NOT_FOUND, message)


async def require_admin(request: Request) -> None:
    """Bearer token check against `settings.admin_token` (constant-time compare)."""
    state: ServeState = request.app.state.serve
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    expected = state.settings.admin_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "admin token required",
            headers={"WWW-Authenticate": "Bearer"},
        )
