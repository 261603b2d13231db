"""A work queue of ingest sources in PostgreSQL (`raw.ingest_queue`), shared by many workers.

One row per source spec (path, clone URL or dataset file). A worker claims the oldest claimable
row with ``SELECT ... FOR UPDATE SKIP LOCKED`` (concurrent claimers never wait for each other and
never get the same row) and takes a *lease* on it: ``lease_expires_at`` in the database's clock.
While it works it renews the lease (heartbeat). A row whose lease expired — its worker was
killed, hung or lost its network — is claimable again, so another worker finishes the job.
Finishing checks the lease owner: a worker whose lease was taken over cannot mark the row done.

Doing an item twice is harmless because ingestion and loading are idempotent (raw batches are
keyed by batch id, `raw.commits` by repo + commit_sha); the lease only keeps work from being
done twice *needlessly*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

QUEUE_TABLE = "raw.ingest_queue"
STATUSES = ("pending", "running", "done", "failed")

QUEUE_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS raw",
    """
    CREATE TABLE IF NOT EXISTS raw.ingest_queue (
        item_id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source            TEXT NOT NULL UNIQUE,
        status            TEXT NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'running', 'done', 'failed')),
        attempts          INTEGER NOT NULL DEFAULT 0,
        lease_owner       TEXT,
        lease_expires_at  TIMESTAMPTZ,
        heartbeat_at      TIMESTAMPTZ,
        enqueued_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
        started_at        TIMESTAMPTZ,
        finished_at       TIMESTAMPTZ,
        rows_ingested     BIGINT,
        rows_inserted     BIGINT,
        batches_loaded    INTEGER,
        last_error        TEXT
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS ingest_queue_claimable
        ON raw.ingest_queue (enqueued_at, item_id) WHERE status IN ('pending', 'running')
    """,
)

# Expired leases of items out of attempts become `failed` (they would otherwise stay running).
_SWEEP_SQL = """
    UPDATE raw.ingest_queue
    SET status = 'failed', finished_at = now(), lease_expires_at = NULL,
        last_error = coalesce(last_error || '; ', '') || 'lease of ' || coalesce(lease_owner, '?')
                     || ' expired after the last attempt'
    WHERE status = 'running' AND lease_expires_at < now() AND attempts >= %(max_attempts)s
