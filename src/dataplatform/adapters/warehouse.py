"""The warehouse: DuckDB (embedded, dev) or PostgreSQL (servers), behind one `Warehouse` protocol.

`load_batch` is the only writer of the raw layer. It is atomic and idempotent: in ONE transaction
it skips a batch already recorded in ``raw.ingest_batches``, inserts the commits with
``ON CONFLICT (repo, commit_sha) DO NOTHING`` (a commit seen in an earlier batch keeps its first
load), adds the keyed e-mail hashes, inserts the quarantined records and records the batch.
Any failure rolls everything back, so the batch can simply be loaded again.

SQL passed to `query_df` / `execute` uses ``?`` placeholders on both backends.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dataplatform.adapters.ddl import RAW_SCHEMA_DDL, RAW_TABLES
from dataplatform.contracts import COMMIT_SCHEMA, QUARANTINE_SCHEMA, BatchManifest

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import psycopg

    from dataplatform.config import Settings

# Columns of raw.commits in DDL order; the load-time ones come after COMMIT_SCHEMA's.
COMMIT_COLUMNS: tuple[str, ...] = tuple(COMMIT_SCHEMA.names)
HASH_COLUMNS: tuple[str, ...] = ("author_email_hash", "committer_email_hash")
QUARANTINE_COLUMNS: tuple[str, ...] = tuple(QUARANTINE_SCHEMA.names)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one `load_batch` did."""

    rows_inserted: int  # new rows in raw.commits
    rows_skipped: int  # rows of the batch already present (same repo + commit_sha)
    quarantined: int  # rows added to raw.commit_quarantine
    already_loaded: bool  # the batch was recorded before: nothing was done


class BatchLoadError(RuntimeError):
    """A batch could not be loaded; nothing of it is in the warehouse."""


# --- keyed e-mail hashes -------------------------------------------------------------------
def hmac_email(email: str, key: bytes) -> str:
    """HMAC-SHA256 hex of an e-mail keyed by the PII key (exactly as stored, no normalising)."""
    return hmac.new(key, email.encode("utf-8"), hashlib.sha256).hexdigest()


