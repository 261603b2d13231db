"""Mutual exclusion around "read current holder → move alias → append history".

MLflow moves an alias atomically, but our history lives in another store, so the read-move-record
sequence must run one at a time per model, across threads, processes and (on servers) hosts:

* `FileLock` (embedded DuckDB profile): an exclusive `flock` on one file per model under
  `<home>/locks/`. Each acquisition opens the file anew, so threads of one process exclude
  each other too; DuckDB itself allows a single writer process, so a host-local lock suffices.
* `PostgresAdvisoryLock` (PostgreSQL profile): a session advisory lock taken on a dedicated
  connection per acquisition (sharing the warehouse connection would make the lock re-entrant
  for every thread using it), so promotions from different pods serialise in the database.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dataplatform.config import Settings


class LifecycleLock(Protocol):
    """A lock per registered model name."""

    def hold(self, model_name: str) -> AbstractContextManager[None]: ...


class FileLock:
    """Exclusive `flock` on one file per model under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def hold(self, model_name: str) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Hash the name: model names may hold characters a file name cannot.
        digest = hashlib.sha256(model_name.encode()).hexdigest()[:16]
        path = self.folder / f"registry-{digest}.lock"
        with path.open("a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class PostgresAdvisoryLock:
    """`pg_advisory_lock` keyed by the model name, on its own connection."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    @contextmanager
    def hold(self, model_name: str) -> Iterator[None]:
        import psycopg

        key = advisory_key(model_name)
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [key])
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", [key])


def advisory_key(model_name: str) -> int:
    """Stable signed 64-bit key for `pg_advisory_lock` (namespaced to the registry)."""
    digest = hashlib.sha256(f"dataplatform.registry:{model_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_for(settings: Settings) -> LifecycleLock:
    """The lock matching the warehouse backend of `settings`."""
    if settings.warehouse_backend == "postgres":
        return PostgresAdvisoryLock(settings.postgres_conninfo())
    return FileLock(settings.home / "locks")
