"""`POST /api/v1/predict`: commits in the ingestion record's shape → class + probability each."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError

from dataplatform.serve.api.deps import ServeState, known_model
from dataplatform.serve.api.schemas import (
    Prediction,
    PredictRequest,
    PredictResponse,
    class_label,
)
from dataplatform.serve.api.scoring import ScoreContext, score_or_422

router = APIRouter(tags=["predict"])
ROUTE = "/api/v1/predict"


@router.post(
    ROUTE,
    response_model=PredictResponse,
    summary="Classify one or many commits",
    responses={413: {"description": "Body too large"}, 503: {"description": "No model loaded"}},
)
async def predict(body: PredictRequest, request: Request) -> Response:
    """Features come from the shared feature code; `served_by` says which alias answered."""
    # The hot path: the state straight off the app (no dependency to solve) and the response
    # serialised once by pydantic (FastAPI would validate it against `response_model` again).
    state: ServeState = request.app.state.serve
    model_name = known_model(state, body.model, loc=("body", "model"))
    _check_limits(state, body)
    model, shadow = state.route(model_name)
    base_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    request_ids = [f"{base_id}-{i}" for i in range(len(body.commits))]
    records = [c.to_record() for c in body.commits]
    ctx = ScoreContext(ROUTE, request_ids, state.sampled())
    scored = await score_or_422(state, model, records=records, shadow=shadow, context=ctx)
    labels = [class_label(model.name, int(c)) for c in scored.classes]
    predictions = [
        Prediction(
            request_id=rid,
            repo=rec["repo"],
            commit_sha=rec["commit_sha"],
            predicted_class=int(cls),
            label=label,
            probability=float(prob),
            model_name=model.name,
            model_version=model.version,
            model_semver=model.semver,
            served_by=model.alias,  # type: ignore[arg-type]
        )
        for rid, rec, cls, prob, label in zip(
            request_ids, records, scored.classes, scored.probabilities, labels, strict=True
        )
    ]
    response = PredictResponse(
        model=model.name,
        model_version=model.version,
        served_by=model.alias,  # type: ignore[arg-type]
        predictions=predictions,
    )
    return Response(response.model_dump_json(), media_type="application/json")


def _check_limits(state: ServeState, body: PredictRequest) -> None:
    """Limits configured below the schema's hard caps (same 422 shape as schema errors)."""
    errors: list[dict[str, object]] = []
    if len(body.commits) > state.serve.max_items:
        errors.append(
            {
                "loc": ("body", "commits"),
                "msg": f"at most {state.serve.max_items} commits per request",
                "type": "too_long",
            }
        )
    limit = state.serve.max_message_chars
    for i, commit in enumerate(body.commits):
        if len(commit.message) > limit:
            errors.append(
                {
                    "loc": ("body", "commits", i, "message"),
                    "msg": f"at most {limit} characters",
                    "type": "string_too_long",
                }
            )
    if errors:
        raise RequestValidationError(errors)