def hmac_emails(values: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """`hmac_email` of every value (nulls stay null); hashes each distinct e-mail only once."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    dictionary = encoded.dictionary.to_pylist()
    hashed = pa.array([hmac_email(v, key) for v in dictionary], type=pa.string())
    return pc.take(hashed, encoded.indices)


def _with_hashes(commits: pa.Table, pii_key: bytes) -> pa.Table:
    """`commits` in COMMIT_SCHEMA column order plus the two e-mail hash columns."""
    table = commits.select(list(COMMIT_COLUMNS)).cast(COMMIT_SCHEMA)
    table = table.append_column("author_email_hash", hmac_emails(table["author_email"], pii_key))
    return table.append_column(
        "committer_email_hash", hmac_emails(table["committer_email"], pii_key)
    )


def _check_batch(manifest: BatchManifest, commits: pa.Table, quarantine: pa.Table) -> None:
    if commits.num_rows != manifest.row_count:
        raise BatchLoadError(
            f"batch {manifest.batch_id}: {commits.num_rows} commits, manifest says "
            f"{manifest.row_count}"
        )
    if quarantine.num_rows != manifest.quarantined_count:
        raise BatchLoadError(
            f"batch {manifest.batch_id}: {quarantine.num_rows} quarantined records, manifest "
            f"says {manifest.quarantined_count}"
        )
    if commits.num_rows:
        repos = pc.unique(commits["repo"]).to_pylist()
        if repos != [manifest.repo]:
            raise BatchLoadError(
                f"batch {manifest.batch_id} is for {manifest.repo!r} but holds commits of {repos}"
            )


def _watermark_json(manifest: BatchManifest) -> str:
    return json.dumps(manifest.watermark.to_dict(), sort_keys=True)


# --- protocol ------------------------------------------------------------------------------
@runtime_checkable
class Warehouse(Protocol):
    """What the pipeline needs from a warehouse."""

    backend: str

    def ensure_raw_schema(self) -> None:
        """Create the raw/analytics schemas and raw tables if missing."""
        ...

    def ensure_ddl(self, statements: Sequence[str], tables: Sequence[str]) -> None:
        """Run the idempotent DDL `statements` unless every one of `tables` already exists."""
        ...

    def load_batch(
        self, manifest: BatchManifest, commits: pa.Table, quarantine: pa.Table, pii_key: bytes
    ) -> LoadResult:
        """Load one raw batch atomically and idempotently."""
        ...

    def loaded_batch_ids(self) -> set[str]:
        """batch_id of every batch recorded in raw.ingest_batches."""
        ...

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run a query (``?`` placeholders) and return its rows."""
        ...

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one statement (``?`` placeholders), committed on return."""
        ...

    def table_row_counts(self, schemas: Sequence[str] = ("raw", "analytics")) -> dict[str, int]:
        """Row count of every table and view in `schemas`, keyed ``schema.table``."""
        ...

    def close(self) -> None:
        """Release the connection (DuckDB: frees the file for dbt)."""
        ...

    def __enter__(self) -> Warehouse: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


_LIST_RELATIONS_SQL = """
    SELECT table_schema, table_name FROM information_schema.tables
    WHERE table_schema IN ({placeholders})
    ORDER BY table_schema, table_name
"""


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _ClosedOnExit:
    """``with`` support of the warehouses: leaving the block closes the connection."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- DuckDB --------------------------------------------------------------------------------
# Rows per DuckDB row group written through this adapter (DuckDB's default: 122,880). A load
# writes each full row group into the file while its transaction is still open (DuckDB's
# optimistic writes), so the commit and the checkpoint at close are left little to write; at
# the ingest's chunk size (4,096 rows, a row group every two chunks) that happens while git is
# still streaming.
DUCKDB_ROW_GROUP_ROWS = 8192


def _connect_duckdb(path: str, lock_wait_s: float) -> tuple[duckdb.DuckDBPyConnection, str]:
    """(connection, key for `_close_duckdb`), waiting up to `lock_wait_s` while another process
    holds the file's lock (DuckDB allows one writing process; the API and the CLI take turns).

    A file is attached under the name ``duckdb.connect(path)`` would give it (its stem), with
    `DUCKDB_ROW_GROUP_ROWS` (an ATTACH option only), in one DuckDB instance per file and
    process (`_SHARED`): every connection to the file is a cursor of that instance.
    """
    import duckdb

    if path == ":memory:":
        return duckdb.connect(path), ""
    key = os.path.realpath(path)
    return _SHARED.connect(key, path, lock_wait_s), key


class _SharedInstances:
    """One DuckDB instance per attached warehouse file in this process, shared by its users.

    DuckDB refuses to attach a file that another instance in the same process has attached
    ("Unique file handle conflict"), so two warehouses open at once on one file (the API's
    readiness probe while its prediction log writer holds one) need the same instance, as
    ``duckdb.connect(path)``'s instance cache gives. Each user gets a cursor (its own
    connection and transactions); the instance, and with it the file, is closed (and
    checkpointed) when the last user releases it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, tuple[duckdb.DuckDBPyConnection, str, int]] = {}

    def connect(self, key: str, path: str, lock_wait_s: float) -> duckdb.DuckDBPyConnection:
        """A cursor on the instance that has `path` attached (`key`: its real path)."""
        with self._lock:
            if key in self._open:
                root, alias, users = self._open[key]
            else:
                root, alias, users = *_attach(path, lock_wait_s), 0
            cursor = root.cursor()
            try:
                cursor.execute(f"USE {alias}")
            except BaseException:
                cursor.close()
                if not users:
                    root.close()
                raise
            self._open[key] = (root, alias, users + 1)
            return cursor

    def release(self, key: str) -> None:
        """One user of the file is done (it closed its cursor); the last one closes the file."""
        with self._lock:
            root, alias, users = self._open[key]
            if users > 1:
                self._open[key] = (root, alias, users - 1)
                return
            del self._open[key]
            root.close()


_SHARED = _SharedInstances()


def _close_duckdb(con: duckdb.DuckDBPyConnection, key: str) -> None:
    con.close()
    if key:  # a file (in-memory databases are not shared)
        _SHARED.release(key)


def _attach(path: str, lock_wait_s: float) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A new in-memory instance with `path` attached; (its connection, the quoted alias)."""
    import duckdb

    stem = Path(path).stem
    # DuckDB's own names: "temp", "system" and "main" are reserved (it appends "_db" too), and
    # "memory" is the in-memory catalog this connection starts in.
    reserved = stem.lower() in {"temp", "system", "main", "memory"}
    alias = _quote_ident(f"{stem}_db" if reserved else stem)
    literal = "'" + path.replace("'", "''") + "'"
    deadline = time.monotonic() + lock_wait_s
    while True:
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH {literal} AS {alias} (ROW_GROUP_SIZE {DUCKDB_ROW_GROUP_ROWS})")
            return con, alias
        except duckdb.IOException as exc:
            con.close()
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        except BaseException:
            con.close()
            raise


class DuckDBWarehouse(_ClosedOnExit):
    """Warehouse in a DuckDB file. Close it before dbt (or anything else) opens the file."""

    backend = "duckdb"

    def __init__(self, path: str | Path, *, lock_wait_s: float = 30.0) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con, key = _connect_duckdb(str(path), lock_wait_s)
        self._con: duckdb.DuckDBPyConnection | None = con
        # Closes the connection if this object is dropped unclosed, so that the shared instance
        # (`_SHARED`) still lets go of the file; `close` runs it now.
        self._closer = weakref.finalize(self, _close_duckdb, con, key)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError("warehouse is closed")
        return self._con

    def ensure_raw_schema(self) -> None:
        self.ensure_ddl(RAW_SCHEMA_DDL, RAW_TABLES)

    def ensure_ddl(self, statements: Sequence[str], tables: Sequence[str]) -> None:
        con = self.connection
        for statement in statements:
            con.execute(statement)

    def loaded_batch_ids(self) -> set[str]:
        rows = self.connection.execute("SELECT batch_id FROM raw.ingest_batches").fetchall()
        return {row[0] for row in rows}

    def load_batch(
        self, manifest: BatchManifest, commits: pa.Table, quarantine: pa.Table, pii_key: bytes
    ) -> LoadResult:
        _check_batch(manifest, commits, quarantine)
        staged = self.begin_load(manifest.batch_id, pii_key)
        try:
            staged.append(commits)
            return staged.finish(manifest, quarantine)
        finally:
            staged.abort()  # no-op once finished

    def begin_load(self, batch_id: str, pii_key: bytes) -> DuckDBBatchLoad:
        """Start loading one batch chunk by chunk (e.g. while it is still being ingested).

        One transaction stays open until `DuckDBBatchLoad.finish`: nothing is visible before,
        everything after; `abort` (or any failure) rolls it all back.
        """
        return DuckDBBatchLoad(self, batch_id, pii_key)

    def _after_commits_insert(self, manifest: BatchManifest) -> None:
        """Hook between the commits and quarantine inserts (tests inject crashes here)."""

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        return self.connection.execute(sql, list(params) if params else None).df()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.connection.execute(sql, list(params) if params else None)

    def table_row_counts(self, schemas: Sequence[str] = ("raw", "analytics")) -> dict[str, int]:
        con = self.connection
        sql = _LIST_RELATIONS_SQL.format(placeholders=", ".join("?" for _ in schemas))
        counts: dict[str, int] = {}
        for schema, table in con.execute(sql, list(schemas)).fetchall():
            name = f"{_quote_ident(schema)}.{_quote_ident(table)}"
            counts[f"{schema}.{table}"] = _count(
                con.execute(f"SELECT count(*) FROM {name}").fetchone()
            )
        return counts

    def close(self) -> None:
        self._con = None
        self._closer()


class DuckDBBatchLoad:
    """One batch being loaded into DuckDB in one open transaction (see `begin_load`).

    `append` inserts a chunk of commits (COMMIT_SCHEMA) into raw.commits with their e-mail
    hashes, skipping keys already present (earlier batches, or an earlier chunk of this one);
    `finish` checks the totals against the manifest, adds the quarantine and the batch record
    and commits. A batch recorded already is rolled back and reported as `already_loaded`.
    """

    def __init__(self, warehouse: DuckDBWarehouse, batch_id: str, pii_key: bytes) -> None:
        self._warehouse = warehouse
        self._con = warehouse.connection
        self._batch_id = batch_id
        self._pii_key = pii_key
        self._loaded_at = datetime.now(UTC)
        self._rows = self._inserted = 0
        self._open = True
        self._con.begin()
        try:
            self._seen = bool(
                self._con.execute(
                    "SELECT 1 FROM raw.ingest_batches WHERE batch_id = ?", [batch_id]
                ).fetchone()
            )
        except BaseException:
            self.abort()
            raise

    def append(self, commits: pa.Table | pa.RecordBatch) -> None:
        """Insert a chunk of the batch's commits (inside the still uncommitted transaction)."""
        if not self._open:
            raise RuntimeError(f"load of batch {self._batch_id} is finished")
        if self._seen or not commits.num_rows:
            self._rows += commits.num_rows
            return
        con = self._con
        table = commits if isinstance(commits, pa.Table) else pa.Table.from_batches([commits])
        con.register("_stage_commits", _with_hashes(table, self._pii_key))
        try:
            cols = ", ".join(COMMIT_COLUMNS + HASH_COLUMNS)
            # Keys repeated inside the chunk are dropped first; the sort that takes is skipped
            # for the usual chunk, which has none (a git log never repeats a commit).
            distinct = "" if _has_unique_keys(table) else "DISTINCT ON (repo, commit_sha)"
            order = "" if not distinct else "ORDER BY repo, commit_sha"
            self._inserted += _count(
                con.execute(
                    f"""
                    INSERT INTO raw.commits ({cols}, batch_id, loaded_at)
                    SELECT {distinct} {cols}, ?, ? FROM _stage_commits {order}
                    ON CONFLICT (repo, commit_sha) DO NOTHING
                    """,
                    [self._batch_id, self._loaded_at],
                ).fetchone()
            )
        except BaseException:
            self.abort()
            raise
        finally:
            con.unregister("_stage_commits")
        self._rows += table.num_rows

    def finish(self, manifest: BatchManifest, quarantine: pa.Table) -> LoadResult:
        """Record the batch and commit; every commit of `manifest` must have been appended."""
        if not self._open:
            raise RuntimeError(f"load of batch {self._batch_id} is finished")
        con = self._con
        try:
            if manifest.batch_id != self._batch_id:
                raise BatchLoadError(f"loading batch {self._batch_id}, got {manifest.batch_id}")
            if self._seen:
                self.abort()
                return LoadResult(0, 0, 0, already_loaded=True)
            if self._rows != manifest.row_count:
                raise BatchLoadError(
                    f"batch {manifest.batch_id}: {self._rows} commits, manifest says "
                    f"{manifest.row_count}"
                )
            if quarantine.num_rows != manifest.quarantined_count:
                raise BatchLoadError(
                    f"batch {manifest.batch_id}: {quarantine.num_rows} quarantined records, "
                    f"manifest says {manifest.quarantined_count}"
                )
            self._warehouse._after_commits_insert(manifest)
            staged_quarantine = quarantine.select(list(QUARANTINE_COLUMNS)).cast(QUARANTINE_SCHEMA)
            con.register("_stage_quarantine", staged_quarantine)
            qcols = ", ".join(QUARANTINE_COLUMNS)
            quarantined = _count(
                con.execute(
                    f"""
                    INSERT INTO raw.commit_quarantine ({qcols}, batch_id, loaded_at)
                    SELECT {qcols}, ?, ? FROM _stage_quarantine
                    """,
                    [manifest.batch_id, self._loaded_at],
                ).fetchone()
            )
            con.execute(
                "INSERT INTO raw.ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    manifest.batch_id,
                    manifest.repo,
                    manifest.source,
                    manifest.ingest_date,
                    manifest.row_count,
                    self._inserted,
                    quarantined,
                    manifest.checksum,
                    _watermark_json(manifest),
                    self._loaded_at,
                ],
            )
            con.commit()
            self._open = False
        except BaseException:
            self.abort()
            raise
        finally:
            con.unregister("_stage_quarantine")  # after the rollback: no-op when not registered
        return LoadResult(
            self._inserted, self._rows - self._inserted, quarantined, already_loaded=False
        )

    def abort(self) -> None:
        """Roll back everything appended (no-op once finished or aborted)."""
        if self._open:
            self._open = False
            self._con.rollback()


