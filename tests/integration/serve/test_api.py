"""The serving API on a REAL uvicorn server (127.0.0.1, random port), real MLflow store and a
real DuckDB warehouse built by the real pipeline from 1,000 real commits.

Covers every endpoint, train/serve parity (features and probabilities vs the SQL mart),
hot reload after an alias move, canary and shadow, prediction-log rows, admin auth, bad input.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn

from dataplatform import pipeline
from dataplatform.config import get_settings
from dataplatform.serve.api.app import create_app
from dataplatform.serve.featurize import FEATURE_COLUMNS
from dataplatform.serve.settings import ServeSettings
from dataplatform.transform.dbt_runner import run_dbt

DATASETS = Path(__file__).resolve().parents[3] / "data" / "commits"
if not DATASETS.exists():  # CI's copy of shared/ sits next to the clone
    DATASETS = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "commits"
MODEL = "commit-classifier"
CORRECTIVE = "corrective-classifier"
UNPROMOTED = "unpromoted-model"  # configured, never registered: must answer 503, never 500
LABELS = (
    (Path(__file__).resolve().parents[3].parent / "shared" / "datasets")
    / "labels"
    / "amit_ccp_labels_normalized.csv.gz"
)
TOKEN = "test-admin-token-123"
N_COMMITS = 1_000

pytestmark = pytest.mark.slow


# --- fixtures ----------------------------------------------------------------------------------
def _sample_dataset(out: Path) -> Path:
    """1,000 real commits: the first 250 lines of each shared dataset (merges included)."""
    path = out / "sample.jsonl.gz"
    lines: list[bytes] = []
    for source in sorted(DATASETS.glob("*.jsonl.gz")):
        with gzip.open(source, "rb") as fh:
            lines += [fh.readline() for _ in range(N_COMMITS // 4)]
    path.write_bytes(gzip.compress(b"".join(lines)))
    return path


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home with the mart built by the real pipeline and two registered versions."""
    if not DATASETS.exists():
        pytest.skip("shared commit datasets not found")
    # The registry stores skops/pickle artifacts; loading them needs the explicit opt-in.
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    home = tmp_path_factory.mktemp("serve-home")
    settings = get_settings(home=home, admin_token=TOKEN)
    timings = {}
    started = time.perf_counter()
    pipeline.ingest(settings, [str(_sample_dataset(home))])
    pipeline.load(settings)
    timings["ingest+load"] = time.perf_counter() - started
    # Only the feature mart and its parents (with their dbt tests): what serving depends on.
    run_dbt(settings, select="+commit_features")
    timings["dbt"] = time.perf_counter() - started
    outcome = pipeline.train(settings, MODEL)
    timings["train"] = time.perf_counter() - started
    print("platform fixture timings", timings)
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    v1 = str(outcome.registered.version)
    # A second version of the same artifacts: same answers, different version number.
    first = client.get_model_version(MODEL, v1)
    v2 = str(client.create_model_version(MODEL, str(first.source), first.run_id).version)
    client.set_registered_model_alias(MODEL, "production", v1)
    client.set_model_version_tag(MODEL, v1, "semver", "1.0.0")
    corrective_version = _register_corrective(settings, client)
    with pipeline._open(settings) as warehouse:
        mart = warehouse.query_df("SELECT * FROM analytics.commit_features ORDER BY commit_key")
        raw = warehouse.query_df("SELECT * FROM raw.commits ORDER BY repo, commit_sha")
    return {
        "settings": settings, "client": client, "v1": v1, "v2": v2, "mart": mart, "raw": raw,
        "corrective_version": corrective_version,
    }  # fmt: skip


def _labelled_messages() -> pd.DataFrame:
    """60 human-labelled messages (30 corrective, 30 not), or a hand-made set without shared/."""
    if LABELS.exists():
        labels = pd.read_csv(LABELS, usecols=["message", "is_corrective"]).dropna()
        labels = labels[labels["message"].str.len() < 500]
        return pd.concat(
            [labels[labels["is_corrective"] == k].head(30) for k in (0, 1)], ignore_index=True
        )
    fixes = [f"Fix crash in parser when input {i} is empty" for i in range(30)]
    others = [f"Add support for option {i} in the docs" for i in range(30)]
    return pd.DataFrame({"message": fixes + others, "is_corrective": [1] * 30 + [0] * 30})


