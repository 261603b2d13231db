"""Read commit-dataset files (JSON Lines, gzip or plain) as records, streamed line by line."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from dataplatform.contracts import CommitRecord, Watermark
from dataplatform.ingest.errors import SourceError
from dataplatform.ingest.parser import ParsedRecord, parse_dataset_line

GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file bytes (compressed bytes for gzip files)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (the extension is not trusted)."""
    with path.open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC


@contextmanager
def open_dataset(path: Path) -> Iterator[BinaryIO]:
    """The file's decompressed bytes as a binary stream (gzip detected by magic bytes)."""
    if is_gzip(path):
        with gzip.open(path, "rb") as fh:
            yield fh  # type: ignore[misc]
    else:
        with path.open("rb") as fh:
            yield fh


def iter_dataset_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its ``\\n``), split on ``b"\\n"`` only.

    Binary-mode reading splits on LF alone, so U+2028, U+0085, form feeds or lone CRs inside a
    JSON string never cut a record. A corrupt or truncated gzip raises `SourceError`.
    """
    try:
        with open_dataset(path) as fh:
            for number, line in enumerate(fh, start=1):
                yield number, line[:-1] if line.endswith(b"\n") else line
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"cannot read dataset {path}: {exc}") from exc


def iter_dataset(path: Path, *, source: str | None = None) -> Iterator[ParsedRecord]:
    """Every record of a dataset file in file order; blank lines are skipped (not records)."""
    name = source or str(path)
    for number, line in iter_dataset_lines(path):
        if not line.strip():
            continue
        yield parse_dataset_line(line, name, number)


class DatasetReader:
    """Reads one dataset file once and derives per-repo watermarks.

    A dataset's watermark is the sha256 of its bytes plus its first (newest) sha per repo. When
    a previous watermark carries the same checksum the file was fully ingested already, and
    `records` yields nothing.
    """

    def __init__(self, path: Path, *, source: str | None = None) -> None:
        self.path = path
        self.source = source or str(path)
        self._checksum: str | None = None
        self._watermarks: dict[str, Watermark] | None = None

    @property
    def checksum(self) -> str:
        """sha256 of the file bytes (computed once)."""
        if self._checksum is None:
            try:
                self._checksum = file_sha256(self.path)
            except OSError as exc:
                raise SourceError(f"cannot read dataset {self.path}: {exc}") from exc
        return self._checksum

    def records(self, previous: Mapping[str, Watermark] | None = None) -> Iterator[ParsedRecord]:
        """Records of the file, or nothing if `previous` shows this exact file was ingested."""
        checksum = self.checksum
        seen = {
            repo: mark
            for repo, mark in (previous or {}).items()
            if mark.source_checksum == checksum
        }
        if seen:
            self._watermarks = seen
            return
        self._watermarks = None
        heads: dict[str, str] = {}
        latest: dict[str, datetime] = {}
        for record in iter_dataset(self.path, source=self.source):
            if isinstance(record, CommitRecord):
                heads.setdefault(record.repo, record.commit_sha)
                if record.repo not in latest or record.committed_at > latest[record.repo]:
                    latest[record.repo] = record.committed_at
            yield record
        self._watermarks = {
            repo: Watermark(
                repo=repo,
                source=self.source,
                head_sha=head,
                source_checksum=checksum,
                committed_at_max=latest[repo],
            )
            for repo, head in heads.items()
        }

    def watermarks(self) -> dict[str, Watermark]:
        """Per-repo watermarks once `records` is exhausted (the previous ones if skipped)."""
        if self._watermarks is None:
            raise RuntimeError("iterate records() to the end before asking for watermarks")
        return dict(self._watermarks)