def _has_unique_keys(commits: pa.Table) -> bool:
    """True when no (repo, commit_sha) occurs twice in `commits`."""
    if pc.count_distinct(commits["repo"]).as_py() > 1:
        return False  # never within one batch; let the SQL sort it out
    return bool(pc.count_distinct(commits["commit_sha"]).as_py() == commits.num_rows)


def _count(row: tuple[Any, ...] | None) -> int:
    return int(row[0]) if row else 0


# --- PostgreSQL ----------------------------------------------------------------------------
_PG_STAGE_COMMITS = """
    CREATE TEMP TABLE _stage_commits (
        repo TEXT, commit_sha TEXT, parent_shas_text TEXT, parent_count INTEGER,
        author_name TEXT, author_email TEXT, committer_name TEXT, committer_email TEXT,
        authored_at TIMESTAMPTZ, author_utc_offset_minutes INTEGER,
        committed_at TIMESTAMPTZ, committer_utc_offset_minutes INTEGER,
        message TEXT, files_changed INTEGER, lines_added INTEGER, lines_deleted INTEGER,
        author_email_hash TEXT, committer_email_hash TEXT
    ) ON COMMIT DROP
"""
_PG_STAGE_QUARANTINE = """
    CREATE TEMP TABLE _stage_quarantine (
        source TEXT, position BIGINT, reason TEXT, raw TEXT, repo TEXT, commit_sha TEXT
    ) ON COMMIT DROP
"""


