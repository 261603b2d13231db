"""`create_app(settings)`: the serving API. Building the app does no I/O; the lifespan does.

Startup: point MLflow at the registry, load the versions behind `production`/`staging` of every
served model, start the scoring thread, the prediction-log writer and the alias poller.
Shutdown: stop the poller, finish queued scoring, flush the prediction log.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataplatform import __version__
from dataplatform.serve.api.deps import ServeState
from dataplatform.serve.api.routes import admin, health, oip, predict
from dataplatform.serve.api.scoring import on_shadow
from dataplatform.serve.metrics import MetricsMiddleware, ServeMetrics
from dataplatform.serve.prediction_log import PredictionLogWriter
from dataplatform.serve.predictor import LoadedModel, ModelSlots, Scorer
from dataplatform.serve.reloader import Loader, ReloadChange, Reloader
from dataplatform.serve.settings import ServeSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from dataplatform.adapters.warehouse import Warehouse
    from dataplatform.config import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Real-time scoring of git commits with the registry's `production` model.

* `/api/v1/predict` — commits in the ingestion record's shape;
* `/v2/...` — Open Inference Protocol v2 (KServe data plane, REST);
* `/metrics` — Prometheus; `/health`, `/ready`, `/api/v1/status` — operations.
"""


def create_app(
    settings: Settings,
    serve_settings: ServeSettings | None = None,
    *,
    client: MlflowClient | None = None,
    open_warehouse: Callable[[], Warehouse] | None = None,
    loader: Loader | None = None,
) -> FastAPI:
    """The FastAPI app serving `serve_settings.models` (default: env `DATAPLATFORM_SERVE_*`).

    `client` (an MlflowClient on the registry) defaults to `configure_mlflow(settings)` at
    startup; `open_warehouse` defaults to `adapters.warehouse.open_warehouse(settings)`.
    """
    serve = serve_settings or ServeSettings()
    metrics = ServeMetrics()
    slots = ModelSlots()
    scorer = Scorer(max_batch_rows=serve.max_batch_rows, on_shadow=on_shadow)

    def _open() -> Warehouse:
        from dataplatform.adapters.warehouse import open_warehouse as default_open

        return (open_warehouse or (lambda: default_open(settings)))()

    writer = PredictionLogWriter(
        _open,
        queue_size=serve.prediction_log_queue_size,
        batch_rows=serve.prediction_log_batch_rows,
        flush_interval_s=serve.prediction_log_flush_interval_s,
        on_dropped=metrics.prediction_log_dropped.inc,
        on_written=metrics.prediction_log_written.inc,
    )
    state = ServeState(settings, serve, metrics, slots, scorer, writer, _open, client=client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_start, state, loader)
        try:
            yield
        finally:
            await run_in_threadpool(_stop, state)

    app = FastAPI(
        title="dataplatform serve",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.serve = state
    for module in (health, predict, oip, admin):
        app.include_router(module.router)
    _install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=serve.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _start(state: ServeState, loader: Loader | None) -> None:
    """Load the models and start the background work; then freeze the heap.

    With mlflow, sklearn and pandas loaded the heap holds ~200k objects; a full cyclic-GC pass
    walks them all and stalls the event loop for 50-200 ms (the serving p99). `gc.freeze()`
    moves everything alive at startup (and each newly loaded model) out of the collector's
    sight. Frozen objects are still freed by reference counting; only cycles among them stay.
    """
    if state.client is None:
        from dataplatform.adapters.registry import configure_mlflow

        state.client = configure_mlflow(state.settings)

    def on_change(change: ReloadChange, model: LoadedModel | None) -> None:
        state.metrics.reloads.labels(change.model, change.alias, change.outcome).inc()
        if change.outcome != "failed":
            semver = model.semver if model else None
            state.metrics.set_model_info(change.model, change.alias, change.version, semver)
        if change.outcome == "swapped":
            gc.freeze()  # the new model's objects too (no collection: it would stall requests)

    kwargs: dict[str, Any] = {"loader": loader} if loader else {}
    state.reloader = Reloader(
        state.client,
        state.slots,
        state.serve.models,
        interval_s=state.serve.reload_interval_s,
        on_change=on_change,
        **kwargs,
    )
    state.scorer.start()
    state.log_writer.start()
    try:
        state.reloader.sync()  # not fatal: /ready says 503 until a production version loads
    except Exception:
        log.exception("initial model load failed; the poller keeps trying")
    state.reloader.start()
    gc.collect()
    gc.freeze()  # see _start's docstring


def _stop(state: ServeState) -> None:
    if state.reloader is not None:
        state.reloader.stop()
    state.scorer.stop()
    state.log_writer.stop()


# --- errors -----------------------------------------------------------------------------------
def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Field errors without the offending input (it may be huge, or personal data).
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        body: dict[str, Any] = {"detail": detail}
        if request.url.path.startswith("/v2/"):
            body["error"] = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail)
        return JSONResponse(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body: dict[str, Any] = {"detail": exc.detail}
        if request.url.path.startswith("/v2/"):
            body["error"] = str(exc.detail)
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error", "error": "internal error"}, 500)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, f"request body over {limit} bytes")


class BodySizeLimit:
    """413 for bodies over `max_bytes`: by Content-Length up front, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await _reply(send, 413, f"request body over {self.max_bytes} bytes")
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


async def _reply(send: Send, code: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail, "error": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
