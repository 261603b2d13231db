"""Raw batches → warehouse, on DuckDB and PostgreSQL (every test runs on both)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.warehouse import (
    DuckDBWarehouse,
    PostgresWarehouse,
    Warehouse,
    hmac_email,
)
from dataplatform.contracts import BatchManifest, CommitRecord, QuarantinedRecord, Watermark
from dataplatform.store.batches import write_batch
from dataplatform.store.loader import ChecksumMismatchError, load_pending, read_batch

KEY = b"test-pii-key"
Records = list[CommitRecord | QuarantinedRecord]


def commits_of(records: Records) -> list[CommitRecord]:
    return [r for r in records if isinstance(r, CommitRecord)]


def watermark_of(records: Records, repo: str) -> Watermark:
    commits = commits_of(records)
    return Watermark(
        repo=repo,
        source="dataset",
        head_sha=commits[0].commit_sha if commits else None,
        committed_at_max=max((c.committed_at for c in commits), default=None),
    )


def write(store: ObjectStore, records: Records, repo: str = "encode/httpx") -> BatchManifest:
    manifest = write_batch(
        store,
        commits_of(records),
        [r for r in records if isinstance(r, QuarantinedRecord)],
        watermark_of(records, repo),
    )
    assert manifest is not None
    return manifest


def counts(wh: Warehouse) -> dict[str, int]:
    return wh.table_row_counts(("raw",))


def test_load_httpx_then_reload_changes_nothing(
    store: ObjectStore, warehouse: Warehouse, httpx_records: Records
) -> None:
    manifest = write(store, httpx_records)
    first = load_pending(store, warehouse, KEY)
    assert (first.batches_loaded, first.batches_skipped) == (1, 0)
    assert (first.rows_inserted, first.rows_already_present, first.quarantined) == (1522, 0, 0)
    after_first = counts(warehouse)
    assert after_first == {
        "raw.commit_labels": 0,
        "raw.commit_quarantine": 0,
        "raw.commits": 1522,
        "raw.ingest_batches": 1,
    }

    second = load_pending(store, warehouse, KEY)
    assert (second.batches_loaded, second.batches_skipped, second.rows_inserted) == (0, 1, 0)
    commits, quarantine = read_batch(store, manifest)
    again = warehouse.load_batch(manifest, commits, quarantine, KEY)
    assert again.already_loaded
    assert counts(warehouse) == after_first

    recorded = warehouse.query_df(
        "SELECT batch_id, repo, source, row_count, rows_inserted, checksum, watermark_json"
        " FROM raw.ingest_batches"
    ).to_dict("records")
    assert len(recorded) == 1
    assert recorded[0]["batch_id"] == manifest.batch_id
    assert recorded[0]["rows_inserted"] == 1522
    assert recorded[0]["checksum"] == manifest.checksum
    assert Watermark.from_dict(json.loads(recorded[0]["watermark_json"])) == (manifest.watermark)


def test_overlapping_batches_do_not_duplicate(
    store: ObjectStore, warehouse: Warehouse, httpx_records: Records
) -> None:
    older = write(store, httpx_records[:1000])
    newer = write(store, httpx_records[500:])
    summary = load_pending(store, warehouse, KEY)
    assert summary.batches_loaded == 2
    assert (summary.rows_inserted, summary.rows_already_present) == (1522, 500)
    assert counts(warehouse)["raw.commits"] == 1522
    per_batch = warehouse.query_df(
        "SELECT batch_id, count(*) AS n FROM raw.commits GROUP BY batch_id ORDER BY batch_id"
    )
    # batch_id order: the older batch keeps the 500 shared commits
    assert per_batch["batch_id"].tolist() == [older.batch_id, newer.batch_id]
    assert per_batch["n"].tolist() == [1000, 522]
    dupes = warehouse.query_df(
        "SELECT count(*) AS n FROM (SELECT repo, commit_sha FROM raw.commits"
        " GROUP BY repo, commit_sha HAVING count(*) > 1) d"
    )
    assert int(dupes["n"][0]) == 0


def test_a_commit_twice_in_one_batch_is_loaded_once(
    store: ObjectStore, warehouse: Warehouse, httpx_records: Records
) -> None:
    commits = commits_of(httpx_records)[:50]
    manifest = write(store, [*commits, commits[7], commits[7]])  # repeated inside one chunk
    summary = load_pending(store, warehouse, KEY)
    assert (summary.rows_inserted, summary.rows_already_present) == (50, 2)
    assert counts(warehouse)["raw.commits"] == 50
    assert warehouse.loaded_batch_ids() == {manifest.batch_id}


def _crashing(base: type[Any]) -> type[Any]:
    class Crashing(base):  # type: ignore[misc, valid-type]
        def _after_commits_insert(self, manifest: BatchManifest) -> None:
            raise RuntimeError("killed mid-load")

    return Crashing


def test_crash_mid_load_leaves_nothing_and_batch_reloads(
    store: ObjectStore,
    warehouse_factory: Callable[..., Warehouse],
    httpx_records: Records,
) -> None:
    write(store, httpx_records)
    healthy = warehouse_factory()
    base = DuckDBWarehouse if isinstance(healthy, DuckDBWarehouse) else PostgresWarehouse
    healthy.ensure_raw_schema()
    if isinstance(healthy, DuckDBWarehouse):
        healthy.close()  # one DuckDB file, one writer process at a time
    crashing = warehouse_factory(_crashing(base))
    with pytest.raises(RuntimeError, match="killed mid-load"):
        load_pending(store, crashing, KEY)
    assert counts(crashing) == {
        "raw.commit_labels": 0,
        "raw.commit_quarantine": 0,
        "raw.commits": 0,
        "raw.ingest_batches": 0,
    }
    crashing.close()
    retry = warehouse_factory()
    summary = load_pending(store, retry, KEY)
    assert (summary.batches_loaded, summary.rows_inserted) == (1, 1522)


def test_constraint_violation_in_quarantine_rolls_back_the_commits(
    store: ObjectStore, warehouse: Warehouse, httpx_records: Records
) -> None:
    clash = [
        QuarantinedRecord(source="dataset", position=7, reason=f"bad {n}", raw="{")
        for n in range(2)
    ]  # same (batch_id, position) twice: violates the primary key
    manifest = write(store, [*httpx_records[:10], *clash])
    with pytest.raises(Exception, match=r"(?i)duplicate|constraint|unique"):
        load_pending(store, warehouse, KEY)
    assert counts(warehouse)["raw.commits"] == 0
    assert manifest.batch_id not in warehouse.loaded_batch_ids()


def test_checksum_mismatch_is_refused(
    store: ObjectStore, warehouse: Warehouse, httpx_records: Records
) -> None:
    good = write(store, httpx_records[:100])
    bad = write(store, httpx_records[100:200])
    assert bad.data_path is not None
    path = store.local_path(bad.data_path)
    assert path is not None
    # Same rows, different bytes: a silently replaced file.
    pq.write_table(pq.read_table(path), path, compression="snappy")
    with pytest.raises(ChecksumMismatchError, match=bad.batch_id) as info:
        load_pending(store, warehouse, KEY)
    assert info.value.batch_id == bad.batch_id
    assert warehouse.loaded_batch_ids() == {good.batch_id}
    assert counts(warehouse)["raw.commits"] == 100


def test_email_hashes_are_keyed_hmacs_never_plaintext(
    store: ObjectStore, warehouse: Warehouse, httpx_records: Records
) -> None:
    write(store, httpx_records)
    load_pending(store, warehouse, KEY)
    rows = warehouse.query_df(
        "SELECT author_email, author_email_hash, committer_email, committer_email_hash"
        " FROM raw.commits"
    )
    assert len(rows) == 1522
    for email, hashed in zip(rows["author_email"], rows["author_email_hash"], strict=True):
        assert hashed == hmac_email(email, KEY)
        assert email not in hashed
        assert len(hashed) == 64
    assert rows["committer_email_hash"].isna().all()  # datasets carry no committer
    leaked = warehouse.query_df(
        "SELECT count(*) AS n FROM raw.commits WHERE author_email_hash LIKE ?", ["%@%"]
    )
    assert int(leaked["n"][0]) == 0


def test_values_survive_the_round_trip(store: ObjectStore, warehouse: Warehouse) -> None:
    nepal = timezone(timedelta(hours=5, minutes=45))
    records: Records = [
        CommitRecord(
            repo="o/r",
            commit_sha="a" * 40,
            parent_shas=("b" * 40, "c" * 40),
            parent_count=2,
            author_name='Zoë "Z", O\'Brien',
            author_email="",
            committer_name="GitHub",
            committer_email="noreply@github.com",
            authored_at=datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=nepal),
            author_utc_offset_minutes=345,
            committed_at=datetime(2024, 3, 1, tzinfo=UTC),
            committer_utc_offset_minutes=None,
            message='Merge "x", y\r\n\n📝 tab\there\\n not newline',
            files_changed=0,
            lines_added=0,
            lines_deleted=0,
        ),
        CommitRecord(
            repo="o/r",
            commit_sha="d" * 40,
            parent_shas=(),
            parent_count=0,
            author_name="root",
            author_email="C:\\Users\\x\\The Bat!",
            committer_name=None,
            committer_email=None,
            authored_at=datetime(2005, 1, 1, tzinfo=UTC),
            author_utc_offset_minutes=-720,
            committed_at=datetime(2004, 12, 31, tzinfo=UTC),
            committer_utc_offset_minutes=840,
            message="",
            files_changed=643,
            lines_added=37192,
            lines_deleted=1,
        ),
        QuarantinedRecord(
            source="git", position=3, reason="bad tz", raw='{"x": "+518:00"}', repo="o/r"
        ),
    ]
    write(store, records, repo="o/r")
    summary = load_pending(store, warehouse, KEY)
    assert (summary.rows_inserted, summary.quarantined) == (2, 1)
    got = warehouse.query_df("SELECT * FROM raw.commits ORDER BY commit_sha").to_dict("records")
    for row, rec in zip(got, commits_of(records), strict=True):
        for name in ("author_name", "author_email", "message", "parent_count", "lines_added"):
            assert row[name] == getattr(rec, name)
        assert list(row["parent_shas"]) == list(rec.parent_shas or ())
        assert row["authored_at"].to_pydatetime() == rec.authored_at
        assert row["committed_at"].to_pydatetime() == rec.committed_at
    assert got[0]["committer_name"] == "GitHub"
    assert pd.isna(got[0]["committer_utc_offset_minutes"])
    assert got[1]["committer_utc_offset_minutes"] == 840
    assert got[1]["committer_email_hash"] is None
    quarantined = warehouse.query_df("SELECT * FROM raw.commit_quarantine").to_dict("records")
    assert len(quarantined) == 1
    assert quarantined[0]["raw"] == '{"x": "+518:00"}'
    assert quarantined[0]["commit_sha"] is None


def test_all_four_datasets(
    store: ObjectStore,
    warehouse: Warehouse,
    all_datasets: dict[str, Records],
    tmp_path: Path,
) -> None:
    for repo, records in all_datasets.items():
        write(store, records, repo=repo)
    seen: list[tuple[int, int]] = []
    summary = load_pending(
        store, warehouse, KEY, progress=lambda done, total, _m, _r: seen.append((done, total))
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert (summary.batches_loaded, summary.rows_inserted, summary.quarantined) == (4, 18018, 1)
    per_repo = warehouse.query_df(
        "SELECT repo, count(*) AS n FROM raw.commits GROUP BY repo ORDER BY repo"
    )
    assert dict(zip(per_repo["repo"], per_repo["n"], strict=True)) == {
        "encode/httpx": 1522,
        "pallets/flask": 5531,
        "psf/requests": 6488,
        "tiangolo/fastapi": 4477,
    }
    bad = warehouse.query_df("SELECT repo, commit_sha, reason FROM raw.commit_quarantine")
    assert bad["commit_sha"].tolist() == ["5e6ecdad9f69b1ff789a17733b8edc6fd7091bd8"]
