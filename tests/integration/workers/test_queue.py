"""raw.ingest_queue semantics on a real PostgreSQL: exclusive claims, leases, take-over."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from dataplatform.workers.queue import WorkQueue

pytestmark = pytest.mark.postgres


@pytest.fixture
def queues(pg_db: dict[str, Any]) -> Iterator[tuple[WorkQueue, WorkQueue]]:
    first = WorkQueue.connect(pg_db["conninfo"], max_attempts=2)
    second = WorkQueue.connect(pg_db["conninfo"], max_attempts=2)
    first.ensure_schema()
    second.ensure_schema()  # idempotent
    yield first, second
    first.close()
    second.close()


def test_concurrent_claims_never_share_an_item(queues: tuple[WorkQueue, WorkQueue]) -> None:
    a, b = queues
    assert a.enqueue(["/src/one", "/src/two", "/src/one"]) == 2
    # `a` holds its claim's row lock inside an open transaction while `b` claims: SKIP LOCKED.
    with a.conn.transaction():
        locked = a.conn.execute(
            "SELECT item_id FROM raw.ingest_queue ORDER BY item_id LIMIT 1 FOR UPDATE"
        ).fetchone()
        other = b.claim("worker-b", 30)
    assert other is not None
    assert locked is not None
    assert other.item_id != locked[0]
    mine = a.claim("worker-a", 30)
    assert mine is not None
    assert mine.item_id == locked[0]
    assert a.claim("worker-a", 30) is None  # both leased, none expired
    assert a.counts() == {"pending": 0, "running": 2, "done": 0, "failed": 0}
    assert a.complete(mine, "worker-a", rows_ingested=3, rows_inserted=3, batches_loaded=1)
    assert not b.complete(mine, "worker-b", rows_ingested=0, rows_inserted=0, batches_loaded=0)
    assert a.outstanding() == 1


def test_an_expired_lease_is_taken_over_and_the_old_owner_is_fenced(
    queues: tuple[WorkQueue, WorkQueue],
) -> None:
    a, b = queues
    a.enqueue(["/src/slow"])
    item = a.claim("dead-worker", 0.2)
    assert item is not None
    assert item.attempts == 1
    assert b.claim("worker-b", 30) is None  # lease still valid
    time.sleep(0.4)
    taken = b.claim("worker-b", 30)
    assert taken is not None
    assert taken.item_id == item.item_id
    assert taken.attempts == 2
    # The old owner can neither renew nor finish nor fail the item any more.
    assert not a.heartbeat(item, "dead-worker", 30)
    assert not a.complete(item, "dead-worker", rows_ingested=1, rows_inserted=1, batches_loaded=1)
    assert not a.fail(item, "dead-worker", "boom")
    assert b.heartbeat(taken, "worker-b", 30)
    assert b.complete(taken, "worker-b", rows_ingested=5, rows_inserted=5, batches_loaded=1)
    (row,) = a.items()
    assert (row.status, row.attempts, row.lease_owner, row.rows_inserted) == (
        "done",
        2,
        "worker-b",
        5,
    )
    assert row.last_error is not None
    assert "dead-worker" in row.last_error
    # A finished source can be queued again (incremental re-ingest).
    assert a.enqueue(["/src/slow"]) == 1
    assert a.counts()["pending"] == 1


def test_failures_are_retried_then_marked_failed(queues: tuple[WorkQueue, WorkQueue]) -> None:
    a, _ = queues
    a.enqueue(["/src/broken"])
    first = a.claim("w", 30)
    assert first is not None
    assert a.fail(first, "w", "SourceError: boom")
    assert a.counts()["pending"] == 1
    second = a.claim("w", 30)
    assert second is not None
    assert second.attempts == 2
    assert a.fail(second, "w", "SourceError: boom again")
    assert a.counts() == {"pending": 0, "running": 0, "done": 0, "failed": 1}
    assert a.claim("w", 30) is None
    assert a.outstanding() == 0
    # A lease that expires on the last attempt ends as failed too, not running forever.
    a.enqueue(["/src/hung"])
    hung = a.claim("w", 30)
    assert hung is not None
    a.conn.execute("UPDATE raw.ingest_queue SET attempts = 2, lease_expires_at = now()")
    assert a.outstanding() == 0
    assert a.claim("w", 30) is None
    assert a.counts()["failed"] == 2
