"""Decisions: check results per window → one verdict, with a k-of-n rule against flapping.

Everything here is pure. A `CheckResult` is one measurement of one window (a monitor run) with
its severity; `decide(history)` looks at the last `n` windows of ONE model version and confirms a
level (alert, critical) for a check only when at least `k` of those windows reached it. A single
noisy window therefore never changes the verdict — neither up nor back down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["ok", "alert", "critical"]
SEVERITIES: tuple[Severity, ...] = ("ok", "alert", "critical")
_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
CheckKind = Literal["quality", "drift", "performance", "api"]


def rank(severity: str) -> int:
    """0 ok, 1 alert, 2 critical."""
    return _RANK[severity]


def worst(severities: Sequence[str]) -> Severity:
    """The most severe of `severities` ('ok' for none)."""
    return SEVERITIES[max((rank(s) for s in severities), default=0)]


def level(value: float | None, alert: float | None, critical: float | None = None) -> Severity:
    """Severity of `value` against its thresholds (strictly above = reached; None = unknown)."""
    if value is None:
        return "ok"
    if critical is not None and value > critical:
        return "critical"
    if alert is not None and value > alert:
        return "alert"
    return "ok"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of one window: `value` against `threshold` gave `severity`."""

    name: str  # e.g. "psi:lines_added", "f1_drop", "api_error_rate"
    kind: CheckKind
    severity: Severity
    value: float | None = None
    threshold: float | None = None
    detail: str = ""

    def line(self) -> str:
        """`ALERT psi:lines_added = 0.31 (threshold 0.2): ...`."""
        shown = "n/a" if self.value is None else f"{self.value:.4g}"
        limit = "" if self.threshold is None else f" (threshold {self.threshold:g})"
        return f"{self.severity.upper():8} {self.name} = {shown}{limit}" + (
            f": {self.detail}" if self.detail else ""
        )


@dataclass(frozen=True, slots=True)
class Window:
    """The checks of one monitor run (one window of recent data)."""

    checks: tuple[CheckResult, ...]
    label: str = ""  # e.g. the monitor run id

    def severity_of(self, name: str) -> Severity:
        """Severity of check `name` in this window ('ok' when it was not run)."""
        return next((c.severity for c in self.checks if c.name == name), "ok")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the last windows say, per check and overall."""

    verdict: Severity
    confirmed: dict[str, Severity]  # check name -> confirmed level (only levels above ok)
    pending: dict[str, Severity]  # latest window is worse than what is confirmed: watching
    k: int
    n: int
    windows: int  # windows actually looked at (<= n)
    reasons: tuple[str, ...] = field(default=())

    @property
    def rollback(self) -> bool:
        """A confirmed critical: the production version must go."""
        return self.verdict == "critical"


def decide(history: Sequence[Window], *, k: int = 2, n: int = 3) -> Decision:
    """Verdict over the last `n` windows of `history` (oldest first) by the k-of-n rule.

    For every check seen in those windows, the confirmed level is the highest level that at
    least `k` windows reached (a critical window also counts as an alert). The verdict is the
    worst confirmed level. Checks whose latest window is worse than their confirmed level are
    reported as `pending` — they need more windows before they count.
    """
    if k < 1 or n < 1:
        raise ValueError("k and n must be at least 1")
    if k > n:
        raise ValueError(f"k ({k}) cannot exceed n ({n})")
    recent = list(history)[-n:]
    names = list(dict.fromkeys(c.name for w in recent for c in w.checks))
    confirmed: dict[str, Severity] = {}
    pending: dict[str, Severity] = {}
    reasons: list[str] = []
    for name in names:
        ranks = [rank(w.severity_of(name)) for w in recent]
        held: Severity = "ok"
        candidates: tuple[Severity, ...] = ("critical", "alert")
        for candidate in candidates:
            if sum(r >= rank(candidate) for r in ranks) >= k:
                held = candidate
                break
        if held != "ok":
            confirmed[name] = held
            hits = sum(r >= rank(held) for r in ranks)
            reasons.append(f"{name}: {held} in {hits} of the last {len(recent)} windows")
        latest = SEVERITIES[ranks[-1]] if recent else "ok"
        if rank(latest) > rank(held):
            pending[name] = latest
    verdict = worst(list(confirmed.values()))
    return Decision(
        verdict=verdict,
        confirmed=confirmed,
        pending=pending,
        k=k,
        n=n,
        windows=len(recent),
        reasons=tuple(reasons),
    )