def _csv_bytes(table: pa.Table) -> bytes:
    """CSV that COPY reads back exactly: every non-null value quoted, nulls left empty."""
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    pacsv.write_csv(table, buffer, options)
    return buffer.getvalue()


# Rows per CSV chunk sent to COPY: the server parses one chunk while the next is encoded.
_COPY_CHUNK_ROWS = 8192


def _csv_chunks(table: pa.Table) -> Iterator[bytes]:
    """`_csv_bytes` of `table` in slices of `_COPY_CHUNK_ROWS` rows."""
    for start in range(0, table.num_rows, _COPY_CHUNK_ROWS):
        yield _csv_bytes(table.slice(start, _COPY_CHUNK_ROWS))


def _pg_direct_table(staged: pa.Table, batch_id: str, loaded_at: datetime) -> pa.Table:
    """`staged` as raw.commits stores it, for COPY straight into the table: parent_shas as a
    ``{sha,sha}`` array literal (hex SHAs need no quoting; [] → {}, null stays null), plus the
    batch id and load time; sorted by key, so that concurrent loaders lock keys in one order."""
    joined = pc.binary_join(staged["parent_shas"], ",")
    literal = pc.binary_join_element_wise("{", joined, "}", "")
    table = staged.set_column(staged.schema.get_field_index("parent_shas"), "parent_shas", literal)
    n = table.num_rows
    table = table.append_column("batch_id", pa.array([batch_id] * n, pa.string()))
    table = table.append_column("loaded_at", pa.array([loaded_at.isoformat()] * n, pa.string()))
    return table.sort_by([("repo", "ascending"), ("commit_sha", "ascending")])


