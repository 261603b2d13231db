"""Liveness, readiness, status and Prometheus metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from dataplatform import __version__
from dataplatform.serve.api.deps import DependencyCheck, ServeState, get_state
from dataplatform.serve.metrics import CONTENT_TYPE
from dataplatform.serve.predictor import ALIASES, PRODUCTION

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: model loaded, warehouse and registry reachable",
    responses={503: {"description": "Not ready; the body says why"}},
)
async def ready(state: Annotated[ServeState, Depends(get_state)]) -> JSONResponse:
    body = await run_in_threadpool(readiness, state)
    code = status.HTTP_200_OK if body["ready"] else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body, status_code=code)


@router.get("/api/v1/status", summary="Service version, loaded models, dependencies")
async def service_status(state: Annotated[ServeState, Depends(get_state)]) -> dict[str, Any]:
    return await run_in_threadpool(describe, state)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: Annotated[ServeState, Depends(get_state)]) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


# --- checks (blocking; run in the threadpool) -------------------------------------------------
def model_states(state: ServeState) -> dict[str, str]:
    """Per served model: `loaded`, `no_production_version` (registry has none) or `loading`."""
    targets = state.reloader.targets if state.reloader is not None else {}
    out = {}
    for name in state.serve.models:
        if state.slots.get(name, PRODUCTION) is not None:
            out[name] = "loaded"
        elif (name, PRODUCTION) in targets and targets[(name, PRODUCTION)] is None:
            out[name] = "no_production_version"
        else:
            out[name] = "loading"
    return out


def models_loaded(state: ServeState) -> bool:
    """At least one model loaded, and every model with a production version loaded.

    A configured model nobody has promoted yet does not make the service unready (it answers
    503 on its own routes); one whose version failed to load does.
    """
    states = model_states(state).values()
    return "loaded" in states and "loading" not in states


def not_ready_reason(state: ServeState, name: str) -> str:
    """Why `name` cannot answer (for 503 bodies)."""
    if model_states(state).get(name) == "no_production_version":
        return f"model {name!r} has no version with the 'production' alias in the registry"
    return f"no production version of {name!r} is loaded yet"


def readiness(state: ServeState) -> dict[str, Any]:
    """{"ready": bool, "checks": {...}, "models": {...}}: models loaded, dependencies reachable."""
    deps = dependencies(state)
    loaded = models_loaded(state)
    return {
        "ready": loaded and all(d["ok"] for d in deps.values()),
        "checks": {"model_loaded": loaded, **{k: v["ok"] for k, v in deps.items()}},
        "models": model_states(state),
    }


def dependencies(state: ServeState) -> dict[str, dict[str, Any]]:
    """State of the warehouse and the registry (cached for a few seconds)."""
    out = {}
    for name, probe in (("warehouse", _probe_warehouse), ("registry", _probe_registry)):
        check = state.dependency(name, lambda p=probe: p(state))  # type: ignore[misc]
        out[name] = {"ok": check.ok, "detail": check.detail, **check.extra}
    return out


def describe(state: ServeState) -> dict[str, Any]:
    """The /api/v1/status document."""
    deps = dependencies(state)
    models: dict[str, dict[str, Any]] = {}
    for name in state.serve.models:
        models[name] = {
            alias: (m.describe() if (m := state.slots.get(name, alias)) else None)
            for alias in ALIASES
        }
        models[name]["state"] = model_states(state)[name]
    production = state.slots.get(state.serve.models[0], PRODUCTION)
    trained_at = _run_started_at(state, production.run_id if production else None)
    return {
        "service": "dataplatform-serve",
        "version": __version__,
        "profile": state.settings.profile,
        "model": production.describe() if production else None,
        "models": models,
        "last_pipeline_run": {
            "last_batch_loaded_at": deps["warehouse"].get("last_batch_loaded_at"),
            "model_trained_at": trained_at,
            "model_run_id": production.run_id if production else None,
        },
        "dependencies": deps,
        "routing": {
            "canary_share": state.serve.canary_share,
            "shadow": state.serve.shadow,
            "reload_interval_s": state.serve.reload_interval_s,
            "prediction_log_sample_rate": state.serve.prediction_log_sample_rate,
        },
        "prediction_log": {
            "written": state.log_writer.written,
            "dropped": state.log_writer.dropped,
        },
    }


def _probe_warehouse(state: ServeState) -> DependencyCheck:
    now = time.monotonic()
    try:
        warehouse = state.open_warehouse()
    except Exception as exc:
        return DependencyCheck(False, f"unreachable: {type(exc).__name__}", now)
    try:
        warehouse.query_df("SELECT 1 AS ok")
        extra: dict[str, Any] = {"backend": warehouse.backend, "last_batch_loaded_at": None}
        try:
            frame = warehouse.query_df("SELECT max(loaded_at) AS last FROM raw.ingest_batches")
            last = frame["last"].iloc[0] if len(frame) else None
            extra["last_batch_loaded_at"] = None if last is None or last != last else str(last)
        except Exception:  # reachable, but no pipeline has loaded anything yet
            extra["last_batch_loaded_at"] = None
        return DependencyCheck(True, "reachable", now, extra)
    except Exception as exc:
        return DependencyCheck(False, f"query failed: {type(exc).__name__}", now)
    finally:
        warehouse.close()


def _probe_registry(state: ServeState) -> DependencyCheck:
    now = time.monotonic()
    if state.client is None:
        return DependencyCheck(False, "not configured", now)
    try:
        state.client.search_registered_models(max_results=1)
    except Exception as exc:
        return DependencyCheck(False, f"unreachable: {type(exc).__name__}", now)
    return DependencyCheck(True, "reachable", now)


def _run_started_at(state: ServeState, run_id: str | None) -> str | None:
    if state.client is None or run_id is None:
        return None
    try:
        started = state.client.get_run(run_id).info.start_time
    except Exception:
        return None
    return datetime.fromtimestamp(started / 1000, tz=UTC).isoformat() if started else None
