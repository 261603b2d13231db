"""Load raw batches from the object store into the warehouse, oldest first, each exactly once.

`load_pending` loads what the store holds; `LiveLoader` loads a batch while it is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.warehouse import LoadResult, Warehouse
from dataplatform.contracts import COMMIT_SCHEMA, QUARANTINE_SCHEMA, BatchManifest
from dataplatform.store.batches import (
    EMPTY_SHA256,
    BatchSink,
    list_manifests,
    quarantine_checksum,
)

# Called after each batch: (batches done, batches to do, the manifest, its result).
ProgressCallback = Callable[[int, int, BatchManifest, LoadResult], None]


log = logging.getLogger(__name__)


class ChecksumMismatchError(ValueError):
    """A raw file's bytes do not match its manifest; the batch was not loaded."""

    def __init__(self, batch_id: str, key: str, expected: str, actual: str) -> None:
        super().__init__(
            f"batch {batch_id}: checksum mismatch for {key} (manifest {expected[:12]}…, "
            f"file {actual[:12]}…); the batch was not loaded"
        )
        self.batch_id = batch_id
        self.key = key


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """Totals of one `load_pending` run."""

    batches_loaded: int
    batches_skipped: int  # already recorded in raw.ingest_batches
    rows_inserted: int
    rows_already_present: int  # rows whose (repo, commit_sha) an earlier batch had loaded
    quarantined: int


def _read_verified(
    store: ObjectStore, batch_id: str, key: str | None, expected: str | None, schema: pa.Schema
) -> pa.Table:
    if key is None:
        if expected not in (None, EMPTY_SHA256):
            raise ChecksumMismatchError(batch_id, "<no file>", str(expected), EMPTY_SHA256)
        return schema.empty_table()
    data = store.read_bytes(key)
    actual = hashlib.sha256(data).hexdigest()
    if expected is not None and actual != expected:
        raise ChecksumMismatchError(batch_id, key, expected, actual)
    return pq.read_table(pa.BufferReader(data), schema=schema)


def read_batch(store: ObjectStore, manifest: BatchManifest) -> tuple[pa.Table, pa.Table]:
    """The commits and quarantine tables of a batch, after checking their sha256."""
    commits = _read_verified(
        store, manifest.batch_id, manifest.data_path, manifest.checksum, COMMIT_SCHEMA
    )
    quarantine = _read_verified(
        store,
        manifest.batch_id,
        manifest.quarantine_path,
        quarantine_checksum(manifest),
        QUARANTINE_SCHEMA,
    )
    return commits, quarantine


def load_pending(
    store: ObjectStore,
    warehouse: Warehouse,
    pii_key: bytes,
    progress: ProgressCallback | None = None,
) -> LoadSummary:
    """Load every batch with a manifest that the warehouse has not recorded, in batch_id order.

    Stops at the first batch that fails (e.g. `ChecksumMismatchError`), which is left unloaded;
    the batches before it stay loaded, so a re-run resumes there.
    """
    warehouse.ensure_raw_schema()
    manifests = list_manifests(store)
    done_ids = warehouse.loaded_batch_ids()
    pending = [m for m in manifests if m.batch_id not in done_ids]
    loaded = inserted = present = quarantined = 0
    skipped = len(manifests) - len(pending)
    for index, manifest in enumerate(pending, start=1):
        commits, quarantine = read_batch(store, manifest)
        result = warehouse.load_batch(manifest, commits, quarantine, pii_key)
        if result.already_loaded:  # another loader got there first
            skipped += 1
        else:
            loaded += 1
            inserted += result.rows_inserted
            present += result.rows_skipped
            quarantined += result.quarantined
        if progress is not None:
            progress(index, len(pending), manifest, result)
    return LoadSummary(
        batches_loaded=loaded,
        batches_skipped=skipped,
        rows_inserted=inserted,
        rows_already_present=present,
        quarantined=quarantined,
    )


