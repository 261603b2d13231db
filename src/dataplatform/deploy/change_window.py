"""Production change windows: when a deployment may start (design 1.2: weekly, Tue/Thu)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time

_DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
_SPEC = re.compile(
    r"^(?P<days>[a-z]{3}(?:,[a-z]{3})*)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class ChangeWindow:
    """Deployments may start on `iso_weekdays` (1=Mon..7=Sun) from `start` (inclusive) to `end`
    (exclusive), in UTC."""

    iso_weekdays: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.iso_weekdays or not self.iso_weekdays <= set(range(1, 8)):
            raise ValueError(f"weekdays must be within 1..7, got {sorted(self.iso_weekdays)}")
        if self.start >= self.end:
            raise ValueError(f"window start {self.start} must be before its end {self.end}")

    def contains(self, now: datetime) -> bool:
        """True when `now` (converted to UTC) falls inside this window."""
        utc = now.astimezone(UTC)
        return utc.isoweekday() in self.iso_weekdays and self.start <= utc.time() < self.end


# Design 2.2: Tue/Thu 10:00-14:00 UTC.
DEFAULT_WINDOWS: tuple[ChangeWindow, ...] = (
    ChangeWindow(frozenset({2, 4}), time(10, 0), time(14, 0)),
)


def in_change_window(now: datetime, windows: Iterable[ChangeWindow] = DEFAULT_WINDOWS) -> bool:
    """True when `now` is inside any of `windows`. `now` must be timezone-aware."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (naive times are ambiguous)")
    return any(window.contains(now) for window in windows)


def parse_windows(spec: str) -> tuple[ChangeWindow, ...]:
    """Windows from text such as ``"tue,thu 10:00-14:00; sat 08:00-09:30"`` (UTC)."""
    windows = []
    for part in filter(None, (p.strip().lower() for p in spec.split(";"))):
        match = _SPEC.match(part)
        if match is None:
            raise ValueError(f"bad change window {part!r}; expected e.g. 'tue,thu 10:00-14:00'")
        try:
            days = frozenset(_DAYS[d] for d in match["days"].split(","))
        except KeyError as exc:
            raise ValueError(f"unknown weekday {exc.args[0]!r} in {part!r}") from None
        windows.append(
            ChangeWindow(days, time.fromisoformat(match["start"]), time.fromisoformat(match["end"]))
        )
    if not windows:
        raise ValueError("no change window given")
    return tuple(windows)
