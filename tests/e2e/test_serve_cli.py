"""`dataplatform serve` as its own process after the real pipeline: health, readiness, status,
a prediction, then a promotion and a rollback followed without restart (issue 4, "Done when").

A small home built by the real pipeline functions from one shipped dataset; the CLI subprocess
polls the registry every second.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dataplatform import pipeline
from dataplatform.config import get_settings
from dataplatform.transform.dbt_runner import run_dbt

pytestmark = pytest.mark.slow

MODEL = "commit-classifier"
DATASET = Path(__file__).resolve().parents[2] / "data" / "commits" / "pallets__flask.jsonl.gz"
COMMIT = {
    "repo": "pallets/flask",
    "commit_sha": "0123456789abcdef0123456789abcdef01234567",
    "message": "Merge pull request #1 from a/b",
    "author_name": "someone",
    "authored_at": "2024-03-01T10:15:00+01:00",
    "committed_at": "2024-03-01T10:15:30+01:00",
    "files_changed": 0,
    "lines_added": 0,
    "lines_deleted": 0,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}")
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home built by the real pipeline; two versions of commit-classifier, v1 in production.

    (Whatever `train` does with the `staging` alias, the server runs with canary share 0, so
    answers always come from `production`.)
    """
    if not DATASET.exists():
        pytest.skip(f"{DATASET} not shipped")
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    path = tmp_path_factory.mktemp("serve-cli-home")
    settings = get_settings(home=path)
    pipeline.ingest(settings, [str(DATASET)])
    pipeline.load(settings)
    run_dbt(settings, select="+commit_features")
    outcome = pipeline.train(settings, MODEL)
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    v1 = str(outcome.registered.version)
    first = client.get_model_version(MODEL, v1)
    v2 = str(client.create_model_version(MODEL, str(first.source), first.run_id).version)
    client.set_registered_model_alias(MODEL, "production", v1)
    return {"path": path, "client": client, "v1": v1, "v2": v2}


@pytest.fixture(scope="module")
def served(home: dict[str, Any]) -> Iterator[tuple[httpx.Client, subprocess.Popen[str]]]:
    port = _free_port()
    env = {
        **os.environ,
        "DATAPLATFORM_HOME": str(home["path"]),
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        "DATAPLATFORM_SERVE_PREDICTION_LOG_SAMPLE_RATE": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataplatform", "serve", "--port", str(port),
         "--reload-interval", "1", "--canary-share", "0", "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            _wait(lambda: http.get("/health").status_code == 200, 120, proc)
            yield http, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _version(http: httpx.Client) -> str:
    resp = http.post("/api/v1/predict", json={"commits": [COMMIT]})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["model_version"])


def _production(http: httpx.Client) -> str:
    return str(http.get("/api/v1/status").json()["model"]["version"])


def test_serve_cli_answers_and_follows_promotion_and_rollback(
    home: dict[str, Any], served: tuple[httpx.Client, subprocess.Popen[str]]
) -> None:
    http, proc = served
    client, v1, v2 = home["client"], home["v1"], home["v2"]
    assert http.get("/health").json() == {"status": "ok"}
    _wait(lambda: http.get("/ready").status_code == 200, 120, proc)
    ready = http.get("/ready").json()
    assert ready["models"][MODEL] == "loaded"
    # corrective-classifier is configured by default but was never promoted: reported, not fatal.
    assert ready["models"]["corrective-classifier"] == "no_production_version"
    status = http.get("/api/v1/status").json()
    assert status["model"]["name"] == MODEL
    assert status["model"]["version"] == v1
    assert status["dependencies"]["warehouse"]["ok"] is True
    assert status["dependencies"]["registry"]["ok"] is True
    resp = http.post("/api/v1/predict", json={"commits": [COMMIT]})
    assert resp.status_code == 200, resp.text
    item = resp.json()["predictions"][0]
    assert (item["predicted_class"], item["label"]) == (1, "merge")
    assert 0.5 <= item["probability"] <= 1.0
    not_promoted = http.post(
        "/api/v1/predict", json={"model": "corrective-classifier", "commits": [COMMIT]}
    )
    assert not_promoted.status_code == 503

    client.set_registered_model_alias(MODEL, "production", v2)  # promotion
    _wait(lambda: _production(http) == v2, 60, proc)
    assert _version(http) == v2
    client.set_registered_model_alias(MODEL, "production", v1)  # rollback
    _wait(lambda: _production(http) == v1, 60, proc)
    assert _version(http) == v1
    assert proc.poll() is None  # same process throughout: no restart


def _smoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataplatform", "smoke", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_smoke_command_against_the_served_api(
    served: tuple[httpx.Client, subprocess.Popen[str]],
) -> None:
    http, proc = served
    _wait(lambda: http.get("/ready").status_code == 200, 120, proc)
    url = str(http.base_url).rstrip("/")
    ok = _smoke("--url", url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "smoke test of" in ok.stdout
    assert "passed" in ok.stdout
    # a model with no production version: the API answers, wrongly for a deployment → 1
    wrong = _smoke("--url", url, "--model", "corrective-classifier", "--attempts", "2",
                   "--backoff", "0.1")  # fmt: skip
    assert wrong.returncode == 1, wrong.stdout
    assert "FAIL predict" in wrong.stdout
    # nothing listening → 3
    closed = _smoke("--url", f"http://127.0.0.1:{_free_port()}", "--attempts", "2",
                    "--backoff", "0.1")  # fmt: skip
    assert closed.returncode == 3, closed.stdout
