"""Incidents: what went wrong, when, the evidence, what was done — stored and announced.

One row per incident in ``monitoring.incidents`` (portable DDL, created by `ensure_tables` in
`dataplatform.monitor.store`); the notification goes through the platform's notifier (Slack
webhook when configured, a log line otherwise) and never fails the monitor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from dataplatform.monitor.policy import CheckResult, Decision

if TYPE_CHECKING:
    from dataplatform.adapters.notify import Notifier
    from dataplatform.adapters.warehouse import Warehouse

log = logging.getLogger(__name__)

IncidentAction = Literal["rollback", "alert_only"]
ActionStatus = Literal["done", "failed", "not_attempted"]


@dataclass(frozen=True, slots=True)
class Incident:
    """A confirmed critical decision about one production model version."""

    incident_id: str
    model_name: str
    model_version: str
    detected_at: datetime
    severity: str
    summary: str
    evidence: dict[str, object]
    action: IncidentAction
    action_status: ActionStatus
    rolled_back_to: str | None = None
    resolved_at: datetime | None = None
    monitor_run_id: str | None = None
    notified: bool = False
    error: str | None = field(default=None)

    def message(self) -> str:
        """The notification text."""
        what = (
            f"rolled back to version {self.rolled_back_to}"
            if self.action == "rollback" and self.action_status == "done"
            else f"rollback {self.action_status}: {self.error}"
            if self.action == "rollback"
            else "no automatic action (auto-rollback off)"
        )
        return (
            f"[{self.severity.upper()}] {self.model_name} version {self.model_version}: "
            f"{self.summary}; {what}. Incident {self.incident_id} at {self.detected_at.isoformat()}"
        )


def evidence_of(decision: Decision, checks: Sequence[CheckResult]) -> dict[str, object]:
    """The evidence stored with an incident: the decision and the checks that drove it."""
    driving = [c for c in checks if c.name in decision.confirmed or c.name in decision.pending]
    return {
        "verdict": decision.verdict,
        "rule": f"{decision.k} of the last {decision.n} windows",
        "windows": decision.windows,
        "reasons": list(decision.reasons),
        "checks": [
            {
                "name": c.name,
                "severity": c.severity,
                "value": c.value,
                "threshold": c.threshold,
                "detail": c.detail,
            }
            for c in driving
        ],
    }


INSERT_SQL = """
    INSERT INTO monitoring.incidents (
        incident_id, model_name, model_version, detected_at, severity, summary, evidence_json,
        action, action_status, rolled_back_to, resolved_at, monitor_run_id, notified, error
    ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def record_incident(warehouse: Warehouse, incident: Incident) -> None:
    """Append `incident` to monitoring.incidents (the tables must exist)."""
    warehouse.execute(
        INSERT_SQL,
        [
            incident.incident_id,
            incident.model_name,
            incident.model_version,
            incident.detected_at,
            incident.severity,
            incident.summary,
            json.dumps(incident.evidence, sort_keys=True, default=str),
            incident.action,
            incident.action_status,
            incident.rolled_back_to,
            incident.resolved_at,
            incident.monitor_run_id,
            incident.notified,
            incident.error,
        ],
    )


def notify(notifier: Notifier, incident: Incident) -> Incident:
    """Send the incident's message; returns the incident with `notified` set."""
    try:
        result = notifier.send(incident.message())
        delivered = bool(result.delivered)
    except Exception as exc:  # a notifier must never fail the monitor
        log.warning("incident notification failed: %s", type(exc).__name__)
        delivered = False
    return replace(incident, notified=delivered)
