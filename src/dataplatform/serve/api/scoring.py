"""Glue between routes and the scoring thread: errors → 422, metrics, prediction-log rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from fastapi.exceptions import RequestValidationError

from dataplatform.serve.api.deps import ServeState
from dataplatform.serve.api.schemas import class_label
from dataplatform.serve.featurize import TEXT_COLUMN
from dataplatform.serve.prediction_log import PredictionLogRow, features_json
from dataplatform.serve.predictor import LoadedModel, Scored


@dataclass(frozen=True, slots=True)
class ScoreContext:
    """Per-request facts the log rows need."""

    route: str
    request_ids: Sequence[str]
    log: bool  # sampled for the prediction log
    received_at: datetime | None = None


async def score_or_422(
    state: ServeState,
    model: LoadedModel,
    *,
    records: Sequence[Mapping[str, Any]] | None = None,
    frame: pd.DataFrame | None = None,
    shadow: LoadedModel | None = None,
    context: ScoreContext,
) -> Scored:
    """Score through the scoring thread; input the feature code refuses becomes a 422."""
    try:
        scored = await state.scorer.score(
            model, commits=records, frame=frame, shadow=shadow, context=(state, context)
        )
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"cannot score input: {exc}", "type": "value_error"}]
        ) from None
    count = state.metrics.count_prediction
    for cls in scored.classes.tolist():
        count(model.name, class_label(model.name, cls))
    if context.log:
        state.log_writer.submit(log_rows(scored, context, role="served"))
    return scored


def on_shadow(served: Scored, shadow: Scored, context: Any) -> None:
    """Scorer callback (scoring thread): log the staging answers and count agreement."""
    state, ctx = context
    agree = (served.classes == shadow.classes).sum()
    counter = state.metrics.shadow_predictions
    counter.labels(shadow.model.name, "agree").inc(int(agree))
    counter.labels(shadow.model.name, "disagree").inc(int(len(served.classes) - agree))
    state.log_writer.submit(log_rows(shadow, ctx, role="shadow"))


def log_rows(scored: Scored, ctx: ScoreContext, *, role: str) -> list[PredictionLogRow]:
    """One prediction-log row per scored item."""
    model = scored.model
    # A text-only model (corrective) has no feature columns: one empty mapping per row.
    values = scored.rows.records([c for c in model.input_columns if c != TEXT_COLUMN])
    repos, shas = scored.rows.keys()
    at = ctx.received_at or datetime.now(UTC)
    return [
        PredictionLogRow(
            request_id=rid,
            role=role,
            predicted_at=at,
            route=ctx.route,
            model_name=model.name,
            model_version=model.version,
            model_semver=model.semver,
            model_alias=model.alias,
            repo=repo,
            commit_sha=sha,
            predicted_class=int(cls),
            probability=float(prob),
            features_json=features_json(row),
        )
        for rid, repo, sha, cls, prob, row in zip(
            ctx.request_ids,
            repos,
            shas,
            scored.classes,
            scored.probabilities,
            values,
            strict=True,
        )
    ]
