"""`POST /admin/reload`: re-resolve the aliases now (Bearer admin token)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.concurrency import run_in_threadpool

from dataplatform.serve.api.deps import ServeState, get_state, require_admin

router = APIRouter(tags=["admin"])


@router.post(
    "/admin/reload",
    summary="Reload the models behind the production/staging aliases now",
    dependencies=[Depends(require_admin)],
    responses={401: {"description": "Missing or wrong admin token"}},
)
async def reload_models(state: Annotated[ServeState, Depends(get_state)]) -> dict[str, Any]:
    if state.reloader is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "registry not configured")
    changes = await run_in_threadpool(state.reloader.sync)
    return {"changes": [asdict(c) for c in changes]}
