"""Raw batches in the object store: Parquet commits + Parquet quarantine + a JSON manifest.

Layout (one batch = one repository from one source, written once, never overwritten)::

    raw/commits/repo=<owner>__<name>/ingest_date=YYYY-MM-DD/<batch_id>.parquet     COMMIT_SCHEMA
    raw/quarantine/repo=<owner>__<name>/ingest_date=YYYY-MM-DD/<batch_id>.parquet  QUARANTINE_SCHEMA
    raw/manifests/<batch_id>.json                                                  written LAST

A batch exists only once its manifest exists; data files without a manifest are leftovers of a
crashed writer and are ignored by the loader. Records are streamed into a local spool Parquet
file in chunks (row groups) of ``min(batch_rows, STREAM_FLUSH_ROWS)``, so a writer never holds
more than one chunk of Python objects and the Parquet encoding overlaps the source's stream
(`git log` keeps running while a chunk is written); ``close`` then only finishes the file.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.contracts import (
    COMMIT_SCHEMA,
    QUARANTINE_SCHEMA,
    BatchManifest,
    CommitRecord,
    QuarantinedRecord,
    Watermark,
)

MANIFEST_PREFIX = "raw/manifests/"
COMMITS_PREFIX = "raw/commits/"
QUARANTINE_PREFIX = "raw/quarantine/"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DEFAULT_BATCH_ROWS = 50_000
# Rows per Parquet row group at most: small enough that writing overlaps the stream and the
# tail after the last record is short, large enough that compression and scans do not suffer.
# A flush of 8,192 commits takes ~0.1 s; when git ends during one, all of it is tail. 4,096
# gave a 27-63 ms shorter tail and a 2-7 % shorter ingest in paired runs; 2,048, no more.
STREAM_FLUSH_ROWS = 4096
PARQUET_COMPRESSION = "zstd"

_COMMIT_FIELDS = tuple(COMMIT_SCHEMA.names)
_QUARANTINE_FIELDS = tuple(QUARANTINE_SCHEMA.names)
_COMMIT_GETTER = operator.attrgetter(*_COMMIT_FIELDS)
_QUARANTINE_GETTER = operator.attrgetter(*_QUARANTINE_FIELDS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


# --- names ---------------------------------------------------------------------------------
def new_batch_id(now: datetime | None = None) -> str:
    """Sortable, unique batch id: UTC timestamp to the microsecond + 8 random hex digits."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{at:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}"


def repo_partition(repo: str) -> str:
    """``owner/name`` → ``owner__name`` (the ``repo=`` partition value)."""
    if not repo or "/" not in repo:
        raise ValueError(f"repo must be 'owner/name', got {repo!r}")
    return repo.replace("/", "__")


def commits_key(repo: str, ingest_date: str, batch_id: str) -> str:
    """Object key of a batch's commits Parquet."""
    return (
        f"{COMMITS_PREFIX}repo={repo_partition(repo)}/ingest_date={ingest_date}/{batch_id}.parquet"
    )


def quarantine_key(repo: str, ingest_date: str, batch_id: str) -> str:
    """Object key of a batch's quarantine Parquet."""
    part = f"repo={repo_partition(repo)}/ingest_date={ingest_date}"
    return f"{QUARANTINE_PREFIX}{part}/{batch_id}.parquet"


def manifest_key(batch_id: str) -> str:
    """Object key of a batch's manifest."""
    return f"{MANIFEST_PREFIX}{batch_id}.json"


# --- manifests -----------------------------------------------------------------------------
def manifest_to_dict(manifest: BatchManifest) -> dict[str, Any]:
    """JSON-ready form of a manifest."""
    return {
        "batch_id": manifest.batch_id,
        "repo": manifest.repo,
        "source": manifest.source,
        "ingest_date": manifest.ingest_date,
        "row_count": manifest.row_count,
        "quarantined_count": manifest.quarantined_count,
        "checksum": manifest.checksum,
        "data_path": manifest.data_path,
        "quarantine_path": manifest.quarantine_path,
        "watermark": manifest.watermark.to_dict(),
        "created_at": manifest.created_at.isoformat(),
        "extra": manifest.extra,
    }