class LiveLoader:
    """Loads batches into the warehouse while they are being written (`BatchWriter(sink=...)`).

    Each chunk of commits is inserted as soon as the writer has spooled it, inside one warehouse
    transaction per batch that commits only once the batch's manifest is in the store, so the
    load overlaps the source's stream instead of following it. Atomic and idempotent like
    `load_pending`: a crash or failure before the commit leaves nothing in the warehouse, and a
    batch that was published but not loaded is simply loaded by the next `load_pending`.

    Needs a warehouse with ``begin_load`` (DuckDB); elsewhere, and for a second batch while one
    is live (one transaction per connection), `sink` returns None and `load_pending` loads the
    batch afterwards. Call `load_pending_first` before ingesting, so older batches keep their
    place in the load order.
    """

    def __init__(self, store: ObjectStore, warehouse: Warehouse, pii_key: bytes) -> None:
        self.store = store
        self.warehouse = warehouse
        self.pii_key = pii_key
        self.loaded: list[tuple[BatchManifest, LoadResult]] = []
        self.failures: list[tuple[str, BaseException]] = []  # batch_id, error: loaded later
        self._before: LoadSummary | None = None
        self._active: _LiveSink | None = None

    def load_pending_first(self) -> LoadSummary:
        """`load_pending` of the batches already in the store (they load before new ones)."""
        self._before = load_pending(self.store, self.warehouse, self.pii_key)
        return self._before

    def sink(self) -> BatchSink | None:
        """A sink for one new batch, or None (this warehouse or state cannot load it live)."""
        if self._active is not None or not hasattr(self.warehouse, "begin_load"):
            return None
        self._active = _LiveSink(self)
        return self._active

    def summary(self, after: LoadSummary | None = None) -> LoadSummary:
        """What `load_pending_first` and the live loads did, plus a `load_pending` run `after`
        them, as one `load_pending` summary (`after` counted this run's batches as skipped)."""
        before = self._before or LoadSummary(0, 0, 0, 0, 0)
        after = after or LoadSummary(0, before.batches_skipped + before.batches_loaded, 0, 0, 0)
        done = [r for _, r in self.loaded if not r.already_loaded]
        loaded = before.batches_loaded + len(done)
        return LoadSummary(
            batches_loaded=loaded + after.batches_loaded,
            batches_skipped=max(after.batches_skipped - loaded, 0),
            rows_inserted=before.rows_inserted
            + sum(r.rows_inserted for r in done)
            + after.rows_inserted,
            rows_already_present=before.rows_already_present
            + sum(r.rows_skipped for r in done)
            + after.rows_already_present,
            quarantined=before.quarantined + sum(r.quarantined for r in done) + after.quarantined,
        )


class _LiveSink:
    """One batch of a `LiveLoader`; never raises an `Exception` (it falls back instead)."""

    def __init__(self, owner: LiveLoader) -> None:
        self._owner = owner
        self._load: Any = None
        self._failed = False

    def _begin(self, batch_id: str) -> Any:
        if self._load is None:
            self._load = self._owner.warehouse.begin_load(  # type: ignore[attr-defined]
                batch_id, self._owner.pii_key
            )
        return self._load

    def commits(self, batch_id: str, chunk: pa.RecordBatch) -> None:
        if self._failed:
            return
        try:
            self._begin(batch_id).append(chunk)
        except Exception as exc:  # leave the batch to load_pending
            self._fail(batch_id, exc)

    def published(self, manifest: BatchManifest, quarantine: pa.Table) -> None:
        if self._failed:
            return
        try:
            result = self._begin(manifest.batch_id).finish(manifest, quarantine)
        except Exception as exc:
            self._fail(manifest.batch_id, exc)
            return
        self._owner.loaded.append((manifest, result))
        self._release()

    def abort(self) -> None:
        if self._load is not None:
            self._load.abort()
        self._release()

    def _fail(self, batch_id: str, exc: Exception) -> None:
        self._failed = True
        self._owner.failures.append((batch_id, exc))
        # Not an error of the run: the batch is published and the load stage loads it. Said,
        # so that a live path that always fails does not go unnoticed.
        log.warning(
            "live load of batch %s failed (%s: %s); the load stage will load it",
            batch_id,
            type(exc).__name__,
            exc,
        )
        with contextlib.suppress(Exception):
            self.abort()

    def _release(self) -> None:
        if self._owner._active is self:
            self._owner._active = None
