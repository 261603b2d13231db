"""Forward-only, numbered SQL migrations (``sql/migrations/NNNN_name.sql``) for PostgreSQL.

`migrate` applies every migration not yet recorded in ``audit.schema_migrations``, in version
order, each in its own transaction together with its record row (version, name, sha256 checksum,
who, when), and appends a ``db.migrate`` event to ``audit.events``. Concurrent runs serialise on
an advisory lock. There is no "down": a fix is a new migration. An applied migration whose file
changed (checksum) or disappeared, or a file numbered below the newest applied one that was never
applied, is an error — nothing is applied then.

Run it with the bootstrap owner (a superuser, ``Settings.postgres_admin_user``): migrations create
roles, default privileges and an event trigger.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = "dataplatform.schema_migrations"

_BOOTSTRAP = (
    "CREATE SCHEMA IF NOT EXISTS audit",
    """
    CREATE TABLE IF NOT EXISTS audit.schema_migrations (
        version     INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        checksum    TEXT NOT NULL,
        applied_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        applied_by  TEXT NOT NULL DEFAULT session_user
    )
    """,
)


class MigrationError(RuntimeError):
    """The migrations on disk and the ones recorded in the database disagree, or one failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path
    sql: str
    checksum: str  # sha256 hex of the file bytes


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """What `migrate` did."""

    applied: tuple[Migration, ...]  # applied by this run, in order
    already_applied: int  # recorded before this run
    departments: int | None  # repositories mapped after the department sync (None: not synced)


def default_migrations_dir() -> Path:
    """``sql/migrations`` of the source tree."""
    return Path(__file__).resolve().parents[3] / "sql" / "migrations"


def discover_migrations(directory: Path | None = None) -> list[Migration]:
    """Migration files of `directory`, by version; raises on a bad name or a duplicate version."""
    folder = directory or default_migrations_dir()
    if not folder.is_dir():
        raise MigrationError(f"migrations folder {folder} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != ".sql":
            continue
        match = MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_name.sql")
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version} also used by {found[version].path.name}"
            )
        data = path.read_bytes()
        found[version] = Migration(
            version=version,
            name=match["name"],
            path=path,
            sql=data.decode("utf-8"),
            checksum=hashlib.sha256(data).hexdigest(),
        )
    return [found[v] for v in sorted(found)]


def plan(migrations: list[Migration], applied: Mapping[int, tuple[str, str]]) -> list[Migration]:
    """Migrations still to apply, given the recorded ``{version: (name, checksum)}``.

    Pure; raises `MigrationError` when a recorded migration changed or vanished, or when a new
    file is numbered below the newest applied one (forward-only: it would never run on a
    database that is already past it).
    """
    on_disk = {m.version: m for m in migrations}
    problems = []
    for version, (name, checksum) in sorted(applied.items()):
        migration = on_disk.get(version)
        if migration is None:
            problems.append(f"applied migration {version:04d}_{name} is missing on disk")
        elif migration.checksum != checksum:
            problems.append(
                f"applied migration {migration.path.name} was changed after it was applied "
                f"(checksum {checksum[:12]}… recorded, {migration.checksum[:12]}… on disk); "
                "write a new migration instead"
            )
    newest = max(applied, default=0)
    pending = [m for m in migrations if m.version not in applied]
    for migration in pending:
        if migration.version < newest:
            problems.append(
                f"{migration.path.name} is numbered below the newest applied migration "
                f"({newest:04d}); renumber it after {newest:04d}"
            )
    if problems:
        raise MigrationError("; ".join(problems))
    return pending


def applied_migrations(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, str]]:
    """``{version: (name, checksum)}`` recorded in audit.schema_migrations ({} when absent)."""
    row = conn.execute("SELECT to_regclass('audit.schema_migrations')").fetchone()
    if row is None or row[0] is None:
        return {}
    rows = conn.execute("SELECT version, name, checksum FROM audit.schema_migrations").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}


def migrate(
    conninfo: str,
    *,
    directory: Path | None = None,
    repo_departments: Mapping[str, str] | None = None,
    actor: str = "dataplatform db migrate",
) -> MigrateResult:
    """Apply pending migrations, then sync `repo_departments` (when given) into the database."""
    import psycopg

    from dataplatform.security.audit import AuditAction, insert_event
    from dataplatform.security.rls import sync_departments

    migrations = discover_migrations(directory)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Session lock: a second `migrate` waits, then finds nothing left to do.
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [_LOCK_KEY])
        try:
            with conn.transaction():
                for statement in _BOOTSTRAP:
                    conn.execute(statement)
            recorded = applied_migrations(conn)
            pending = plan(migrations, recorded)
            for migration in pending:
                _apply(conn, migration)
            departments = None
            if repo_departments is not None:
                with conn.transaction():
                    departments = sync_departments(conn, repo_departments)
            if pending:
                insert_event(
                    conn,
                    AuditAction.MIGRATION,
                    subject=f"{pending[-1].version:04d}_{pending[-1].name}",
                    actor=actor,
                    details={"applied": [m.path.name for m in pending]},
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [_LOCK_KEY])
    return MigrateResult(tuple(pending), len(recorded), departments)


def _apply(conn: psycopg.Connection[Any], migration: Migration) -> None:
    import psycopg

    try:
        with conn.transaction():
            # The file is trusted project code (reviewed like Python), run as one script.
            conn.execute(migration.sql.encode("utf-8"), prepare=False)
            conn.execute(
                "INSERT INTO audit.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                [migration.version, migration.name, migration.checksum],
            )
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.path.name} failed, nothing of it applied: {exc}") from exc
