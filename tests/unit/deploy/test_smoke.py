"""The smoke check's retry, backoff and exit-code logic. The HTTP API is replaced by httpx's
MockTransport here only; tests/e2e/test_serve_cli.py runs the command against the real API."""

from __future__ import annotations

import httpx

from dataplatform.deploy.smoke import run_smoke


def _api(fail_first: int = 0, predict_status: int = 200) -> httpx.MockTransport:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            raise httpx.ConnectError("starting up", request=request)
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        if request.url.path == "/api/v1/status":
            return httpx.Response(200, json={"service_version": "0.1.0"})
        if request.url.path == "/api/v1/predict":
            body = {"model_version": "3", "predictions": [{"predicted_class": 1}]}
            return httpx.Response(predict_status, json=body)
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def test_retries_with_doubling_backoff_until_the_api_is_up() -> None:
    waits: list[float] = []
    result = run_smoke(
        "http://api", transport=_api(fail_first=2), backoff_s=0.5, sleep=waits.append
    )
    assert result.passed
    assert result.exit_code == 0
    assert waits == [0.5, 1.0]
    assert result.checks[0].attempts == 3


def test_a_wrong_answer_exits_1_and_says_which_check() -> None:
    result = run_smoke("http://api", transport=_api(predict_status=503), sleep=lambda _: None)
    assert result.exit_code == 1
    failed = [c for c in result.checks if not c.passed]
    assert [c.name for c in failed] == ["predict"]
    assert "503" in failed[0].detail


def test_unreachable_exits_3() -> None:
    result = run_smoke(
        "http://api", transport=_api(fail_first=100), attempts=2, sleep=lambda _: None
    )
    assert result.exit_code == 3
    assert all(not c.passed and c.attempts == 2 for c in result.checks)
