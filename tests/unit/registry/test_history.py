from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
import pytest

from dataplatform.registry.history import (
    HistoryEvent,
    append_events,
    ensure_history_table,
    holder_at,
    next_timestamp,
    production_lineage,
    read_history,
    replay,
    rollback_candidates,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def ev(i: int, version: str, action: str, to: str | None, frm: str | None = None) -> HistoryEvent:
    return HistoryEvent(
        model_name="m",
        version=version,
        action=action,
        actor="ci",  # type: ignore[arg-type]
        occurred_at=T0 + timedelta(hours=i),
        to_alias=to,
        from_alias=frm,
    )


class DuckWarehouse:
    """The two methods of the warehouse protocol over an in-memory DuckDB connection."""

    backend = "duckdb"

    def __init__(self) -> None:
        self.con = duckdb.connect()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, list(params) if params else None)

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        return self.con.execute(sql, list(params) if params else None).df()


@pytest.fixture
def wh() -> Iterator[DuckWarehouse]:
    w = DuckWarehouse()
    ensure_history_table(w)
    ensure_history_table(w)  # idempotent
    yield w
    w.con.close()


def test_round_trip_keeps_order_and_fields(wh: DuckWarehouse) -> None:
    events = [ev(1, "1", "promote", "production"), ev(0, "2", "blocked", "staging")]
    append_events(wh, [*events, ev(2, "1", "archive", None, "production")])
    got = read_history(wh, "m")
    assert [(e.version, e.action) for e in got] == [
        ("2", "blocked"),
        ("1", "promote"),
        ("1", "archive"),
    ]
    assert got[1].occurred_at == T0 + timedelta(hours=1)
    assert got[1].from_alias is None
    assert got[1].to_alias == "production"
    assert all(e.event_id for e in got)
    assert read_history(wh, "other") == []


def test_duplicate_event_id_rejected(wh: DuckWarehouse) -> None:
    stored = append_events(wh, [ev(0, "1", "promote", "staging")])
    with pytest.raises(duckdb.ConstraintException):
        append_events(wh, stored)


def test_replay_and_holder_at() -> None:
    events = [
        ev(0, "1", "promote", "staging"),
        ev(1, "1", "promote", "production", "staging"),
        ev(2, "2", "blocked", "staging"),
        ev(3, "2", "promote", "staging"),
        ev(4, "1", "archive", None, "production"),
        ev(4, "2", "promote", "production", "staging"),
    ]
    assert replay(events, T0) == {"staging": "1"}
    assert holder_at(events, "production", T0 + timedelta(hours=3, minutes=59)) == "1"
    assert holder_at(events, "staging", T0 + timedelta(hours=2)) is None  # blocked ignored
    assert replay(events) == {"staging": None, "production": "2"}


def test_lineage_pushes_promotions_and_pops_rollbacks() -> None:
    events = [ev(i, v, "promote", "production") for i, v in enumerate(["1", "2", "3"])]
    assert production_lineage(events) == ["1", "2", "3"]
    assert rollback_candidates(events, "3") == ["2", "1"]
    events.append(ev(5, "2", "rollback", "production"))
    assert production_lineage(events) == ["1", "2"]
    assert rollback_candidates(events, "2") == ["1"]
    events.append(ev(6, "1", "rollback", "production"))
    assert rollback_candidates(events, "1") == []
    assert rollback_candidates([], "4") == []
    # History out of step with the registry (alias moved by hand): go back to the last known.
    assert rollback_candidates(events[:3], "9") == ["3", "2", "1"]


def test_next_timestamp_is_strictly_increasing() -> None:
    events = [ev(0, "1", "promote", "staging")]
    assert next_timestamp(events, T0) == T0 + timedelta(microseconds=1)
    assert next_timestamp(events, T0 - timedelta(days=1)) == T0 + timedelta(microseconds=1)
    later = T0 + timedelta(seconds=5)
    assert next_timestamp(events, later) == later
    with pytest.raises(ValueError, match="timezone-aware"):
        next_timestamp(events, datetime(2026, 3, 1))
