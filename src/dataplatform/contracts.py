"""Types passed between stages. Stage packages depend on these, never on each other.

Names are the same in Python and SQL: `commit_sha`, `authored_at`, `lines_added`, ...
Timestamps ending in `_at` are timezone-aware UTC; the committer's own offset is kept apart in
`*_utc_offset_minutes` (None when the recorded offset is malformed, e.g. psf/requests' `+051800`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """One validated commit, as every source produces it."""

    repo: str
    commit_sha: str
    parent_shas: tuple[str, ...] | None  # None when the source does not record them
    parent_count: int
    author_name: str
    author_email: str
    committer_name: str | None  # None when the source does not record them (commit datasets)
    committer_email: str | None
    authored_at: datetime
    author_utc_offset_minutes: int | None
    committed_at: datetime
    committer_utc_offset_minutes: int | None
    message: str
    files_changed: int
    lines_added: int
    lines_deleted: int

    @property
    def is_merge_commit(self) -> bool:
        return self.parent_count > 1


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record that failed validation: kept whole with the reason, never dropped."""

    source: str
    position: int  # line number (datasets) or ordinal in the git log stream
    reason: str
    raw: str  # the offending payload, as text (invalid bytes replaced)
    repo: str | None = None
    commit_sha: str | None = None


@dataclass(frozen=True, slots=True)
class Watermark:
    """How far a repository has been ingested from one source."""

    repo: str
    source: str
    head_sha: str | None  # git: the tip ingested; datasets: the first (newest) sha of the file
    source_checksum: str | None = None  # datasets: sha256 of the file bytes
    committed_at_max: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "source": self.source,
            "head_sha": self.head_sha,
            "source_checksum": self.source_checksum,
            "committed_at_max": self.committed_at_max.isoformat()
            if self.committed_at_max
            else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Watermark:
        at = data.get("committed_at_max")
        return cls(
            repo=data["repo"],
            source=data["source"],
            head_sha=data.get("head_sha"),
            source_checksum=data.get("source_checksum"),
            committed_at_max=datetime.fromisoformat(at) if at else None,
        )


@dataclass(frozen=True, slots=True)
class BatchManifest:
    """Written next to each raw batch; the loader trusts only batches with a manifest."""

    batch_id: str
    repo: str
    source: str
    ingest_date: str  # YYYY-MM-DD (UTC), the partition value
    row_count: int
    quarantined_count: int
    checksum: str  # sha256 of the Parquet file bytes
    data_path: str | None  # object-store key of the commits Parquet (None when 0 rows)
    quarantine_path: str | None
    watermark: Watermark
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


# Arrow schema of a raw commits batch (Parquet) and of `raw.commits` before load-time columns.
COMMIT_SCHEMA = pa.schema(
    [
        pa.field("repo", pa.string(), nullable=False),
        pa.field("commit_sha", pa.string(), nullable=False),
        pa.field("parent_shas", pa.list_(pa.string())),
        pa.field("parent_count", pa.int32(), nullable=False),
        pa.field("author_name", pa.string(), nullable=False),
        pa.field("author_email", pa.string(), nullable=False),
        pa.field("committer_name", pa.string()),
        pa.field("committer_email", pa.string()),
        pa.field("authored_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("author_utc_offset_minutes", pa.int32()),
        pa.field("committed_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("committer_utc_offset_minutes", pa.int32()),
        pa.field("message", pa.string(), nullable=False),
        pa.field("files_changed", pa.int32(), nullable=False),
        pa.field("lines_added", pa.int32(), nullable=False),
        pa.field("lines_deleted", pa.int32(), nullable=False),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("position", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("repo", pa.string()),
        pa.field("commit_sha", pa.string()),
    ]
)