def _register_corrective(settings: Any, client: Any) -> str:
    """A tiny real corrective model (the spec's text pipeline), registered and in production."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from dataplatform.train.text import corrective_pipeline

    labels = _labelled_messages()
    x = labels[["message"]].astype(str)
    estimator = corrective_pipeline().fit(x, labels["is_corrective"].astype(int))
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    with mlflow.start_run(run_name="tiny-corrective"):
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=infer_signature(x, estimator.predict(x)),
            registered_model_name=CORRECTIVE,
        )
    version = str(info.registered_model_version)
    client.set_registered_model_alias(CORRECTIVE, "production", version)
    return version


class _Server:
    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture(scope="module")
def server(platform: dict[str, Any]) -> Iterator[dict[str, Any]]:
    serve_settings = ServeSettings(
        reload_interval_s=0.3,
        canary_share=0.0,
        shadow=True,
        prediction_log_sample_rate=1.0,
        prediction_log_flush_interval_s=0.2,
        max_body_bytes=2_000_000,
        max_items=300,
        models=[MODEL, CORRECTIVE, UNPROMOTED],
    )
    app = create_app(platform["settings"], serve_settings)
    with _Server(app) as srv, httpx.Client(base_url=f"http://127.0.0.1:{srv.port}") as http:
        yield {"http": http, "state": app.state.serve, "base": f"http://127.0.0.1:{srv.port}"}


def _records(raw: pd.DataFrame) -> list[dict[str, Any]]:
    """raw.commits rows as ingestion records (JSON-ready)."""
    out = []
    for row in raw.to_dict("records"):
        rec = {
            "repo": row["repo"],
            "commit_sha": row["commit_sha"],
            "message": row["message"],
            "author_name": row["author_name"],
            "author_email": row["author_email"],
            "authored_at": pd.Timestamp(row["authored_at"]).isoformat(),
            "committed_at": pd.Timestamp(row["committed_at"]).isoformat(),
            "parent_count": int(row["parent_count"]),
            "files_changed": int(row["files_changed"]),
            "lines_added": int(row["lines_added"]),
            "lines_deleted": int(row["lines_deleted"]),
        }
        offset = row["author_utc_offset_minutes"]
        rec["author_utc_offset_minutes"] = None if pd.isna(offset) else int(offset)
        out.append(rec)
    return out


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def _commit(**overrides: Any) -> dict[str, Any]:
    base = {
        "repo": "pallets/flask",
        "commit_sha": "a" * 40,
        "message": "Merge pull request #1 from a/b",
        "author_name": "someone",
        "authored_at": "2020-01-01T10:00:00+02:00",
        "committed_at": "2020-01-01T10:00:05+02:00",
        "files_changed": 0,
        "lines_added": 0,
        "lines_deleted": 0,
    }
    return {**base, **overrides}


# --- tests -------------------------------------------------------------------------------------
def test_health_ready_status_and_oip_health(server: dict[str, Any], platform: dict) -> None:
    http = server["http"]
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"model_loaded": True, "warehouse": True, "registry": True}
    assert ready.json()["models"] == {
        MODEL: "loaded",
        CORRECTIVE: "loaded",
        UNPROMOTED: "no_production_version",
    }
    status = http.get("/api/v1/status").json()
    assert status["model"]["version"] == platform["v1"]
    assert status["model"]["semver"] == "1.0.0"
    assert status["model"]["alias"] == "production"
    assert status["model"]["loaded_at"]
    assert status["last_pipeline_run"]["last_batch_loaded_at"]
    assert status["last_pipeline_run"]["model_trained_at"]
    assert status["dependencies"]["warehouse"]["ok"] is True
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}
    assert http.get(f"/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}
    assert http.get("/v2/models/nope/ready").status_code == 404
    meta = http.get(f"/v2/models/{MODEL}").json()
    assert [t["name"] for t in meta["inputs"]] == FEATURE_COLUMNS
    assert meta["versions"] == [platform["v1"]]
    assert http.get("/docs").status_code == 200
    assert "/api/v1/predict" in http.get("/openapi.json").json()["paths"]


def test_online_equals_offline_on_1000_real_commits(
    server: dict[str, Any], platform: dict[str, Any]
) -> None:
    """Features logged by the online path == SQL mart; probabilities == predict_proba(mart)."""
    http, state = server["http"], server["state"]
    records = _records(platform["raw"])
    assert len(records) == N_COMMITS
    online: dict[str, float] = {}
    for start in range(0, len(records), 250):
        chunk = records[start : start + 250]
        resp = http.post("/api/v1/predict", json={"commits": chunk}, timeout=60)
        assert resp.status_code == 200, resp.text
        for item in resp.json()["predictions"]:
            assert item["served_by"] == "production"
            online[f"{item['repo']}:{item['commit_sha']}"] = item["probability"]

    mart = platform["mart"].set_index("commit_key")
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(f"models:/{MODEL}/{platform['v1']}")
    proba = model.predict_proba(mart[FEATURE_COLUMNS])
    offline = proba.max(axis=1)
    keys = list(mart.index)
    assert sorted(online) == sorted(keys)
    # Same model, same features: equal up to float rounding of differently sized matrix
    # products (the service scores in batches; 1 ulp seen on 1/1000 rows).
    np.testing.assert_allclose(np.array([online[k] for k in keys]), offline, rtol=0, atol=1e-12)

    # The features the service computed (prediction log) equal the mart's, value for value.
    assert state.log_writer.wait_idle(30)
    with pipeline._open(platform["settings"]) as warehouse:
        logged = warehouse.query_df(
            "SELECT repo || ':' || commit_sha AS commit_key, features_json "
            "FROM monitoring.prediction_log WHERE role = 'served' AND route = '/api/v1/predict'"
        ).drop_duplicates("commit_key")
    assert len(logged) == N_COMMITS
    features = pd.DataFrame(
        [json.loads(v) for v in logged["features_json"]], index=logged["commit_key"]
    )[FEATURE_COLUMNS].sort_index()
    expected = mart[FEATURE_COLUMNS].astype("int64").sort_index()
    pd.testing.assert_frame_equal(features, expected, check_names=False)


def test_oip_infer_both_input_kinds(server: dict[str, Any], platform: dict[str, Any]) -> None:
    http = server["http"]
    commit = _commit()
    by_commit = http.post(
        f"/v2/models/{MODEL}/infer",
        json={"id": "r1", "inputs": [
            {"name": "commits", "shape": [1], "datatype": "BYTES", "data": [json.dumps(commit)]}
        ]},
    )  # fmt: skip
    assert by_commit.status_code == 200, by_commit.text
    body = by_commit.json()
    assert body["id"] == "r1"
    assert body["model_version"] == platform["v1"]
    assert body["outputs"][0]["name"] == "predicted_class"
    assert body["outputs"][0]["data"] == [1]

    mart = platform["mart"].head(3)
    inputs = [
        {"name": c, "shape": [3], "datatype": "INT64", "data": [int(v) for v in mart[c]]}
        for c in FEATURE_COLUMNS
    ]
    by_features = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": inputs})
    assert by_features.status_code == 200, by_features.text
    assert by_features.json()["outputs"][1]["shape"] == [3]

    missing = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": inputs[:-1]})
    assert missing.status_code == 422
    assert "error" in missing.json()
    assert http.post("/v2/models/nope/infer", json={"inputs": inputs}).status_code == 404


@pytest.mark.parametrize(
    ("commit", "loc_end"),
    [
        ({k: v for k, v in _commit().items() if k != "message"}, "message"),
        (_commit(files_changed="3"), "files_changed"),
        (_commit(files_changed=True), "files_changed"),
        (_commit(message="bad\x00byte"), "message"),
        (_commit(message="x" * 70_000), "message"),
        (_commit(authored_at="2020-01-01T10:00:00"), "authored_at"),
        (_commit(authored_at=1577872800), "authored_at"),
        (_commit(authored_at="3000-01-01T00:00:00+00:00"), "authored_at"),
        (_commit(commit_sha="XYZ"), "commit_sha"),
        (_commit(lines_added=2**31), "lines_added"),
    ],
)
def test_bad_input_is_422_with_field_errors(
    server: dict[str, Any], commit: dict[str, Any], loc_end: str
) -> None:
    resp = server["http"].post("/api/v1/predict", json={"commits": [commit]})
    assert resp.status_code == 422, resp.text
    locs = [d["loc"] for d in resp.json()["detail"]]
    assert any(loc[-1] == loc_end for loc in locs), locs


def test_limits_413_too_many_items_and_unknown_model(server: dict[str, Any]) -> None:
    http = server["http"]
    too_many = http.post("/api/v1/predict", json={"commits": [_commit()] * 301})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "commits"]
    huge = http.post(
        "/api/v1/predict",
        content=b'{"commits": [' + b" " * 2_100_000 + b"]}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert http.post("/api/v1/predict", content=b"{nope").status_code == 422
    unknown = http.post("/api/v1/predict", json={"model": "other", "commits": [_commit()]})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "model"]


def test_admin_reload_requires_the_token(server: dict[str, Any]) -> None:
    http = server["http"]
    assert http.post("/admin/reload").status_code == 401
    wrong = http.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    ok = http.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert {c["alias"] for c in ok.json()["changes"]} == {"production", "staging"}


def test_canary_shadow_reload_and_rollback_without_restart(
    server: dict[str, Any], platform: dict[str, Any]
) -> None:
    http, state, client = server["http"], server["state"], platform["client"]
    v1, v2 = platform["v1"], platform["v2"]
    # Staging appears: the poller loads it; shadow scores every production request.
    client.set_registered_model_alias(MODEL, "staging", v2)
    _wait(lambda: getattr(state.slots.get(MODEL, "staging"), "version", None) == v2)
    resp = http.post("/api/v1/predict", json={"commits": [_commit(commit_sha="b" * 40)]})
    assert resp.json()["served_by"] == "production"
    assert resp.json()["model_version"] == v1

    def logged_roles() -> list[dict[str, Any]]:
        # Shadow rows are written after the answer went out: poll until both are there.
        state.log_writer.wait_idle(30)
        with pipeline._open(platform["settings"]) as warehouse:
            frame = warehouse.query_df(
                "SELECT role, model_version, model_alias FROM monitoring.prediction_log "
                "WHERE commit_sha = ? ORDER BY role",
                ["b" * 40],
            )
        return list(frame.to_dict("records"))

    _wait(lambda: len(logged_roles()) == 2)
    roles = logged_roles()
    assert roles == [
        {"role": "served", "model_version": v1, "model_alias": "production"},
        {"role": "shadow", "model_version": v2, "model_alias": "staging"},
    ]
    # Canary: every request to staging when the share is 1; the response says so.
    state.serve.canary_share = 1.0
    try:
        canary = http.post("/api/v1/predict", json={"commits": [_commit()]}).json()
        assert canary["served_by"] == "staging"
        assert canary["model_version"] == v2
    finally:
        state.serve.canary_share = 0.0
    # Promotion: production moves to v2 -> followed without restart; rollback -> back to v1.
    client.delete_registered_model_alias(MODEL, "staging")
    client.set_registered_model_alias(MODEL, "production", v2)
    _wait(lambda: http.get("/api/v1/status").json()["model"]["version"] == v2)
    assert http.post("/api/v1/predict", json={"commits": [_commit()]}).json()["model_version"] == v2
    client.set_registered_model_alias(MODEL, "production", v1)
    _wait(lambda: state.slots.get(MODEL, "production").version == v1)
    metrics = http.get("/metrics").text
    assert 'dataplatform_model_reloads_total{alias="production"' in metrics
    assert (
        f'dataplatform_model_info{{alias="production",model="{MODEL}",'
        f'semver="1.0.0",version="{v1}"}} 1.0' in metrics
    )
    assert (
        'dataplatform_http_request_duration_seconds_bucket{le="0.005",route="/api/v1/predict"}'
        in metrics
    )
    assert 'dataplatform_http_requests_total{route="/api/v1/predict",status="422"}' in metrics
    assert 'dataplatform_predictions_total{class="merge",model="commit-classifier"}' in metrics
    assert "dataplatform_prediction_log_dropped_total 0.0" in metrics


def test_schemathesis_finds_no_server_error(server: dict[str, Any]) -> None:
    """Every operation of the OpenAPI spec, generated inputs: never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(f"{server['base']}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        @settings(
            max_examples=12, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(base_url=server["base"])
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path} -> {response.status_code}")
            case.validate_response(response, checks=[not_a_server_error])

        check()
    assert failures == []