def _pg_stage_table(staged: pa.Table) -> pa.Table:
    """`staged` with parent_shas as one space-joined text (rebuilt by string_to_array)."""
    # SHAs are hex, so a space never occurs inside one; [] → '' → '{}', null stays null.
    joined = pc.binary_join(staged["parent_shas"], " ")
    index = staged.schema.get_field_index("parent_shas")
    return staged.set_column(index, "parent_shas_text", joined)


def _to_pyformat(sql: str) -> str:
    """``?`` placeholders → psycopg's ``%s`` (and literal ``%`` → ``%%``), outside quotes."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
            continue
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


class PostgresWarehouse(_ClosedOnExit):
    """Warehouse in PostgreSQL (psycopg 3). The connection is autocommit outside `load_batch`."""

    backend = "postgres"

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self._conn: psycopg.Connection[Any] | None = psycopg.connect(conninfo, autocommit=True)

    @property
    def connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise RuntimeError("warehouse is closed")
        return self._conn

    def ensure_raw_schema(self) -> None:
        self.ensure_ddl(RAW_SCHEMA_DDL, RAW_TABLES)

    def ensure_ddl(self, statements: Sequence[str], tables: Sequence[str]) -> None:
        """On a migrated database every table exists and nothing runs: application logins have
        no CREATE privilege there, and ``CREATE SCHEMA IF NOT EXISTS`` checks the privilege
        before it checks existence. Without migrations (dev, tests) the DDL creates them."""
        conn = self.connection
        if tables:
            row = conn.execute(
                "SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) AS t",
                [list(tables)],
            ).fetchone()
            if row is not None and row[0]:
                return
        with conn.transaction():
            # Serialise concurrent first runs: CREATE ... IF NOT EXISTS can still race in PG.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('dataplatform.ddl'))")
            for statement in statements:
                conn.execute(statement)

    def loaded_batch_ids(self) -> set[str]:
        rows = self.connection.execute("SELECT batch_id FROM raw.ingest_batches").fetchall()
        return {row[0] for row in rows}

    def load_batch(
        self, manifest: BatchManifest, commits: pa.Table, quarantine: pa.Table, pii_key: bytes
    ) -> LoadResult:
        from psycopg import errors as psycopg_errors

        _check_batch(manifest, commits, quarantine)
        staged = _with_hashes(commits, pii_key)
        staged_quarantine = quarantine.select(list(QUARANTINE_COLUMNS)).cast(QUARANTINE_SCHEMA)
        loaded_at = datetime.now(UTC)
        conn = self.connection
        with conn.transaction(), conn.cursor() as cur:
            # Two loaders of the same batch: the second waits here, then sees it recorded.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [manifest.batch_id])
            cur.execute("SELECT 1 FROM raw.ingest_batches WHERE batch_id = %s", [manifest.batch_id])
            if cur.fetchone():
                return LoadResult(0, 0, 0, already_loaded=True)
            try:
                # Fast path, the common case of all-new rows: COPY straight into raw.commits in
                # a savepoint. Any key already there (or twice in the batch) makes it fail, and
                # the savepoint undoes it; the staged upsert then skips those rows.
                with conn.transaction():
                    inserted = self._copy_new_commits(cur, staged, manifest.batch_id, loaded_at)
            except (psycopg_errors.UniqueViolation, psycopg_errors.DeadlockDetected):
                inserted = self._upsert_commits(cur, staged, manifest.batch_id, loaded_at)
            self._after_commits_insert(manifest)
            quarantined = 0
            if staged_quarantine.num_rows:
                cur.execute(_PG_STAGE_QUARANTINE)
                qcols = ", ".join(QUARANTINE_COLUMNS)
                with cur.copy(f"COPY _stage_quarantine ({qcols}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(_csv_bytes(staged_quarantine))
                cur.execute(
                    f"""
                    INSERT INTO raw.commit_quarantine ({qcols}, batch_id, loaded_at)
                    SELECT {qcols}, %s, %s FROM _stage_quarantine
                    """,
                    [manifest.batch_id, loaded_at],
                )
                quarantined = max(cur.rowcount, 0)
            cur.execute(
                "INSERT INTO raw.ingest_batches VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    manifest.batch_id,
                    manifest.repo,
                    manifest.source,
                    manifest.ingest_date,
                    manifest.row_count,
                    inserted,
                    quarantined,
                    manifest.checksum,
                    _watermark_json(manifest),
                    loaded_at,
                ],
            )
        return LoadResult(inserted, commits.num_rows - inserted, quarantined, already_loaded=False)

    @staticmethod
    def _copy_new_commits(
        cur: psycopg.Cursor[Any], staged: pa.Table, batch_id: str, loaded_at: datetime
    ) -> int:
        """COPY the batch into raw.commits; raises UniqueViolation if any key exists."""
        direct = _pg_direct_table(staged, batch_id, loaded_at)
        cols = ", ".join(direct.column_names)
        with cur.copy(f"COPY raw.commits ({cols}) FROM STDIN (FORMAT csv)") as copy:
            for chunk in _csv_chunks(direct):
                copy.write(chunk)
        return direct.num_rows

    @staticmethod
    def _upsert_commits(
        cur: psycopg.Cursor[Any], staged: pa.Table, batch_id: str, loaded_at: datetime
    ) -> int:
        """COPY the batch into a temp table, then insert the rows whose key is new."""
        stage = _pg_stage_table(staged)
        cur.execute(_PG_STAGE_COMMITS)
        stage_cols = ", ".join(stage.column_names)
        with cur.copy(f"COPY _stage_commits ({stage_cols}) FROM STDIN (FORMAT csv)") as copy:
            for chunk in _csv_chunks(stage):
                copy.write(chunk)
        select = [
            "string_to_array(parent_shas_text, ' ')" if c == "parent_shas" else c
            for c in COMMIT_COLUMNS
        ]
        insert_cols = ", ".join((*COMMIT_COLUMNS, *HASH_COLUMNS))
        select_cols = ", ".join((*select, *HASH_COLUMNS))
        cur.execute(
            f"""
            INSERT INTO raw.commits ({insert_cols}, batch_id, loaded_at)
            SELECT DISTINCT ON (repo, commit_sha) {select_cols}, %s, %s
            FROM _stage_commits ORDER BY repo, commit_sha
            ON CONFLICT (repo, commit_sha) DO NOTHING
            """,
            [batch_id, loaded_at],
        )
        return max(cur.rowcount, 0)

    def _after_commits_insert(self, manifest: BatchManifest) -> None:
        """Hook between the commits and quarantine inserts (tests inject crashes here)."""

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        import pandas as pd

        with self.connection.cursor() as cur:
            if params:
                cur.execute(_to_pyformat(sql), list(params))
            else:
                cur.execute(sql)
            columns = [d.name for d in cur.description] if cur.description else []
            return pd.DataFrame(cur.fetchall(), columns=columns)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if params:
            self.connection.execute(_to_pyformat(sql), list(params))
        else:
            self.connection.execute(sql)

    def table_row_counts(self, schemas: Sequence[str] = ("raw", "analytics")) -> dict[str, int]:
        from psycopg import sql as pgsql

        conn = self.connection
        query = _LIST_RELATIONS_SQL.format(placeholders=", ".join("%s" for _ in schemas))
        counts: dict[str, int] = {}
        for schema, table in conn.execute(query, list(schemas)).fetchall():
            stmt = pgsql.SQL("SELECT count(*) FROM {}.{}").format(
                pgsql.Identifier(schema), pgsql.Identifier(table)
            )
            counts[f"{schema}.{table}"] = _count(conn.execute(stmt).fetchone())
        return counts

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse named by `settings.warehouse_backend` (connection opened now)."""
    if settings.warehouse_backend == "postgres":
        return PostgresWarehouse(settings.postgres_conninfo())
    return DuckDBWarehouse(settings.warehouse_path)
