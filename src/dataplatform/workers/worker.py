"""A pipeline worker: claims sources from the queue and ingests + loads them, one at a time.

Run several (processes, pods, hosts) against the same PostgreSQL and object store. Each item is
``ingest(source)`` → raw batch(es) in the object store → load of that source's batches that the
warehouse has not recorded yet. The load step also picks up batches that a killed worker wrote
but never loaded (a retry of its item finds no new commits, but its batch is still pending).

Like `cli`, this module composes stages (it calls `dataplatform.pipeline`); stages never import it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.warehouse import open_warehouse
from dataplatform.config import Settings
from dataplatform.store.batches import list_manifests
from dataplatform.store.loader import read_batch
from dataplatform.workers.queue import WorkItem, WorkQueue

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_POLL_SECONDS = 1.0


class WorkerError(RuntimeError):
    """The worker cannot run with these settings."""


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """What processing one source did."""

    source_name: str
    rows_ingested: int
    rows_inserted: int
    batches_loaded: int


@dataclass
class WorkerStats:
    """Totals of one `Worker.run`."""

    items_done: int = 0
    items_failed: int = 0
    leases_lost: int = 0
    rows_inserted: int = 0
    errors: list[str] = field(default_factory=list)


def new_worker_id() -> str:
    """``host:pid:random`` — unique per worker process, readable in `raw.ingest_queue`."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def process_source(settings: Settings, spec: str) -> ItemOutcome:
    """Ingest `spec` into the object store, then load its batches the warehouse lacks."""
    # Imported here: `pipeline` pulls in training (sklearn, MLflow), which `enqueue` and
    # `status` do not need.
    from dataplatform import pipeline

    ingested = pipeline.ingest(settings, [spec])
    name = ingested.sources[0].source
    store = ObjectStore.from_settings(settings)
    pii_key = settings.pii_hash_key.get_secret_value().encode()
    inserted = loaded = 0
    with open_warehouse(settings) as warehouse:
        warehouse.ensure_raw_schema()
        done = warehouse.loaded_batch_ids()
        for manifest in list_manifests(store):
            if manifest.source != name or manifest.batch_id in done:
                continue
            commits, quarantine = read_batch(store, manifest)
            result = warehouse.load_batch(manifest, commits, quarantine, pii_key)
            if not result.already_loaded:  # else another worker loaded it meanwhile
                loaded += 1
                inserted += result.rows_inserted
    return ItemOutcome(name, ingested.rows, inserted, loaded)


class _Heartbeat:
    """Renews a lease every third of its length on its own connection, until stopped."""

    def __init__(
        self, conninfo: str, item: WorkItem, owner: str, lease_seconds: float, max_attempts: int
    ) -> None:
        self._conninfo = conninfo
        self._item = item
        self._owner = owner
        self._lease = lease_seconds
        self._max_attempts = max_attempts
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        queue: WorkQueue | None = None
        try:
            while not self._stop.wait(self._lease / 3):
                try:
                    if queue is None:
                        queue = WorkQueue.connect(self._conninfo, max_attempts=self._max_attempts)
                    if not queue.heartbeat(self._item, self._owner, self._lease):
                        self.lost.set()
                        return
                except Exception as exc:  # a DB hiccup: retry until the lease runs out
                    log.warning("heartbeat of item %s failed: %s", self._item.item_id, exc)
                    if queue is not None:
                        queue.close()
                        queue = None
        finally:
            if queue is not None:
                queue.close()


class Worker:
    """Claims items from `raw.ingest_queue` and processes them until told to stop."""

    def __init__(
        self,
        settings: Settings,
        *,
        worker_id: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        max_attempts: int = 3,
        process: Callable[[Settings, str], ItemOutcome] = process_source,
    ) -> None:
        if settings.warehouse_backend != "postgres":
            raise WorkerError(
                "workers coordinate through PostgreSQL: set DATAPLATFORM_WAREHOUSE_BACKEND=postgres"
            )
        if lease_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("lease_seconds and poll_seconds must be > 0")
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self._process = process
        self.stop_requested = threading.Event()

    def run(self, *, once: bool = False, forever: bool = False) -> WorkerStats:
        """Process items: at most one with `once`; until the queue is drained (nothing pending
        or running anywhere) by default; or until `stop_requested` with `forever`."""
        stats = WorkerStats()
        conninfo = self.settings.postgres_conninfo()
        queue = WorkQueue.connect(conninfo, max_attempts=self.max_attempts)
        try:
            queue.ensure_schema()
            while not self.stop_requested.is_set():
                item = queue.claim(self.worker_id, self.lease_seconds)
                if item is None:
                    if once or (not forever and queue.outstanding() == 0):
                        break
                    # Others hold the rest (maybe under a lease that will expire): wait.
                    self.stop_requested.wait(self.poll_seconds)
                    continue
                self._handle(queue, conninfo, item, stats)
                if once:
                    break
        finally:
            queue.close()
        return stats

    def _handle(self, queue: WorkQueue, conninfo: str, item: WorkItem, stats: WorkerStats) -> None:
        log.info(
            "worker %s: item %s (%s), attempt %s",
            self.worker_id,
            item.item_id,
            item.source,
            item.attempts,
        )
        started = time.perf_counter()
        with _Heartbeat(conninfo, item, self.worker_id, self.lease_seconds, self.max_attempts):
            try:
                outcome = self._process(self.settings, item.source)
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                stats.errors.append(f"{item.source}: {message}")
                stats.items_failed += 1
                if not queue.fail(item, self.worker_id, message):
                    stats.leases_lost += 1
                log.error("worker %s: item %s failed: %s", self.worker_id, item.item_id, message)
                return
        finished = queue.complete(
            item,
            self.worker_id,
            rows_ingested=outcome.rows_ingested,
            rows_inserted=outcome.rows_inserted,
            batches_loaded=outcome.batches_loaded,
        )
        if not finished:
            # Another worker took the item over; what we loaded is idempotent, so nothing is
            # lost or doubled, but the row is theirs to finish.
            stats.leases_lost += 1
            log.warning("worker %s: lease of item %s was lost", self.worker_id, item.item_id)
            return
        stats.items_done += 1
        stats.rows_inserted += outcome.rows_inserted
        log.info(
            "worker %s: item %s done in %.1fs: %s rows read, %s new, %s batches",
            self.worker_id,
            item.item_id,
            time.perf_counter() - started,
            outcome.rows_ingested,
            outcome.rows_inserted,
            outcome.batches_loaded,
        )
