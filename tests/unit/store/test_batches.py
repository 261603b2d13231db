from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.contracts import (
    COMMIT_SCHEMA,
    QUARANTINE_SCHEMA,
    BatchManifest,
    CommitRecord,
    QuarantinedRecord,
    Watermark,
)
from dataplatform.store import batches
from dataplatform.store.batches import (
    BatchWriter,
    latest_watermarks,
    list_manifests,
    manifest_from_dict,
    manifest_to_dict,
    new_batch_id,
    read_manifest,
    write_batch,
)

REPO = "octo/hello-world"


def commit(n: int, repo: str = REPO, **changes: Any) -> CommitRecord:
    fields: dict[str, Any] = {
        "repo": repo,
        "commit_sha": f"{n:040x}",
        "parent_shas": (f"{n + 1:040x}",) if n % 3 else None,
        "parent_count": 1,
        "author_name": f"Author {n}",
        "author_email": f"a{n}@example.org",
        "committer_name": None,
        "committer_email": None,
        "authored_at": datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=45)))
        + timedelta(minutes=n),
        "author_utc_offset_minutes": 345,
        "committed_at": datetime(2024, 1, 2, tzinfo=UTC) + timedelta(minutes=n),
        "committer_utc_offset_minutes": None,
        "message": f"Fix #{n}\r\n\n📝 body",
        "files_changed": n % 7,
        "lines_added": n,
        "lines_deleted": 0,
    }
    fields.update(changes)
    return CommitRecord(**fields)


def bad(n: int) -> QuarantinedRecord:
    return QuarantinedRecord(source="dataset", position=n, reason="bad json", raw="{oops")


def watermark(repo: str = REPO, head: str = "h") -> Watermark:
    return Watermark(repo=repo, source="dataset", head_sha=head, source_checksum="abc")


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore.local(tmp_path / "objects")


def test_round_trip_writes_parquet_quarantine_and_manifest(store: ObjectStore) -> None:
    records = [commit(n) for n in range(10)]
    manifest = write_batch(
        store, records, [bad(3), bad(7)], watermark(), ingest_date="2024-05-06", batch_rows=4
    )
    assert manifest is not None
    b = manifest.batch_id
    assert (
        manifest.data_path
        == f"raw/commits/repo=octo__hello-world/ingest_date=2024-05-06/{b}.parquet"
    )
    assert manifest.quarantine_path == (
        f"raw/quarantine/repo=octo__hello-world/ingest_date=2024-05-06/{b}.parquet"
    )
    assert (manifest.row_count, manifest.quarantined_count) == (10, 2)
    assert (manifest.repo, manifest.source, manifest.ingest_date) == (REPO, "dataset", "2024-05-06")
    assert store.list() == sorted(
        [manifest.data_path, manifest.quarantine_path, f"raw/manifests/{b}.json"]
    )

    data = store.read_bytes(manifest.data_path)
    assert manifest.checksum == hashlib.sha256(data).hexdigest()
    qdata = store.read_bytes(manifest.quarantine_path)
    assert manifest.extra["quarantine_checksum"] == hashlib.sha256(qdata).hexdigest()

    parquet = pq.ParquetFile(store.open_input(manifest.data_path))
    assert parquet.schema_arrow == COMMIT_SCHEMA
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    assert parquet.num_row_groups == 3  # streamed in chunks of 4
    table = parquet.read()
    assert table["commit_sha"].to_pylist() == [r.commit_sha for r in records]
    first = table.slice(0, 2).to_pylist()
    assert first[0]["parent_shas"] is None
    assert first[1]["parent_shas"] == [f"{2:040x}"]
    # an aware timestamp comes back as the same instant, in UTC
    assert first[0]["authored_at"] == records[0].authored_at
    assert first[0]["authored_at"].utcoffset() == timedelta(0)
    assert first[0]["message"] == "Fix #0\r\n\n📝 body"
    quarantine = pq.read_table(store.open_input(manifest.quarantine_path))
    assert quarantine.schema == QUARANTINE_SCHEMA
    assert quarantine["position"].to_pylist() == [3, 7]

    assert read_manifest(store, b) == manifest
    assert list_manifests(store) == [manifest]


