"""PostgreSQL load throughput of our loader against `psql \\copy` of the same rows, same run.

    .venv/bin/python benchmarks/pg_load.py [--rows N] [--repeat N] [--dsn CONNINFO]

Starts a throwaway cluster with scripts/pg.sh (unless --dsn is given), builds N commit rows from
the four shipped datasets (real messages, names and e-mails; copies get fresh SHAs), then times,
alternating, best of `--repeat`:

* loader: `PostgresWarehouse.load_batch` of the Arrow table into an empty `raw.commits`
  (e-mail HMACs, CSV encoding, COPY into a temp table, INSERT ... ON CONFLICT DO NOTHING,
  batch recorded — one transaction, idempotent);
* psql: ``psql -c "\\copy bench.commits FROM 'file.csv' (FORMAT csv)"`` of a CSV prepared
  beforehand (untimed) with the same 20 columns — hashes, batch_id, loaded_at included — into an
  empty table created ``LIKE raw.commits INCLUDING ALL`` (same primary key), rows in key order
  as the loader sends them (the strict comparison: an unsorted CSV is slower for psql).

Prints rows/s of both and the ratio loader ÷ psql. Target: ≥ 0.7.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dataplatform.adapters.warehouse import COMMIT_COLUMNS, PostgresWarehouse, _with_hashes
from dataplatform.contracts import QUARANTINE_SCHEMA, BatchManifest, CommitRecord, Watermark
from dataplatform.ingest.datasets import DatasetReader
from dataplatform.store.batches import commits_to_record_batch

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "data" / "commits"
PG_SCRIPT = ROOT / "scripts" / "pg.sh"
REPO = "bench/pg-load"
PII_KEY = b"benchmark-key-not-a-secret"


def build_rows(n_rows: int) -> pa.Table:
    """`n_rows` commits (COMMIT_SCHEMA) of one repo, cycling over the shipped datasets."""
    records = [
        rec
        for path in sorted(DATASETS.glob("*.jsonl.gz"))
        for rec in DatasetReader(path).records(None)
        if isinstance(rec, CommitRecord)
    ]
    base = pa.Table.from_batches([commits_to_record_batch(records)])
    copies = []
    for copy in range(-(-n_rows // base.num_rows)):
        shas = [
            hashlib.sha1(f"{copy}:{sha}".encode()).hexdigest()
            for sha in base["commit_sha"].to_pylist()
        ]
        table = base.set_column(1, "commit_sha", pa.array(shas, pa.string()))
        copies.append(table)
    table = pa.concat_tables(copies).slice(0, n_rows)
    repo = pa.array([REPO] * table.num_rows, pa.string())
    return table.set_column(0, "repo", repo).combine_chunks()


def write_psql_csv(table: pa.Table, path: Path) -> None:
    """The rows as raw.commits stores them (20 columns, same order), as CSV for \\copy."""
    full = _with_hashes(table, PII_KEY)
    # text[] literal: {sha,sha} (hex SHAs need no quoting); nulls stay empty.
    parents = pc.binary_join_element_wise("{", pc.binary_join(full["parent_shas"], ","), "}", "")
    full = full.set_column(full.schema.get_field_index("parent_shas"), "parent_shas", parents)
    full = full.append_column("batch_id", pa.array(["psql-batch"] * full.num_rows))
    full = full.append_column(
        "loaded_at", pa.array([datetime.now(UTC)] * full.num_rows, pa.timestamp("us", tz="UTC"))
    )
    # In key order, like the loader sends them: the strict comparison (sorted keys make the
    # primary-key index build cheaper for psql too).
    full = full.sort_by([("repo", "ascending"), ("commit_sha", "ascending")])
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    pacsv.write_csv(full, str(path), options)


def manifest_for(table: pa.Table, round_no: int) -> BatchManifest:
    return BatchManifest(
        batch_id=f"bench-{round_no}",
        repo=REPO,
        source="benchmark",
        ingest_date="2026-01-01",
        row_count=table.num_rows,
        quarantined_count=0,
        checksum="0" * 64,
        data_path=None,
        quarantine_path=None,
        watermark=Watermark(repo=REPO, source="benchmark", head_sha=None),
        created_at=datetime.now(UTC),
    )


def reset(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE raw.commits, raw.ingest_batches, bench.commits")
        conn.execute("CHECKPOINT")  # both start from the same clean state


def time_loader(conninfo: str, table: pa.Table, round_no: int) -> float:
    with PostgresWarehouse(conninfo) as warehouse:
        started = time.perf_counter()
        result = warehouse.load_batch(
            manifest_for(table, round_no), table, QUARANTINE_SCHEMA.empty_table(), PII_KEY
        )
        seconds = time.perf_counter() - started
    assert result.rows_inserted == table.num_rows, result
    return seconds


def time_psql(conninfo: str, csv_path: Path, n_rows: int) -> float:
    fields = conninfo_to_dict(conninfo)
    env = {**os.environ, "PGPASSWORD": str(fields.get("password", ""))}
    args = [
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        str(fields.get("host", "127.0.0.1")),
        "-p",
        str(fields.get("port", 5432)),
        "-U",
        str(fields.get("user", "postgres")),
        "-d",
        str(fields["dbname"]),
        "-c",
        f"\\copy bench.commits ({', '.join(_psql_columns())}) FROM '{csv_path}' (FORMAT csv)",
    ]
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True)
    seconds = time.perf_counter() - started
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM bench.commits").fetchone()
    if row is None or row[0] != n_rows:
        raise RuntimeError(f"psql loaded {row} rows, expected {n_rows}")
    return seconds


def _psql_columns() -> list[str]:
    return [*COMMIT_COLUMNS, "author_email_hash", "committer_email_hash", "batch_id", "loaded_at"]


def run(admin_dsn: str, n_rows: int, repeat: int) -> float:
    dbname = f"bench_{os.getpid()}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    conninfo = make_conninfo(admin_dsn, dbname=dbname)
    try:
        with PostgresWarehouse(conninfo) as warehouse:
            warehouse.ensure_raw_schema()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA bench")
            conn.execute("CREATE TABLE bench.commits (LIKE raw.commits INCLUDING ALL)")
        print(f"building {n_rows:,} rows from {DATASETS} ...", flush=True)
        table = build_rows(n_rows)
        with tempfile.TemporaryDirectory() as tmp:
            csv_path = Path(tmp) / "commits.csv"
            write_psql_csv(table, csv_path)
            os.chmod(tmp, 0o755)  # psql runs as this user; nothing else needs it
            loader_s: list[float] = []
            psql_s: list[float] = []
            for round_no in range(repeat):
                reset(conninfo)
                psql_s.append(time_psql(conninfo, csv_path, n_rows))
                reset(conninfo)
                loader_s.append(time_loader(conninfo, table, round_no))
                print(
                    f"  round {round_no + 1}: psql {psql_s[-1]:.2f}s, loader {loader_s[-1]:.2f}s",
                    flush=True,
                )
        best_psql, best_loader = min(psql_s), min(loader_s)
        ratio = best_psql / best_loader
        print(f"rows: {n_rows:,}  (best of {repeat}; median in brackets)")
        print(
            f"psql \\copy: {n_rows / best_psql:12,.0f} rows/s "
            f"({n_rows / statistics.median(psql_s):,.0f})"
        )
        print(
            f"our loader: {n_rows / best_loader:12,.0f} rows/s "
            f"({n_rows / statistics.median(loader_s):,.0f})"
        )
        print(f"ratio loader / psql \\copy: {ratio:.2f}x (target >= 0.70x)")
        return ratio
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dsn", help="superuser conninfo of an existing throwaway cluster")
    args = parser.parse_args()
    if args.dsn:
        ratio = run(args.dsn, args.rows, args.repeat)
        return 0 if ratio >= 0.7 else 1
    parent = Path(tempfile.mkdtemp(prefix="dataplatform-bench-pg-"))
    parent.chmod(0o755)  # the `postgres` OS user must reach the cluster folder when run as root
    cluster = parent / "cluster"
    try:
        started = subprocess.run(
            ["bash", str(PG_SCRIPT), "start", str(cluster)],
            capture_output=True,
            text=True,
            check=True,
        )
        ratio = run(started.stdout.strip().splitlines()[-1], args.rows, args.repeat)
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", str(cluster)], check=False)
        parent.rmdir()
    return 0 if ratio >= 0.7 else 1


if __name__ == "__main__":
    sys.exit(main())
