"""Notifications: a Slack-compatible incoming webhook, or a log line when none is configured.

Sending never raises: a webhook that keeps failing is retried with exponential backoff and the
outcome is returned (and logged) for the caller to record. The webhook URL is a secret: it never
appears in logs, errors or results.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

if TYPE_CHECKING:
    from dataplatform.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """What happened to one message."""

    channel: str  # "webhook" or "log"
    delivered: bool
    attempts: int
    error: str | None = None


class Notifier(Protocol):
    def send(self, text: str) -> NotifyResult: ...


class LogNotifier:
    """Writes the message as an INFO log line (no webhook configured)."""

    def send(self, text: str) -> NotifyResult:
        log.info("notification: %s", text)
        return NotifyResult(channel="log", delivered=True, attempts=1)


class WebhookNotifier:
    """POSTs `{"text": ...}` to a Slack-compatible webhook; `attempts` tries with backoff."""

    def __init__(
        self,
        url: SecretStr,
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.5,
        timeout_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self._url = url
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds
        self._sleep = sleep

    def send(self, text: str) -> NotifyResult:
        body = json.dumps({"text": text}).encode()
        error = ""
        for attempt in range(1, self.attempts + 1):
            error = self._post_once(body)
            if not error:
                return NotifyResult(channel="webhook", delivered=True, attempts=attempt)
            if attempt < self.attempts:
                self._sleep(self.backoff_seconds * 2 ** (attempt - 1))
        log.warning(
            "webhook notification not delivered after %d attempts (%s); message: %s",
            self.attempts,
            error,
            text,
        )
        return NotifyResult(channel="webhook", delivered=False, attempts=self.attempts, error=error)

    def _post_once(self, body: bytes) -> str:
        """'' on success, else a reason that does not contain the URL."""
        url = self._url.get_secret_value()
        if not url.startswith(("https://", "http://")):
            return "webhook URL is not http(s)"
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"{type(exc).__name__}: {type(reason).__name__}"
        return "" if 200 <= status < 300 else f"HTTP {status}"


def notifier_from_settings(settings: Settings) -> Notifier:
    """Webhook notifier when `slack_webhook_url` is set, else the log notifier."""
    url = settings.slack_webhook_url
    if url is not None and url.get_secret_value().strip():
        return WebhookNotifier(url)
    return LogNotifier()
