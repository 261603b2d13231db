"""Fixtures for store/warehouse integration tests: real commits and both warehouses."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse
from dataplatform.contracts import CommitRecord, QuarantinedRecord

DATASETS = Path(__file__).resolve().parents[3] / "data" / "commits"
DATASET_FILES = (
    "encode__httpx.jsonl.gz",
    "pallets__flask.jsonl.gz",
    "psf__requests.jsonl.gz",
    "tiangolo__fastapi.jsonl.gz",
)
SOURCE = "dataset"


def _time(value: str) -> tuple[datetime, int]:
    at = datetime.fromisoformat(value)  # raises on requests' malformed '+518:00'
    offset = at.utcoffset()
    assert offset is not None
    return at.astimezone(UTC), int(offset.total_seconds() // 60)


def parse_line(line: str, position: int) -> CommitRecord | QuarantinedRecord:
    """Tiny json → CommitRecord for tests (the real parser lives in the ingest stage)."""
    obj = json.loads(line)
    try:
        authored_at, author_offset = _time(obj["author_time"])
        committed_at, committer_offset = _time(obj["committer_time"])
    except ValueError as exc:
        return QuarantinedRecord(
            source=SOURCE,
            position=position,
            reason=f"bad timestamp: {exc}",
            raw=line,
            repo=obj["repo"],
            commit_sha=obj["sha"],
        )
    return CommitRecord(
        repo=obj["repo"],
        commit_sha=obj["sha"],
        parent_shas=None,
        parent_count=obj["parent_count"],
        author_name=obj["author_name"],
        author_email=obj["author_email"],
        committer_name=None,
        committer_email=None,
        authored_at=authored_at,
        author_utc_offset_minutes=author_offset,
        committed_at=committed_at,
        committer_utc_offset_minutes=committer_offset,
        message=obj["message"],
        files_changed=obj["files_changed"],
        lines_added=obj["insertions"],
        lines_deleted=obj["deletions"],
    )


def read_dataset(name: str) -> list[CommitRecord | QuarantinedRecord]:
    with gzip.open(DATASETS / name, "rt", encoding="utf-8", newline="\n") as fh:
        return [parse_line(line, n) for n, line in enumerate(fh.read().split("\n"), 1) if line]


@pytest.fixture(scope="session")
def httpx_records() -> list[CommitRecord | QuarantinedRecord]:
    """All 1,522 commits of encode/httpx."""
    return read_dataset("encode__httpx.jsonl.gz")


@pytest.fixture(scope="session")
def all_datasets() -> dict[str, list[CommitRecord | QuarantinedRecord]]:
    """The four datasets, keyed by repo (about 18k commits; requests has one quarantined)."""
    out = {}
    for name in DATASET_FILES:
        records = read_dataset(name)
        out[name.removesuffix(".jsonl.gz").replace("__", "/")] = records
    return out


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore.local(tmp_path / "objects")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Warehouse]]:
    """Opens warehouses on one fresh database (DuckDB file or PostgreSQL `pg_db`)."""
    opened: list[Warehouse] = []
    if request.param == "postgres":
        conninfo = request.getfixturevalue("pg_db")["conninfo"]

        def make(cls: type[Any] = PostgresWarehouse) -> Warehouse:
            opened.append(cls(conninfo))
            return opened[-1]
    else:
        path = tmp_path / "warehouse.duckdb"

        def make(cls: type[Any] = DuckDBWarehouse) -> Warehouse:
            opened.append(cls(path))
            return opened[-1]

    yield make
    for wh in opened:
        wh.close()


@pytest.fixture
def warehouse(warehouse_factory: Callable[..., Warehouse]) -> Warehouse:
    wh = warehouse_factory()
    wh.ensure_raw_schema()
    return wh