"""

_CLAIM_SQL = """
    WITH next AS (
        SELECT item_id FROM raw.ingest_queue
        WHERE (status = 'pending' OR (status = 'running' AND lease_expires_at < now()))
          AND attempts < %(max_attempts)s
        ORDER BY enqueued_at, item_id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raw.ingest_queue AS q
    SET status = 'running',
        attempts = q.attempts + 1,
        last_error = CASE WHEN q.status = 'running'
                          THEN coalesce(q.last_error || '; ', '') || 'lease of '
                               || coalesce(q.lease_owner, '?') || ' expired'
                          ELSE q.last_error END,
        lease_owner = %(owner)s,
        lease_expires_at = now() + make_interval(secs => %(lease)s),
        heartbeat_at = now(),
        started_at = now()
    FROM next
    WHERE q.item_id = next.item_id
    RETURNING q.item_id, q.source, q.attempts, q.lease_expires_at
"""


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A claimed item: what to ingest, and the lease the claimer holds on it."""

    item_id: int
    source: str
    attempts: int  # including this one
    lease_expires_at: datetime


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One row of the queue, as `WorkQueue.items` lists it."""

    item_id: int
    source: str
    status: str
    attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    rows_ingested: int | None
    rows_inserted: int | None
    last_error: str | None


class WorkQueue:
    """`raw.ingest_queue` through one autocommit psycopg connection (one per thread)."""

    def __init__(self, conn: psycopg.Connection[Any], *, max_attempts: int = 3) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.conn = conn
        self.max_attempts = max_attempts

    @classmethod
    def connect(cls, conninfo: str, *, max_attempts: int = 3) -> WorkQueue:
        """A queue on a new autocommit connection (close it with `close`)."""
        import psycopg

        return cls(psycopg.connect(conninfo, autocommit=True), max_attempts=max_attempts)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def ensure_schema(self) -> None:
        """Create the queue table if missing (serialised: concurrent first runs are safe)."""
        # A migrated database has it, and worker logins may not create it (no CREATE on raw).
        row = self.conn.execute("SELECT to_regclass('raw.ingest_queue') IS NOT NULL").fetchone()
        if row is not None and row[0]:
            return
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('dataplatform.ingest_queue'))")
            for statement in QUEUE_DDL:
                self.conn.execute(statement)

    def enqueue(self, sources: list[str]) -> int:
        """Queue each source once; a finished or failed one is queued again (an incremental
        re-ingest). Returns how many rows became pending; running items are left alone."""
        queued = 0
        with self.conn.transaction(), self.conn.cursor() as cur:
            for source in sources:
                cur.execute(
                    """
                    INSERT INTO raw.ingest_queue (source) VALUES (%s)
                    ON CONFLICT (source) DO UPDATE
                    SET status = 'pending', attempts = 0, lease_owner = NULL,
                        lease_expires_at = NULL, last_error = NULL, finished_at = NULL,
                        enqueued_at = now()
                    WHERE raw.ingest_queue.status IN ('done', 'failed')
                    """,
                    [source],
                )
                queued += max(cur.rowcount, 0)
        return queued

    def claim(self, owner: str, lease_seconds: float) -> WorkItem | None:
        """Lease the oldest claimable item to `owner`; None when nothing is claimable now."""
        params = {"owner": owner, "lease": lease_seconds, "max_attempts": self.max_attempts}
        with self.conn.transaction():
            self.conn.execute(_SWEEP_SQL, params)
            row = self.conn.execute(_CLAIM_SQL, params).fetchone()
        if row is None:
            return None
        return WorkItem(item_id=row[0], source=row[1], attempts=row[2], lease_expires_at=row[3])

    def heartbeat(self, item: WorkItem, owner: str, lease_seconds: float) -> bool:
        """Extend `owner`'s lease; False when it no longer holds the item (lease taken over)."""
        cur = self.conn.execute(
            """
            UPDATE raw.ingest_queue
            SET lease_expires_at = now() + make_interval(secs => %s), heartbeat_at = now()
            WHERE item_id = %s AND lease_owner = %s AND status = 'running'
            """,
            [lease_seconds, item.item_id, owner],
        )
        return cur.rowcount == 1

    def complete(
        self,
        item: WorkItem,
        owner: str,
        *,
        rows_ingested: int,
        rows_inserted: int,
        batches_loaded: int,
    ) -> bool:
        """Mark the item done; False (nothing changed) when `owner` lost its lease meanwhile."""
        cur = self.conn.execute(
            """
            UPDATE raw.ingest_queue
            SET status = 'done', finished_at = now(), lease_expires_at = NULL,
                rows_ingested = %s, rows_inserted = %s, batches_loaded = %s
            WHERE item_id = %s AND lease_owner = %s AND status = 'running'
            """,
            [rows_ingested, rows_inserted, batches_loaded, item.item_id, owner],
        )
        return cur.rowcount == 1

    def fail(self, item: WorkItem, owner: str, error: str) -> bool:
        """Give the item back: pending again while attempts remain, else `failed`."""
        cur = self.conn.execute(
            """
            UPDATE raw.ingest_queue
            SET status = CASE WHEN attempts >= %s THEN 'failed' ELSE 'pending' END,
                finished_at = CASE WHEN attempts >= %s THEN now() END,
                lease_expires_at = NULL, last_error = %s
            WHERE item_id = %s AND lease_owner = %s AND status = 'running'
            """,
            [self.max_attempts, self.max_attempts, error[:2000], item.item_id, owner],
        )
        return cur.rowcount == 1

    def counts(self) -> dict[str, int]:
        """Number of items per status (every status present, 0 when none)."""
        rows = self.conn.execute(
            "SELECT status, count(*) FROM raw.ingest_queue GROUP BY status"
        ).fetchall()
        found = {status: int(n) for status, n in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    def outstanding(self) -> int:
        """Items not finished yet: pending, or running (possibly under an expired lease) with
        attempts left."""
        row = self.conn.execute(
            """
            SELECT count(*) FROM raw.ingest_queue
            WHERE status = 'pending'
               OR (status = 'running' AND (lease_expires_at >= now() OR attempts < %s))
            """,
            [self.max_attempts],
        ).fetchone()
        return int(row[0]) if row else 0

    def items(self) -> list[QueueRow]:
        """Every row, oldest first."""
        rows = self.conn.execute(
            """
            SELECT item_id, source, status, attempts, lease_owner, lease_expires_at,
                   rows_ingested, rows_inserted, last_error
            FROM raw.ingest_queue ORDER BY enqueued_at, item_id
            """
        ).fetchall()
        return [QueueRow(*row) for row in rows]