def manifest_from_dict(data: dict[str, Any]) -> BatchManifest:
    """Inverse of `manifest_to_dict`."""
    return BatchManifest(
        batch_id=data["batch_id"],
        repo=data["repo"],
        source=data["source"],
        ingest_date=data["ingest_date"],
        row_count=int(data["row_count"]),
        quarantined_count=int(data["quarantined_count"]),
        checksum=data["checksum"],
        data_path=data.get("data_path"),
        quarantine_path=data.get("quarantine_path"),
        watermark=Watermark.from_dict(data["watermark"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        extra=dict(data.get("extra") or {}),
    )


def read_manifest(store: ObjectStore, batch_id: str) -> BatchManifest:
    """The manifest of one batch."""
    return manifest_from_dict(json.loads(store.read_bytes(manifest_key(batch_id))))


def list_manifests(store: ObjectStore) -> list[BatchManifest]:
    """Every complete batch (one with a manifest), in batch_id order."""
    manifests = [
        manifest_from_dict(json.loads(store.read_bytes(key)))
        for key in store.list(MANIFEST_PREFIX)
        if key.endswith(".json")
    ]
    return sorted(manifests, key=lambda m: m.batch_id)


def latest_watermarks(store: ObjectStore) -> dict[tuple[str, str], Watermark]:
    """Watermark of the newest batch per ``(source, repo)``."""
    latest: dict[tuple[str, str], Watermark] = {}
    for manifest in list_manifests(store):  # batch_id order: later batches win
        latest[(manifest.source, manifest.repo)] = manifest.watermark
    return latest


def quarantine_checksum(manifest: BatchManifest) -> str | None:
    """sha256 of the quarantine Parquet recorded in the manifest (None when there is none)."""
    value = manifest.extra.get("quarantine_checksum")
    return str(value) if value else None


# --- conversion ----------------------------------------------------------------------------
def commits_to_record_batch(records: list[CommitRecord]) -> pa.RecordBatch:
    """Arrow record batch (COMMIT_SCHEMA) of a chunk of commits."""
    return _check_not_null(_to_record_batch(records, _COMMIT_GETTER, COMMIT_SCHEMA))


def _to_record_batch(
    records: list[Any], getter: operator.attrgetter[Any], schema: pa.Schema
) -> pa.RecordBatch:
    columns = list(zip(*map(getter, records), strict=True)) or [() for _ in schema]
    arrays = []
    for schema_field, values in zip(schema, columns, strict=True):
        if pa.types.is_timestamp(schema_field.type):
            arrays.append(pa.array(_utc_micros(values), type=schema_field.type))
        else:
            arrays.append(pa.array(values, type=schema_field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _utc_micros(values: Iterable[datetime | None]) -> list[int | None]:
    """Instants → microseconds since the epoch, UTC (naive values are taken as UTC).

    Normalising here rather than trusting Arrow's tz-aware datetime conversion (which was seen
    to drop a non-UTC offset in a long test session, and imports pandas on first use):
    aware-minus-aware arithmetic is exact for any offset.
    """
    out: list[int | None] = []
    for value in values:
        if value is None:
            out.append(None)
        elif value.tzinfo is None:
            out.append((value.replace(tzinfo=UTC) - _EPOCH) // _ONE_US)
        else:
            out.append((value - _EPOCH) // _ONE_US)
    return out


def quarantined_to_record_batch(records: list[QuarantinedRecord]) -> pa.RecordBatch:
    """Arrow record batch (QUARANTINE_SCHEMA) of a chunk of quarantined records."""
    return _check_not_null(_to_record_batch(records, _QUARANTINE_GETTER, QUARANTINE_SCHEMA))


def _check_not_null(batch: pa.RecordBatch) -> pa.RecordBatch:
    # Arrow does not enforce `nullable=False`; the warehouse would, much later. Fail here.
    for index, schema_field in enumerate(batch.schema):
        if not schema_field.nullable and batch.column(index).null_count:
            raise ValueError(f"{schema_field.name} is None in a record; it is required")
    return batch


class _ParquetSpool:
    """Streams record batches into a local temp Parquet file; knows its row count and sha256."""

    def __init__(self, schema: pa.Schema, spool_dir: str | None) -> None:
        self.schema = schema
        fd, self.path = tempfile.mkstemp(prefix="batch-", suffix=".parquet", dir=spool_dir)
        os.close(fd)
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression=PARQUET_COMPRESSION)
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def finish(self) -> str:
        """Close the file; returns the sha256 of its bytes."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return _sha256_file(self.path)

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        Path(self.path).unlink(missing_ok=True)


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- writing -------------------------------------------------------------------------------
class BatchSink(Protocol):
    """Follows a batch while it is written, e.g. to load it into the warehouse meanwhile.

    `commits` gets each chunk of commits as it is written to the spool file; `published` the
    manifest and quarantine table once the batch exists in the store (manifest written);
    `abort` is called instead when the batch is discarded or empty. A sink must not let its own
    failures escape: the published batch stays in the store either way.
    """

    def commits(self, batch_id: str, chunk: pa.RecordBatch) -> None: ...

    def published(self, manifest: BatchManifest, quarantine: pa.Table) -> None: ...

    def abort(self) -> None: ...


@dataclass
class _Chunk:
    commits: list[CommitRecord]
    quarantined: list[QuarantinedRecord]


class BatchWriter:
    """Stream one repository's records into a new raw batch.

    ``add`` takes `CommitRecord` or `QuarantinedRecord` in any mix; ``close(watermark)`` writes
    the Parquet files and then the manifest, returning it (None, and nothing written, when no row
    and no quarantined record was added). Leaving the ``with`` block without ``close`` — or with
    an exception — discards everything.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        repo: str,
        source: str,
        ingest_date: str | date | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        batch_id: str | None = None,
        extra: dict[str, Any] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        sink: BatchSink | None = None,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        repo_partition(repo)  # validates the name early
        self.store = store
        self.repo = repo
        self.source = source
        self.created_at = datetime.now(UTC)
        self.ingest_date = _ingest_date(ingest_date, self.created_at)
        self.batch_id = batch_id or new_batch_id(self.created_at)
        self.batch_rows = batch_rows
        self._flush_rows = min(batch_rows, STREAM_FLUSH_ROWS)
        self.extra = dict(extra or {})
        self._spool_dir = str(spool_dir) if spool_dir is not None else None
        self._chunk = _Chunk([], [])
        self._commits = _ParquetSpool(COMMIT_SCHEMA, self._spool_dir)
        self._quarantine = _ParquetSpool(QUARANTINE_SCHEMA, self._spool_dir)
        self._sink = sink
        self._closed = False

    @property
    def row_count(self) -> int:
        """Commits added so far."""
        return self._commits.rows + len(self._chunk.commits)

    @property
    def quarantined_count(self) -> int:
        """Quarantined records added so far."""
        return self._quarantine.rows + len(self._chunk.quarantined)

    def add(self, item: CommitRecord | QuarantinedRecord) -> None:
        """Append one record (writes a chunk to the spool file every ``_flush_rows``)."""
        if self._closed:
            raise RuntimeError(f"batch {self.batch_id} is already closed")
        if isinstance(item, CommitRecord):
            if item.repo != self.repo:
                raise ValueError(
                    f"batch {self.batch_id} is for {self.repo!r}, got a commit of {item.repo!r}"
                )
            self._chunk.commits.append(item)
            if len(self._chunk.commits) >= self._flush_rows:
                self._flush_commits()
        elif isinstance(item, QuarantinedRecord):
            self._chunk.quarantined.append(item)
            if len(self._chunk.quarantined) >= self._flush_rows:
                self._flush_quarantine()
        else:
            raise TypeError(f"expected CommitRecord or QuarantinedRecord, got {type(item)!r}")

    def add_all(self, items: Iterable[CommitRecord | QuarantinedRecord]) -> None:
        """`add` each item."""
        for item in items:
            self.add(item)

    def _flush_commits(self) -> None:
        if self._chunk.commits:
            batch = commits_to_record_batch(self._chunk.commits)
            self._commits.write(batch)
            self._chunk.commits = []
            if self._sink is not None:
                self._sink.commits(self.batch_id, batch)

    def _flush_quarantine(self) -> None:
        if self._chunk.quarantined:
            self._quarantine.write(quarantined_to_record_batch(self._chunk.quarantined))
            self._chunk.quarantined = []

    def close(self, watermark: Watermark) -> BatchManifest | None:
        """Publish the batch (data first, manifest last); None when it is empty."""
        if self._closed:
            raise RuntimeError(f"batch {self.batch_id} is already closed")
        if watermark.repo != self.repo:
            raise ValueError(f"watermark is for {watermark.repo!r}, batch for {self.repo!r}")
        self._closed = True
        published = False
        try:
            self._flush_commits()
            self._flush_quarantine()
            if self._commits.rows == 0 and self._quarantine.rows == 0:
                return None
            manifest = self._publish(watermark)
            published = True
            if self._sink is not None:
                quarantine = (
                    pq.read_table(self._quarantine.path, schema=QUARANTINE_SCHEMA)
                    if self._quarantine.rows
                    else QUARANTINE_SCHEMA.empty_table()
                )
                self._sink.published(manifest, quarantine)
            return manifest
        finally:
            if self._sink is not None and not published:
                self._sink.abort()
            self._commits.discard()
            self._quarantine.discard()

    def _publish(self, watermark: Watermark) -> BatchManifest:
        data_path = quarantine_path = None
        checksum = EMPTY_SHA256
        extra = dict(self.extra)
        written: list[str] = []
        try:
            if self._commits.rows:
                checksum = self._commits.finish()
                data_path = commits_key(self.repo, self.ingest_date, self.batch_id)
                self.store.put_file(data_path, self._commits.path, overwrite=False)
                written.append(data_path)
            if self._quarantine.rows:
                extra["quarantine_checksum"] = self._quarantine.finish()
                quarantine_path = quarantine_key(self.repo, self.ingest_date, self.batch_id)
                self.store.put_file(quarantine_path, self._quarantine.path, overwrite=False)
                written.append(quarantine_path)
            manifest = BatchManifest(
                batch_id=self.batch_id,
                repo=self.repo,
                source=self.source,
                ingest_date=self.ingest_date,
                row_count=self._commits.rows,
                quarantined_count=self._quarantine.rows,
                checksum=checksum,
                data_path=data_path,
                quarantine_path=quarantine_path,
                watermark=watermark,
                created_at=self.created_at,
                extra=extra,
            )
            body = json.dumps(manifest_to_dict(manifest), indent=2, sort_keys=True).encode()
            self.store.write_bytes(manifest_key(self.batch_id), body, overwrite=False)
        except BaseException:
            # No manifest → the batch does not exist; remove our data files so nothing dangles.
            for key in written:
                self.store.delete(key)
            raise
        return manifest

    def abort(self) -> None:
        """Discard everything added; nothing is published."""
        if self._sink is not None and not self._closed:
            self._sink.abort()
        self._closed = True
        self._chunk = _Chunk([], [])
        self._commits.discard()
        self._quarantine.discard()

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed:
            self.abort()


def write_batch(
    store: ObjectStore,
    records: Iterable[CommitRecord],
    quarantined: Iterable[QuarantinedRecord],
    watermark: Watermark,
    source: str | None = None,
    ingest_date: str | date | None = None,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    batch_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> BatchManifest | None:
    """Write one batch for ``watermark.repo``; returns its manifest (None when both are empty).

    `source` defaults to ``watermark.source``; `ingest_date` to today (UTC).
    """
    with BatchWriter(
        store,
        repo=watermark.repo,
        source=source or watermark.source,
        ingest_date=ingest_date,
        batch_rows=batch_rows,
        batch_id=batch_id,
        extra=extra,
    ) as writer:
        writer.add_all(records)
        writer.add_all(quarantined)
        return writer.close(watermark)


def _ingest_date(value: str | date | None, now: datetime) -> str:
    if value is None:
        return now.date().isoformat()
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(value).isoformat()  # validates YYYY-MM-DD
