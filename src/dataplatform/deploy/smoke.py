"""Post-deployment smoke test of the HTTP API: health, status and one prediction.

Each check is retried with exponential backoff (a fresh rollout may still be starting); the
result says which check failed and why. Exit codes of the CLI: 0 all passed, 1 the API answered
wrongly, 3 the API could not be reached at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# A real-looking commit in the ingestion record's shape; its content does not matter.
SMOKE_COMMIT: dict[str, Any] = {
    "repo": "smoke/test",
    "commit_sha": "0" * 40,
    "message": "Merge pull request #1 from smoke/test",
    "author_name": "smoke-test",
    "authored_at": "2024-01-02T10:00:00+00:00",
    "committed_at": "2024-01-02T10:00:00+00:00",
    "files_changed": 0,
    "lines_added": 0,
    "lines_deleted": 0,
}


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One smoke check after its retries."""

    name: str
    passed: bool
    detail: str
    attempts: int
    reachable: bool = True


@dataclass
class SmokeResult:
    url: str
    checks: list[CheckOutcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 passed, 3 unreachable, 1 answered wrongly."""
        if self.passed:
            return 0
        return 3 if not any(c.reachable for c in self.checks) else 1


Check = Callable[[httpx.Client], str]  # returns a detail line, raises on failure


class SmokeFailure(AssertionError):
    """The API answered, but not as a healthy deployment would."""


def _health(client: httpx.Client) -> str:
    response = client.get("/health")
    if response.status_code != 200:
        raise SmokeFailure(f"/health answered {response.status_code}")
    return "/health 200"


def _status(client: httpx.Client) -> str:
    response = client.get("/api/v1/status")
    if response.status_code != 200:
        raise SmokeFailure(f"/api/v1/status answered {response.status_code}")
    body = response.json()
    return f"/api/v1/status 200 (service {body.get('service_version', '?')})"


def _predict(model: str) -> Check:
    def check(client: httpx.Client) -> str:
        response = client.post("/api/v1/predict", json={"model": model, "commits": [SMOKE_COMMIT]})
        if response.status_code != 200:
            raise SmokeFailure(f"/api/v1/predict answered {response.status_code}: {response.text}")
        body = response.json()
        predictions = body.get("predictions") or []
        if len(predictions) != 1 or "predicted_class" not in predictions[0]:
            raise SmokeFailure(f"/api/v1/predict returned no prediction: {body}")
        return f"/api/v1/predict 200 ({model} version {body.get('model_version', '?')})"

    return check


def run_smoke(
    url: str,
    *,
    model: str = "commit-classifier",
    attempts: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SmokeResult:
    """Run the checks against `url`, each up to `attempts` times with doubling backoff."""
    result = SmokeResult(url=url)
    checks: list[tuple[str, Check]] = [
        ("health", _health),
        ("status", _status),
        ("predict", _predict(model)),
    ]
    with httpx.Client(base_url=url, timeout=timeout_s, transport=transport) as client:
        for name, check in checks:
            result.checks.append(_retry(name, check, client, attempts, backoff_s, sleep))
    return result


def _retry(
    name: str,
    check: Check,
    client: httpx.Client,
    attempts: int,
    backoff_s: float,
    sleep: Callable[[float], None],
) -> CheckOutcome:
    detail, reachable = "", False
    for attempt in range(1, attempts + 1):
        try:
            return CheckOutcome(name, True, check(client), attempt)
        except SmokeFailure as exc:
            detail, reachable = str(exc), True
        except (httpx.HTTPError, ValueError) as exc:  # connection refused, timeout, bad JSON
            detail = f"{type(exc).__name__}: {exc}"
            reachable = reachable or isinstance(exc, ValueError)
        if attempt < attempts:
            sleep(backoff_s * 2 ** (attempt - 1))
    return CheckOutcome(name, False, detail, attempts, reachable)