def test_corrective_model_served_per_model_on_the_redacted_message(
    server: dict[str, Any], platform: dict[str, Any]
) -> None:
    """Both models answer on their own routes; the text model sees the mart's redacted text."""
    http, state = server["http"], server["state"]
    meta = http.get(f"/v2/models/{CORRECTIVE}").json()
    assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [("message", "BYTES")]
    assert meta["versions"] == [platform["corrective_version"]]
    assert http.get(f"/v2/models/{MODEL}").json()["inputs"][0]["name"] == FEATURE_COLUMNS[0]

    fix = _commit(message="Fix crash in parser when input is empty\n\nReported-by: a@b.example")
    resp = http.post("/api/v1/predict", json={"model": CORRECTIVE, "commits": [fix]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == CORRECTIVE
    assert body["model_version"] == platform["corrective_version"]
    item = body["predictions"][0]
    assert item["label"] in {"corrective", "non_corrective"}
    assert item["label"] == ("corrective" if item["predicted_class"] == 1 else "non_corrective")

    # The same answer as the model on the redacted one-column frame, by every input route.
    model = state.slots.get(CORRECTIVE, "production")
    redacted = "Fix crash in parser when input is empty\n\nReported-by: <email>"
    proba = model.estimator.predict_proba(pd.DataFrame({"message": [redacted]}))[0]
    assert item["probability"] == pytest.approx(float(proba.max()), abs=1e-12)
    by_text = http.post(
        f"/v2/models/{CORRECTIVE}/infer",
        json={"inputs": [{"name": "message", "shape": [1], "datatype": "BYTES",
                          "data": [fix["message"]]}]},
    )  # fmt: skip
    assert by_text.status_code == 200, by_text.text
    assert by_text.json()["model_name"] == CORRECTIVE
    assert by_text.json()["outputs"][1]["data"][0] == pytest.approx(item["probability"], abs=1e-12)
    by_commit = http.post(
        f"/v2/models/{CORRECTIVE}/infer",
        json={"inputs": [{"name": "commits", "shape": [1], "datatype": "BYTES",
                          "data": [json.dumps(fix)]}]},
    )  # fmt: skip
    assert by_commit.status_code == 200, by_commit.text
    assert by_commit.json()["outputs"][0]["data"] == [item["predicted_class"]]
    # Feature tensors are the commit model's inputs, not the text model's: a 422, not a 500.
    wrong = http.post(
        f"/v2/models/{CORRECTIVE}/infer",
        json={"inputs": [{"name": "files_changed", "shape": [1], "datatype": "INT64",
                          "data": [1]}]},
    )  # fmt: skip
    assert wrong.status_code == 422
    status = http.get("/api/v1/status").json()
    assert status["models"][CORRECTIVE]["production"]["version"] == platform["corrective_version"]
    assert status["models"][CORRECTIVE]["state"] == "loaded"


def test_model_without_production_version_is_not_ready_never_500(server: dict[str, Any]) -> None:
    http = server["http"]
    for method, path, payload in [
        ("GET", f"/v2/models/{UNPROMOTED}", None),
        ("GET", f"/v2/models/{UNPROMOTED}/ready", None),
        ("POST", f"/v2/models/{UNPROMOTED}/infer",
         {"inputs": [{"name": "commits", "shape": [1], "datatype": "BYTES",
                      "data": [json.dumps(_commit())]}]}),
        ("POST", "/api/v1/predict", {"model": UNPROMOTED, "commits": [_commit()]}),
    ]:  # fmt: skip
        resp = http.request(method, path, json=payload)
        assert resp.status_code == 503, (path, resp.text)
        text = resp.json().get("detail") or resp.json().get("error")
        assert "no version with the 'production' alias" in str(text), text
    assert http.get("/ready").status_code == 200  # the other models still serve
