"""Load raw batches from the object store into the warehouse, oldest first, each exactly once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.warehouse import LoadResult, Warehouse
from dataplatform.contracts import COMMIT_SCHEMA, QUARANTINE_SCHEMA, BatchManifest
from dataplatform.store.batches import EMPTY_SHA256, list_manifests, quarantine_checksum

# Called after each batch: (batches done, batches to do, the manifest, its result).
ProgressCallback = Callable[[int, int, BatchManifest, LoadResult], None]


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
