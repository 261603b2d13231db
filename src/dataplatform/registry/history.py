"""Promotion history: the append-only table `registry.promotion_history` in the warehouse.

MLflow keeps no history of alias moves, so every promote / archive / rollback / blocked attempt is
a row here. The pure functions `replay` (alias holders at a time) and `production_lineage`
(what rollback goes back to) read a list of `HistoryEvent`s; the I/O functions take any object
with `execute` / `query_df` using `?` placeholders (the warehouse adapter of either backend).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import pandas as pd

Action = Literal["promote", "archive", "rollback", "blocked"]
ACTIONS: tuple[Action, ...] = ("promote", "archive", "rollback", "blocked")
PRODUCTION = "production"
HISTORY_TABLE = "registry.promotion_history"

# Portable between DuckDB and PostgreSQL. Append-only by convention here and by grants in
# production (migration 0008: the ML role gets INSERT/SELECT only).
HISTORY_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS registry",
    f"""
    CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
        event_id           TEXT PRIMARY KEY,
        model_name         TEXT NOT NULL,
        version            INTEGER NOT NULL,
        semver             TEXT,
        from_alias         TEXT,
        to_alias           TEXT,
        action             TEXT NOT NULL
            CHECK (action IN ('promote', 'archive', 'rollback', 'blocked')),
        actor              TEXT NOT NULL,
        occurred_at        TIMESTAMPTZ NOT NULL,
        reason             TEXT,
        gate_results_json  TEXT
    )
    """,
)
_COLUMNS = (
    "event_id",
    "model_name",
    "version",
    "semver",
    "from_alias",
    "to_alias",
    "action",
    "actor",
    "occurred_at",
    "reason",
    "gate_results_json",
)


class Warehouse(Protocol):
    """The slice of the warehouse adapter this module uses (`?` placeholders)."""

    backend: str  # "duckdb" | "postgres" (the lifecycle's audit rows and transactions need it)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any: ...

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame: ...


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One row of the promotion history."""

    model_name: str
    version: str
    action: Action
    actor: str
    occurred_at: datetime  # timezone-aware UTC
    semver: str | None = None
    from_alias: str | None = None
    to_alias: str | None = None
    reason: str | None = None
    gate_results_json: str | None = None
    event_id: str = ""

    def with_id(self) -> HistoryEvent:
        """The same event with a fresh id when it has none."""
        return self if self.event_id else replace(self, event_id=uuid.uuid4().hex)


def ensure_history_table(wh: Warehouse) -> None:
    """Create schema `registry` and the history table when missing (idempotent).

    Nothing is run when the table is already there: on a migrated PostgreSQL database an
    application role may INSERT/SELECT it but not ``CREATE SCHEMA`` (that needs CREATE on the
    database even with IF NOT EXISTS).
    """
    found = wh.query_df(
        "SELECT count(*) AS n FROM information_schema.tables "
        "WHERE table_schema = 'registry' AND table_name = 'promotion_history'"
    )
    if int(found["n"].iloc[0]):
        return
    for statement in HISTORY_DDL:
        wh.execute(statement)


def append_events(wh: Warehouse, events: Iterable[HistoryEvent]) -> list[HistoryEvent]:
    """Insert the events (ids assigned when missing); returns them as stored."""
    stored = []
    placeholders = ", ".join("?" for _ in _COLUMNS)
    sql = f"INSERT INTO {HISTORY_TABLE} ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
    for event in events:
        event = event.with_id()
        if event.action not in ACTIONS:
            raise ValueError(f"unknown history action {event.action!r}")
        wh.execute(
            sql,
            [
                event.event_id,
                event.model_name,
                int(event.version),
                event.semver,
                event.from_alias,
                event.to_alias,
                event.action,
                event.actor,
                _utc(event.occurred_at),
                event.reason,
                event.gate_results_json,
            ],
        )
        stored.append(event)
    return stored


def read_history(wh: Warehouse, model_name: str) -> list[HistoryEvent]:
    """Every event of `model_name`, oldest first."""
    df = wh.query_df(
        f"SELECT {', '.join(_COLUMNS)} FROM {HISTORY_TABLE} WHERE model_name = ? "
        "ORDER BY occurred_at, event_id",
        [model_name],
    )
    events = []
    for row in df.to_dict("records"):
        events.append(
            HistoryEvent(
                event_id=str(row["event_id"]),
                model_name=str(row["model_name"]),
                version=str(int(row["version"])),
                semver=_opt(row["semver"]),
                from_alias=_opt(row["from_alias"]),
                to_alias=_opt(row["to_alias"]),
                action=row["action"],
                actor=str(row["actor"]),
                occurred_at=_to_datetime(row["occurred_at"]),
                reason=_opt(row["reason"]),
                gate_results_json=_opt(row["gate_results_json"]),
            )
        )
    return sorted(events, key=lambda e: (e.occurred_at, e.event_id))


def next_timestamp(events: Sequence[HistoryEvent], now: datetime) -> datetime:
    """`now`, or 1 µs after the last event when the clock has not moved past it.

    Keeps the history strictly ordered by time even for events written in the same microsecond
    (an archive and the promotion that caused it) or under a clock step backwards.
    """
    now = _utc(now)
    if events and events[-1].occurred_at >= now:
        return events[-1].occurred_at + timedelta(microseconds=1)
    return now


def replay(events: Iterable[HistoryEvent], at: datetime | None = None) -> dict[str, str | None]:
    """Alias -> version holding it after the events up to `at` (all events when None)."""
    state: dict[str, str | None] = {}
    limit = _utc(at) if at is not None else None
    for event in events:
        if limit is not None and event.occurred_at > limit:
            break
        if event.action == "blocked":
            continue
        if event.from_alias and state.get(event.from_alias) == event.version:
            state[event.from_alias] = None
        if event.to_alias:
            state[event.to_alias] = event.version
    return state


def holder_at(events: Iterable[HistoryEvent], alias: str, at: datetime | None = None) -> str | None:
    """Version that held `alias` at time `at` (now when None), per the history."""
    return replay(events, at).get(alias)


def production_lineage(events: Iterable[HistoryEvent]) -> list[str]:
    """Versions that successively held `production`, as a stack: promotions push, rollbacks pop.

    After v1 → v2 → v3 and one rollback the stack is [v1, v2]; a second rollback goes to v1,
    never back to the version that was rolled away from.
    """
    stack: list[str] = []
    for event in events:
        if event.to_alias != PRODUCTION:
            continue
        if event.action == "promote":
            if not stack or stack[-1] != event.version:
                stack.append(event.version)
        elif event.action == "rollback":
            if stack:
                stack.pop()
            while stack and stack[-1] != event.version:
                stack.pop()
            if not stack:
                stack.append(event.version)
    return stack


def rollback_candidates(events: Iterable[HistoryEvent], current: str) -> list[str]:
    """Versions to roll `production` back to from `current`, best first (may be empty)."""
    stack = production_lineage(events)
    if stack and stack[-1] == current:
        stack = stack[:-1]
    seen: list[str] = []
    for version in reversed(stack):
        if version != current and version not in seen:
            seen.append(version)
    return seen


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("history timestamps must be timezone-aware")
    return value.astimezone(UTC)


def _to_datetime(value: Any) -> datetime:
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(f"unexpected occurred_at value {value!r}")
    if value.tzinfo is None:  # a backend that hands back naive values stores UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _opt(value: Any) -> str | None:
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