def test_manifest_is_written_last(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    put_file, write_bytes = store.put_file, store.write_bytes

    def spy_put(key: str, *args: Any, **kwargs: Any) -> None:
        order.append(key.split("/")[1])
        put_file(key, *args, **kwargs)

    def spy_write(key: str, *args: Any, **kwargs: Any) -> None:
        order.append(key.split("/")[1])
        write_bytes(key, *args, **kwargs)

    monkeypatch.setattr(store, "put_file", spy_put)
    monkeypatch.setattr(store, "write_bytes", spy_write)
    write_batch(store, [commit(1)], [bad(2)], watermark())
    assert order == ["commits", "quarantine", "manifests"]


def test_failed_manifest_write_leaves_no_batch(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "write_bytes", boom)
    with pytest.raises(OSError, match="disk full"):
        write_batch(store, [commit(1)], [bad(2)], watermark())
    assert store.list() == []
    assert list_manifests(store) == []


def test_empty_batch_writes_nothing(store: ObjectStore) -> None:
    assert write_batch(store, [], [], watermark()) is None
    with BatchWriter(store, repo=REPO, source="git") as writer:
        assert writer.close(watermark()) is None
    assert store.list() == []


def test_quarantine_only_batch_has_no_data_file(store: ObjectStore) -> None:
    manifest = write_batch(store, [], [bad(1)], watermark())
    assert manifest is not None
    assert manifest.data_path is None
    assert manifest.row_count == 0
    assert manifest.checksum == hashlib.sha256(b"").hexdigest()
    assert manifest.quarantine_path is not None
    assert store.exists(manifest.quarantine_path)


def test_writer_streams_mixed_records_and_aborts_on_error(store: ObjectStore) -> None:
    def ingest_then_fail() -> None:
        with BatchWriter(store, repo=REPO, source="git", batch_rows=2) as writer:
            for n in range(5):
                writer.add(commit(n))
            writer.add(bad(9))
            assert (writer.row_count, writer.quarantined_count) == (5, 1)
            raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        ingest_then_fail()
    assert store.list() == []


def test_writer_refuses_other_repo_and_reuse(store: ObjectStore) -> None:
    writer = BatchWriter(store, repo=REPO, source="git")
    with pytest.raises(ValueError, match="other/repo"):
        writer.add(commit(1, repo="other/repo"))
    with pytest.raises(TypeError):
        writer.add("not a record")  # type: ignore[arg-type]
    writer.add(commit(1))
    with pytest.raises(ValueError, match="watermark"):
        writer.close(watermark(repo="other/repo"))
    assert writer.close(watermark()) is not None
    with pytest.raises(RuntimeError, match="closed"):
        writer.add(commit(2))


def test_batch_is_never_overwritten(store: ObjectStore) -> None:
    first = write_batch(store, [commit(1)], [], watermark(), batch_id="20240101T000000000000Z-x")
    assert first is not None
    with pytest.raises(FileExistsError):
        write_batch(store, [commit(2)], [], watermark(), batch_id="20240101T000000000000Z-x")
    assert store.read_bytes(first.data_path or "") == store.read_bytes(first.data_path or "")
    assert list_manifests(store) == [first]
    table = pq.read_table(store.open_input(first.data_path or ""))
    assert table["commit_sha"].to_pylist() == [commit(1).commit_sha]


def test_batch_ids_sort_by_time() -> None:
    early = new_batch_id(datetime(2024, 1, 1, tzinfo=UTC))
    late = new_batch_id(datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC))
    assert early < late
    assert new_batch_id() != new_batch_id()


def test_latest_watermarks_keeps_newest_per_source_and_repo(store: ObjectStore) -> None:
    write_batch(store, [commit(1)], [], watermark(head="old"), batch_id="20240101T000000000000Z-a")
    write_batch(store, [commit(2)], [], watermark(head="new"), batch_id="20240102T000000000000Z-a")
    other = Watermark(repo="x/y", source="git", head_sha="g")
    write_batch(store, [commit(3, repo="x/y")], [], other, batch_id="20240101T120000000000Z-b")
    marks = latest_watermarks(store)
    assert marks == {("dataset", REPO): watermark(head="new"), ("git", "x/y"): other}


def test_manifest_json_round_trip() -> None:
    from dataplatform.contracts import BatchManifest

    manifest = BatchManifest(
        batch_id="b",
        repo=REPO,
        source="git",
        ingest_date="2024-01-01",
        row_count=1,
        quarantined_count=0,
        checksum="c",
        data_path="raw/x.parquet",
        quarantine_path=None,
        watermark=Watermark(REPO, "git", "h", None, datetime(2024, 1, 1, tzinfo=UTC)),
        created_at=datetime(2024, 1, 1, 1, tzinfo=UTC),
        extra={"k": [1]},
    )
    assert manifest_from_dict(json.loads(json.dumps(manifest_to_dict(manifest)))) == manifest


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2024, 2, 3), "2024-02-03"),
        ("2024-02-03", "2024-02-03"),
        (datetime(2024, 2, 3, 23, 30, tzinfo=timezone(timedelta(hours=-2))), "2024-02-04"),
    ],
)
def test_ingest_date_partition(store: ObjectStore, value: Any, expected: str) -> None:
    manifest = write_batch(store, [commit(1)], [], watermark(), ingest_date=value)
    assert manifest is not None
    assert manifest.ingest_date == expected
    assert f"/ingest_date={expected}/" in (manifest.data_path or "")


def test_bad_ingest_date_and_repo_are_refused(store: ObjectStore) -> None:
    with pytest.raises(ValueError):
        BatchWriter(store, repo=REPO, source="git", ingest_date="03/02/2024")
    with pytest.raises(ValueError, match="owner/name"):
        BatchWriter(store, repo="noslash", source="git")


