"""Sources of commits: a local git repository, a clone URL, or a commit-dataset file.

`resolve_source(spec, settings)` picks the kind; every source yields `CommitRecord` /
`QuarantinedRecord` incrementally from the previous per-repo `Watermark`s and reports the new
ones once iteration is done.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from dataplatform.config import Settings
from dataplatform.contracts import CommitRecord, Watermark
from dataplatform.ingest.datasets import DatasetReader
from dataplatform.ingest.errors import SourceError
from dataplatform.ingest.git import (
    clone_or_fetch,
    head_sha,
    incremental_range,
    is_clone_url,
    mask_credentials,
    repo_name_for_path,
    repo_name_from_url,
    repository_root,
    validate_repo_name,
)
from dataplatform.ingest.gitlog import stream_git_log
from dataplatform.ingest.parser import ParsedRecord

__all__ = ["DatasetSource", "GitSource", "Source", "SourceError", "SourceKind", "resolve_source"]

SourceKind = Literal["git", "dataset"]


@runtime_checkable
class Source(Protocol):
    """Anything that yields commit records incrementally."""

    @property
    def name(self) -> str:
        """Human-readable origin (path or URL with credentials masked); stored as `source`."""
        ...

    @property
    def kind(self) -> SourceKind: ...

    def iter_records(
        self, previous: Mapping[str, Watermark] | None = None
    ) -> Iterator[ParsedRecord]:
        """Records newer than `previous` (repo → last watermark); all of them if none."""
        ...

    def watermarks(self) -> dict[str, Watermark]:
        """Per-repo watermarks to store after `iter_records` was exhausted."""
        ...


@dataclass
class GitSource:
    """A local repository, or a clone URL mirrored into ``settings.git_cache``."""

    name: str
    repo: str
    path: Path | None = None  # local repository (None for URLs until cloned)
    url: str | None = None
    cache_root: Path | None = None
    workers: int = 1  # git processes reading the history (see `stream_git_log`)
    kind: SourceKind = "git"
    _local: Path | None = field(default=None, init=False, repr=False)
    _watermarks: dict[str, Watermark] | None = field(default=None, init=False, repr=False)

    def local_path(self) -> Path:
        """The repository to read; clones or fetches a URL once per source object."""
        if self._local is None:
            if self.url is not None:
                if self.cache_root is None:
                    raise SourceError("a clone URL needs a git cache folder")
                self._local = clone_or_fetch(self.url, self.cache_root)
            elif self.path is not None:
                self._local = self.path
            else:
                raise SourceError("a git source needs a path or a URL")
        return self._local

    def iter_records(
        self, previous: Mapping[str, Watermark] | None = None
    ) -> Iterator[ParsedRecord]:
        """Commits reachable from HEAD but not from the previous tip (all after a force push).

        Clones/fetches right away (errors surface here, not on first `next`).
        """
        path = self.local_path()
        self._watermarks = None
        return self._records(path, (previous or {}).get(self.repo))

    def _records(self, path: Path, prev: Watermark | None) -> Iterator[ParsedRecord]:
        tip = head_sha(path)
        if tip is None:  # empty repository: nothing yet, keep what we had
            self._watermarks = {self.repo: prev} if prev else {}
            return
        rev_range = incremental_range(path, tip, prev.head_sha if prev else None)
        latest: datetime | None = prev.committed_at_max if prev else None
        records = stream_git_log(
            path, repo=self.repo, source=self.name, rev_range=rev_range, workers=self.workers
        )
        for record in records:
            if isinstance(record, CommitRecord) and (
                latest is None or record.committed_at > latest
            ):
                latest = record.committed_at
            yield record
        self._watermarks = {
            self.repo: Watermark(
                repo=self.repo, source=self.name, head_sha=tip, committed_at_max=latest
            )
        }

    def watermarks(self) -> dict[str, Watermark]:
        if self._watermarks is None:
            raise RuntimeError("iterate iter_records() to the end before asking for watermarks")
        return dict(self._watermarks)


@dataclass
class DatasetSource:
    """A commit-dataset file (JSON Lines, gzip or plain); may hold several repos."""

    name: str
    path: Path
    kind: SourceKind = "dataset"
    _reader: DatasetReader | None = field(default=None, init=False, repr=False)

    def iter_records(
        self, previous: Mapping[str, Watermark] | None = None
    ) -> Iterator[ParsedRecord]:
        """All records, or nothing when `previous` holds this file's checksum."""
        self._reader = DatasetReader(self.path, source=self.name)
        return self._reader.records(previous)

    def watermarks(self) -> dict[str, Watermark]:
        if self._reader is None:
            raise RuntimeError("iterate iter_records() to the end before asking for watermarks")
        return self._reader.watermarks()


def resolve_source(spec: str, settings: Settings, *, repo: str | None = None) -> Source:
    """A source for `spec`: clone URL (``https://``, ``git@host:``, ``file://``), local repository
    folder, or dataset file. `repo` overrides the derived ``owner/name`` of git sources.

    Raises `SourceError` for a missing path, a folder that is not a repository's top level, or
    an invalid name. Clone URLs are cloned/fetched when records are first requested.
    """
    spec = spec.strip()
    if not spec:
        raise SourceError("empty source")
    if is_clone_url(spec):
        return GitSource(
            name=mask_credentials(spec),
            repo=validate_repo_name(repo or repo_name_from_url(spec)),
            url=spec,
            cache_root=settings.git_cache,
            workers=settings.git_workers,
        )
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"no such file or folder: {spec}")
    if path.is_dir():
        root = repository_root(path)
        return GitSource(
            name=str(root),
            repo=validate_repo_name(repo or repo_name_for_path(root)),
            path=root,
            workers=settings.git_workers,
        )
    if repo is not None:
        raise SourceError("a repo name override applies to git sources only")
    if not path.is_file():
        raise SourceError(f"not a regular file or folder: {spec}")
    return DatasetSource(name=str(path.resolve()), path=path.resolve())
