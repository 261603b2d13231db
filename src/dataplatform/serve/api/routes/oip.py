"""Open Inference Protocol v2 (KServe data plane, REST): health, metadata, ready, infer.

`/v2/models/{name}/infer` takes EITHER
* one BYTES tensor named ``commits`` whose elements are JSON commit records (the shape of
  `/api/v1/predict` items; features are computed here, by the shared feature code), OR
* one tensor per model input column (the feature columns, INT64, shape ``[N]`` or ``[N, 1]``)
  for clients that already hold mart rows.

Outputs: ``predicted_class`` (INT64) and ``probability`` (FP64, of the predicted class);
`parameters.served_by` says which alias answered. Errors: 4xx with ``{"error": ...}`` plus the
field errors under ``detail``.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from dataplatform import __version__
from dataplatform.serve.api.deps import ServeState, get_state, known_model
from dataplatform.serve.api.routes.health import models_loaded, not_ready_reason
from dataplatform.serve.api.schemas import (
    CommitIn,
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    ModelMetadata,
    TensorMetadata,
)
from dataplatform.serve.api.scoring import ScoreContext, score_or_422
from dataplatform.serve.featurize import FEATURE_COLUMNS, input_frame
from dataplatform.serve.predictor import PRODUCTION, LoadedModel

router = APIRouter(prefix="/v2", tags=["open-inference-protocol-v2"])
COMMITS_TENSOR = "commits"
INFER_ROUTE = "/v2/models/{name}/infer"
INT_TYPES = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
MAX_ABS_INT = 2**53  # exact in float64 and JSON everywhere
ModelPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]


@router.get("", summary="Server metadata")
async def server_metadata() -> dict[str, Any]:
    return {"name": "dataplatform", "version": __version__, "extensions": []}


@router.get("/health/live", summary="Server live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Server ready (every model loaded)", responses={503: {}})
async def server_ready(state: Annotated[ServeState, Depends(get_state)]) -> JSONResponse:
    ok = models_loaded(state)
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


@router.get(
    "/models/{name}", response_model=ModelMetadata, summary="Model metadata",
    responses={404: {}, 503: {}},
)  # fmt: skip
async def model_metadata(
    name: ModelPath, state: Annotated[ServeState, Depends(get_state)]
) -> ModelMetadata:
    model = _production(state, name)
    return ModelMetadata(
        name=model.name,
        versions=[model.version],
        platform="mlflow_sklearn",
        inputs=[
            TensorMetadata(name=c, datatype=_datatype(c), shape=[-1]) for c in model.input_columns
        ],
        outputs=[
            TensorMetadata(name="predicted_class", datatype="INT64", shape=[-1]),
            TensorMetadata(name="probability", datatype="FP64", shape=[-1]),
        ],
        parameters={
            "semver": model.semver,
            "alias": model.alias,
            "alternative_inputs": [{"name": COMMITS_TENSOR, "datatype": "BYTES", "shape": [-1]}],
        },
    )


@router.get("/models/{name}/ready", summary="Model ready", responses={404: {}, 503: {}})
async def model_ready(
    name: ModelPath, state: Annotated[ServeState, Depends(get_state)]
) -> JSONResponse:
    known_model(state, name)
    ok = state.slots.get(name, PRODUCTION) is not None
    body: dict[str, Any] = {"name": name, "ready": ok}
    if not ok:
        body["error"] = not_ready_reason(state, name)
    return JSONResponse(body, status_code=200 if ok else 503)


@router.post(
    "/models/{name}/infer", response_model=InferResponse, summary="Inference",
    responses={404: {}, 413: {}, 503: {}},
)  # fmt: skip
async def infer(name: ModelPath, body: InferRequest, request: Request) -> Response:
    state: ServeState = request.app.state.serve  # hot path: see routes.predict
    known_model(state, name)
    model, shadow = state.route(name)
    request_id = body.id or uuid.uuid4().hex
    if len(body.inputs) == 1 and body.inputs[0].name == COMMITS_TENSOR:
        records = _commits(body.inputs[0], state.serve.max_items, state.serve.max_message_chars)
        n, frame = len(records), None
    else:
        frame = _feature_frame(body.inputs, model, state.serve.max_items)
        records, n = None, len(frame)
    ids = [f"{request_id}-{i}" for i in range(n)]
    ctx = ScoreContext(INFER_ROUTE, ids, state.sampled())
    scored = await score_or_422(
        state, model, records=records, frame=frame, shadow=shadow, context=ctx
    )
    response = InferResponse(
        model_name=model.name,
        model_version=model.version,
        id=request_id,
        parameters={"served_by": model.alias, "model_semver": model.semver},
        outputs=[
            InferOutput(
                name="predicted_class", shape=[n], datatype="INT64",
                data=[int(c) for c in scored.classes],
            ),
            InferOutput(
                name="probability", shape=[n], datatype="FP64",
                data=[float(p) for p in scored.probabilities],
            ),
        ],
    )  # fmt: skip
    return Response(response.model_dump_json(), media_type="application/json")


def _production(state: ServeState, name: str) -> LoadedModel:
    known_model(state, name)
    model = state.slots.get(name, PRODUCTION)
    if model is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, not_ready_reason(state, name))
    return model


def _datatype(column: str) -> str:
    return "INT64" if column in FEATURE_COLUMNS else "BYTES"


def _error(loc: tuple[Any, ...], msg: str, kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", *loc), "msg": msg, "type": kind}])


def _flat(tensor: InferInput, index: int) -> list[Any]:
    """Row-major flat data; checks the shape against the element count."""
    out: list[Any] = []

    def walk(value: Any, depth: int) -> None:
        if isinstance(value, list):
            if depth >= 4:
                raise _error(("inputs", index, "data"), "nested deeper than the shape allows")
            for item in value:
                walk(item, depth + 1)
        else:
            out.append(value)

    walk(tensor.data, 0)
    expected = math.prod(tensor.shape) if tensor.shape else 1
    if expected != len(out):
        raise _error(
            ("inputs", index, "shape"),
            f"shape {tensor.shape} holds {expected} elements but data has {len(out)}",
        )
    return out


def _commits(tensor: InferInput, max_items: int, max_chars: int) -> list[dict[str, Any]]:
    if tensor.datatype != "BYTES":
        raise _error(("inputs", 0, "datatype"), "the 'commits' tensor must be BYTES")
    items = _flat(tensor, 0)
    if not items or len(items) > max_items:
        raise _error(("inputs", 0, "data"), f"between 1 and {max_items} commits", "too_long")
    records, errors = [], []
    for i, item in enumerate(items):
        loc = ("body", "inputs", 0, "data", i)
        try:
            obj = json.loads(item) if isinstance(item, str) else item
            commit = CommitIn.model_validate(obj)
        except ValidationError as exc:
            errors += [
                {"loc": (*loc, *e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_input=False, include_url=False)
            ]
            continue
        except (ValueError, RecursionError) as exc:
            errors.append({"loc": loc, "msg": f"not a JSON commit record: {exc}", "type": "json"})
            continue
        if len(commit.message) > max_chars:
            errors.append(
                {"loc": (*loc, "message"), "msg": f"at most {max_chars} characters",
                 "type": "string_too_long"}
            )  # fmt: skip
        records.append(commit.to_record())
    if errors:
        raise RequestValidationError(errors)
    return records


def _feature_frame(inputs: list[InferInput], model: LoadedModel, max_items: int) -> pd.DataFrame:
    wanted = list(model.input_columns)
    names = [t.name for t in inputs]
    missing = [c for c in wanted if c not in names]
    extra = [n for n in names if n not in wanted]
    if missing or extra or len(set(names)) != len(names):
        raise _error(
            ("inputs",),
            f"expected one tensor per input column {wanted} (or one BYTES tensor "
            f"'{COMMITS_TENSOR}'); missing {missing}, unexpected {extra}",
        )
    columns: dict[str, list[Any]] = {}
    for index, tensor in enumerate(inputs):
        values = _flat(tensor, index)
        if tensor.name in FEATURE_COLUMNS:
            if tensor.datatype not in INT_TYPES:
                raise _error(("inputs", index, "datatype"), "feature tensors are integers (INT64)")
            if any(type(v) is not int or abs(v) > MAX_ABS_INT for v in values):
                raise _error(("inputs", index, "data"), f"integers within ±{MAX_ABS_INT} only")
        elif tensor.datatype != "BYTES" or any(
            not isinstance(v, str) or "\x00" in v for v in values
        ):
            raise _error(("inputs", index, "data"), "text tensors are BYTES strings without NUL")
        columns[tensor.name] = values
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise _error(("inputs",), "all input tensors must have the same number of rows")
    n = lengths.pop()
    if not 1 <= n <= max_items:
        raise _error(("inputs",), f"between 1 and {max_items} rows", "too_long")
    return input_frame(columns, wanted)