def test_record_batches_are_schema_exact() -> None:
    from dataplatform.store.batches import commits_to_record_batch, quarantined_to_record_batch

    assert commits_to_record_batch([commit(1)]).schema == COMMIT_SCHEMA
    assert quarantined_to_record_batch([bad(1)]).schema == QUARANTINE_SCHEMA
    with pytest.raises(ValueError, match="message is None"):
        commits_to_record_batch([commit(1, message=None)])  # NOT NULL column


def test_large_batch_is_written_in_row_groups_during_the_stream(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches, "STREAM_FLUSH_ROWS", 4)
    with BatchWriter(store, repo=REPO, source="git") as writer:  # batch_rows: the default 50k
        for n in range(10):
            writer.add(commit(n))
            if n == 8:  # two chunks of 4 already in the spool file, nothing published yet
                assert writer._commits.rows == 8
                assert store.list() == []
        manifest = writer.close(watermark())
    assert manifest is not None
    assert (manifest.row_count, manifest.quarantined_count) == (10, 0)
    assert manifest.data_path is not None
    data = store.read_bytes(manifest.data_path)
    assert manifest.checksum == hashlib.sha256(data).hexdigest()
    parquet = pq.ParquetFile(store.local_path(manifest.data_path))
    assert parquet.metadata.num_row_groups == 3
    table = parquet.read()
    assert table.column("commit_sha").to_pylist() == [f"{n:040x}" for n in range(10)]
    assert list_manifests(store) == [manifest]


def test_crash_after_chunks_were_written_leaves_no_batch(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches, "STREAM_FLUSH_ROWS", 2)
    spool = tmp_path / "spool"
    spool.mkdir()

    def ingest_then_crash() -> None:
        with BatchWriter(store, repo=REPO, source="git", spool_dir=spool) as writer:
            for n in range(7):
                writer.add(commit(n))
            assert writer._commits.rows == 6
            raise RuntimeError("killed mid-stream")

    with pytest.raises(RuntimeError, match="killed"):
        ingest_then_crash()
    assert store.list() == []
    assert list_manifests(store) == []
    assert list(spool.iterdir()) == []


def test_instants_are_stored_as_utc_whatever_their_offset() -> None:
    nepal = timezone(timedelta(hours=5, minutes=45))
    west = timezone(-timedelta(hours=9, minutes=30))
    at = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=nepal)
    records = [
        commit(1, authored_at=at, committed_at=at.astimezone(west)),
        commit(2, authored_at=datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC)),
        commit(3, authored_at=datetime(2024, 3, 1, 6, 15, 0, 123456)),  # naive: taken as UTC
    ]
    batch = batches.commits_to_record_batch(records)
    authored = batch.column("authored_at").to_pylist()
    committed = batch.column("committed_at").to_pylist()
    expected = datetime(2024, 3, 1, 6, 15, 0, 123456, tzinfo=UTC)
    assert authored[0] == committed[0] == expected
    assert authored[0].utcoffset() == timedelta(0)
    assert authored[1] == datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC)
    assert authored[2] == expected


class RecordingSink:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, int]] = []
        self.done: list[tuple[str, int]] = []
        self.aborted = 0
        self.root: Path | None = None

    def commits(self, batch_id: str, chunk: pa.RecordBatch) -> None:
        self.chunks.append((batch_id, chunk.num_rows))

    def published(self, manifest: BatchManifest, quarantine: pa.Table) -> None:
        if self.root is not None:  # the batch exists before the sink hears of it
            assert list_manifests(ObjectStore.local(self.root)) == [manifest]
        self.done.append((manifest.batch_id, quarantine.num_rows))

    def abort(self) -> None:
        self.aborted += 1


def test_sink_follows_each_chunk_then_the_published_batch(
    store: ObjectStore, tmp_path: Path
) -> None:
    sink = RecordingSink()
    sink.root = tmp_path / "objects"
    with BatchWriter(store, repo=REPO, source="git", batch_rows=3, sink=sink) as writer:
        for n in range(7):
            writer.add(commit(n))
        writer.add(bad(1))
        manifest = writer.close(watermark())
    assert manifest is not None
    batch_id = manifest.batch_id
    assert sink.chunks == [(batch_id, 3), (batch_id, 3), (batch_id, 1)]
    assert sink.done == [(batch_id, 1)]
    assert sink.aborted == 0


def test_sink_is_aborted_when_the_batch_is_discarded_or_empty(store: ObjectStore) -> None:
    failed, empty = RecordingSink(), RecordingSink()

    def ingest_then_fail() -> None:
        with BatchWriter(store, repo=REPO, source="git", batch_rows=2, sink=failed) as writer:
            for n in range(3):
                writer.add(commit(n))
            raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        ingest_then_fail()
    assert (len(failed.chunks), failed.done, failed.aborted) == (1, [], 1)
    with BatchWriter(store, repo=REPO, source="git", sink=empty) as writer:
        assert writer.close(watermark()) is None
    assert (empty.chunks, empty.done, empty.aborted) == ([], [], 1)
    assert store.list() == []
