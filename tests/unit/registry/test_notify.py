from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from dataplatform.adapters.notify import LogNotifier, WebhookNotifier, notifier_from_settings
from dataplatform.config import get_settings


class Hook:
    """A real local HTTP server that answers 500 for the first `failures` POSTs, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                ok = len(hook.bodies) > hook.failures
                self.send_response(200 if ok else 500)
                self.end_headers()
                self.wfile.write(b"ok" if ok else b"boom")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def make_hook() -> Iterator[Any]:
    hooks: list[Hook] = []

    def make(failures: int) -> Hook:
        hook = Hook(failures)
        hook.thread.start()
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.server.shutdown()
        hook.server.server_close()


def test_webhook_retries_with_backoff_then_delivers(make_hook: Any) -> None:
    hook = make_hook(failures=2)
    sleeps: list[float] = []
    notifier = WebhookNotifier(
        SecretStr(hook.url), attempts=4, backoff_seconds=0.01, sleep=sleeps.append
    )
    result = notifier.send("promoted v1.0.0-staging")
    assert (result.delivered, result.attempts, result.channel) == (True, 3, "webhook")
    assert sleeps == [0.01, 0.02]
    assert [b["text"] for b in hook.bodies] == ["promoted v1.0.0-staging"] * 3


def test_webhook_that_always_fails_is_reported_not_raised(
    make_hook: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hook = make_hook(failures=10**6)
    notifier = WebhookNotifier(
        SecretStr(hook.url), attempts=3, backoff_seconds=0, sleep=lambda _: None
    )
    result = notifier.send("hello")
    assert (result.delivered, result.attempts, result.error) == (False, 3, "HTTP 500")
    assert len(hook.bodies) == 3
    assert "secret-token" not in caplog.text
    assert "not delivered" in caplog.text


def test_unreachable_webhook_is_reported_without_the_url(make_hook: Any) -> None:
    hook = make_hook(failures=0)
    url = hook.url
    hook.server.shutdown()
    hook.server.server_close()
    result = WebhookNotifier(SecretStr(url), attempts=2, sleep=lambda _: None).send("x")
    assert not result.delivered
    assert result.error
    assert "secret-token" not in result.error


def test_settings_choose_the_notifier(caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(notifier_from_settings(get_settings()), LogNotifier)
    assert isinstance(
        notifier_from_settings(get_settings(slack_webhook_url="https://hooks.example/x")),
        WebhookNotifier,
    )
    caplog.set_level("INFO")
    assert LogNotifier().send("rolled back").delivered
    assert "rolled back" in caplog.text
