"""Sampled predictions → `monitoring.prediction_log`, written off the request path.

Requests put rows on a bounded queue (never blocking: a full queue drops the rows and counts
them); one background thread writes them in multi-row INSERTs, opening the warehouse per flush
so an embedded DuckDB file is not held between flushes. A failed write is retried on the next
flush, then dropped and counted. The DDL is portable (DuckDB and PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataplatform.adapters.warehouse import Warehouse

log = logging.getLogger(__name__)

PREDICTION_LOG_TABLE = "monitoring.prediction_log"
PREDICTION_LOG_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS monitoring",
    """
    CREATE TABLE IF NOT EXISTS monitoring.prediction_log (
        request_id        TEXT NOT NULL,
        role              TEXT NOT NULL,
        predicted_at      TIMESTAMPTZ NOT NULL,
        route             TEXT NOT NULL,
        model_name        TEXT NOT NULL,
        model_version     TEXT NOT NULL,
        model_semver      TEXT,
        model_alias       TEXT NOT NULL,
        repo              TEXT,
        commit_sha        TEXT,
        predicted_class   BIGINT NOT NULL,
        probability       DOUBLE PRECISION NOT NULL,
        features_json     TEXT NOT NULL,
        PRIMARY KEY (request_id, role, model_version)
    )
    """,
)
MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class PredictionLogRow:
    """One prediction; `role` is 'served' (returned to the client) or 'shadow' (logged only)."""

    request_id: str
    role: str
    predicted_at: datetime
    route: str
    model_name: str
    model_version: str
    model_semver: str | None
    model_alias: str
    repo: str | None
    commit_sha: str | None
    predicted_class: int
    probability: float
    features_json: str


COLUMNS = tuple(PredictionLogRow.__dataclass_fields__)


def features_json(values: dict[str, Any]) -> str:
    """Compact, key-sorted JSON of one row's features."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"), default=int)


def ensure_table(warehouse: Warehouse) -> None:
    """Create the prediction log table if missing (a migrated database has it: no DDL)."""
    warehouse.ensure_ddl(PREDICTION_LOG_DDL, (PREDICTION_LOG_TABLE,))


def insert_rows(warehouse: Warehouse, rows: Sequence[PredictionLogRow]) -> None:
    """Insert `rows` into the existing table (one multi-row INSERT, `?` placeholders)."""
    if not rows:
        return
    one = "(" + ", ".join("?" for _ in COLUMNS) + ")"
    sql = (
        f"INSERT INTO {PREDICTION_LOG_TABLE} ({', '.join(COLUMNS)}) VALUES "
        + ", ".join(one for _ in rows)
        + " ON CONFLICT DO NOTHING"
    )
    warehouse.execute(sql, [value for row in rows for value in astuple(row)])


class PredictionLogWriter:
    """Bounded queue + background writer thread."""

    def __init__(
        self,
        open_warehouse: Callable[[], Warehouse],
        *,
        queue_size: int = 10_000,
        batch_rows: int = 500,
        flush_interval_s: float = 1.0,
        on_dropped: Callable[[int], None] = lambda n: None,
        on_written: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._open = open_warehouse
        self._queue: queue.Queue[PredictionLogRow | None] = queue.Queue(maxsize=queue_size)
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.on_dropped = on_dropped
        self.on_written = on_written
        self._thread: threading.Thread | None = None
        self._flushed = threading.Condition()
        self.written = 0
        self.dropped = 0
        self._table_ready = False

    def submit(self, rows: Sequence[PredictionLogRow]) -> None:
        """Queue `rows` without blocking; rows that do not fit are dropped and counted."""
        for i, row in enumerate(rows):
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self._drop(len(rows) - i)
                return

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="prediction-log", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)  # blocks only while the queue is full: the writer drains it
            self._thread.join(timeout)
            self._thread = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the queue is empty and nothing is pending (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._flushed:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._flushed.wait(remaining)
        return True

    def _drop(self, count: int) -> None:
        self.dropped += count
        self.on_dropped(count)

    def _loop(self) -> None:
        pending: list[PredictionLogRow] = []
        attempts = 0
        taken = 0  # rows taken off the queue and not yet task_done()
        stopping = False
        while not stopping:
            deadline = time.monotonic() + self.flush_interval_s
            while len(pending) < self.batch_rows:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                taken += 1
                if item is None:
                    stopping = True
                    break
                pending.append(item)
            if pending:
                try:
                    self._write(pending)
                    self.written += len(pending)
                    self.on_written(len(pending))
                    pending, attempts = [], 0
                except Exception as exc:
                    attempts += 1
                    log.warning("prediction log write failed (%s): %s", type(exc).__name__, exc)
                    if attempts >= MAX_ATTEMPTS or stopping:
                        self._drop(len(pending))
                        pending, attempts = [], 0
                    else:
                        time.sleep(self.flush_interval_s)  # back off before the retry
            if not pending:
                self._done(taken)
                taken = 0

    def _done(self, count: int) -> None:
        with self._flushed:
            for _ in range(count):
                self._queue.task_done()
            self._flushed.notify_all()

    def _write(self, rows: Sequence[PredictionLogRow]) -> None:
        warehouse = self._open()
        try:
            if not self._table_ready:  # once per logger, not on every flush
                ensure_table(warehouse)
                self._table_ready = True
            insert_rows(warehouse, rows)
        finally:
            warehouse.close()
