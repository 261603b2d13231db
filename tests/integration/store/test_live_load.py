"""Loading a batch into DuckDB while it is written (`LiveLoader` + `BatchWriter(sink=...)`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.warehouse import DuckDBWarehouse
from dataplatform.contracts import BatchManifest, CommitRecord, QuarantinedRecord, Watermark
from dataplatform.store.batches import BatchWriter, list_manifests
from dataplatform.store.loader import LiveLoader, LoadSummary, load_pending, read_batch

KEY = b"test-pii-key"
REPO = "encode/httpx"
Records = list[CommitRecord | QuarantinedRecord]


def counts(wh: DuckDBWarehouse) -> dict[str, int]:
    return wh.table_row_counts(("raw",))


def ingest(store: ObjectStore, live: LiveLoader | None, records: Records) -> BatchManifest:
    with BatchWriter(
        store,
        repo=REPO,
        source="dataset",
        batch_rows=500,
        sink=live.sink() if live is not None else None,
    ) as writer:
        writer.add_all(records)
        manifest = writer.close(Watermark(repo=REPO, source="dataset", head_sha="h"))
    assert manifest is not None
    return manifest


@pytest.fixture
def duck(tmp_path: Path) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    wh.ensure_raw_schema()
    return wh


def test_live_load_equals_a_load_after_the_fact(
    store: ObjectStore, duck: DuckDBWarehouse, httpx_records: Records, tmp_path: Path
) -> None:
    records = [*httpx_records, httpx_records[3]]  # one key twice, in different chunks
    live = LiveLoader(store, duck, KEY)
    assert live.load_pending_first() == LoadSummary(0, 0, 0, 0, 0)
    manifest = ingest(store, live, records)
    assert live.failures == []
    assert [(m.batch_id, r.rows_inserted, r.rows_skipped) for m, r in live.loaded] == [
        (manifest.batch_id, 1522, 1)
    ]
    after = load_pending(store, duck, KEY)
    assert (after.batches_loaded, after.batches_skipped) == (0, 1)
    assert live.summary(after=after) == LoadSummary(1, 0, 1522, 1, 0)
    assert duck.loaded_batch_ids() == {manifest.batch_id}
    live_rows = duck.query_df("SELECT * EXCLUDE (loaded_at) FROM raw.commits ORDER BY commit_sha")

    # The same batch loaded the usual way into another warehouse gives the same rows.
    other = DuckDBWarehouse(tmp_path / "other.duckdb")
    assert load_pending(store, other, KEY).rows_inserted == 1522
    usual = other.query_df("SELECT * EXCLUDE (loaded_at) FROM raw.commits ORDER BY commit_sha")
    other.close()
    assert live_rows.equals(usual)

    # Loading it again changes nothing.
    commits, quarantine = read_batch(store, manifest)
    assert duck.load_batch(manifest, commits, quarantine, KEY).already_loaded
    assert counts(duck)["raw.commits"] == 1522


def test_crash_mid_stream_leaves_nothing_anywhere(
    store: ObjectStore, duck: DuckDBWarehouse, httpx_records: Records
) -> None:
    live = LiveLoader(store, duck, KEY)

    def ingest_then_crash() -> None:
        with BatchWriter(store, repo=REPO, source="dataset", batch_rows=100, sink=live.sink()) as w:
            w.add_all(httpx_records[:750])  # seven chunks inserted in the open transaction
            raise RuntimeError("killed mid-stream")

    with pytest.raises(RuntimeError, match="killed"):
        ingest_then_crash()
    assert counts(duck) == dict.fromkeys(
        ("raw.commit_labels", "raw.commit_quarantine", "raw.commits", "raw.ingest_batches"), 0
    )
    assert store.list() == []
    assert live.sink() is not None  # the next batch can load live again


def test_failed_commit_leaves_the_batch_to_the_next_load(
    store: ObjectStore, duck: DuckDBWarehouse, httpx_records: Records
) -> None:
    bad = QuarantinedRecord(source="dataset", position=7, reason="bad", raw="{", repo=REPO)
    clash = [bad, dataclasses.replace(bad, reason="bad again")]  # same (batch_id, position)
    live = LiveLoader(store, duck, KEY)
    manifest = ingest(store, live, [*httpx_records[:600], *clash])
    assert [batch_id for batch_id, _ in live.failures] == [manifest.batch_id]
    assert live.loaded == []
    assert list_manifests(store) == [manifest]  # published: the store has the whole batch
    assert counts(duck)["raw.commits"] == 0  # ... and the warehouse none of it
    with pytest.raises(Exception, match=r"(?i)duplicate|constraint|unique"):
        load_pending(store, duck, KEY)  # the usual load reports the real problem


def test_older_pending_batches_load_first_and_one_batch_is_live_at_a_time(
    store: ObjectStore, duck: DuckDBWarehouse, httpx_records: Records
) -> None:
    older = ingest(store, None, httpx_records[:100])  # ingested earlier, never loaded
    live = LiveLoader(store, duck, KEY)
    assert live.load_pending_first().batches_loaded == 1
    first = live.sink()
    assert first is not None
    assert live.sink() is None  # one open transaction per connection
    first.abort()
    newer = ingest(store, live, httpx_records)
    rows = duck.query_df("SELECT batch_id, count(*) AS n FROM raw.commits GROUP BY 1 ORDER BY 1")
    assert rows.to_dict("records") == [
        {"batch_id": older.batch_id, "n": 100},
        {"batch_id": newer.batch_id, "n": 1422},
    ]
    assert live.summary() == LoadSummary(2, 0, 1522, 100, 0)
