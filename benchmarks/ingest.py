"""Ingestion throughput against raw `git log --numstat`, measured in the same run.

    .venv/bin/python benchmarks/ingest.py [--repo PATH] [--repeat N]

Builds (or reuses) a large real-history repository with `benchmarks/make_repo.py` (the four
shipped histories replayed with `git fast-import`: ~18k commits with their real numstat), then
times, best of `--repeat`:

* baseline: one raw `git log --numstat > /dev/null` process;
* ingest, 1 process: `git log` streamed and parsed → one Parquet batch in the object store →
  loaded into the DuckDB warehouse (`raw.commits`, with e-mail hashing);
* ingest, 2 processes: the history split in two disjoint rev ranges (one per core), each
  streamed and written as its own batch, then both loaded.

Prints commits/s (and lines/s) of each and the ratios against the baseline. Targets: ≥ 0.9× for
one process, > 1.0× with both cores.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.warehouse import DuckDBWarehouse
from dataplatform.contracts import CommitRecord, Watermark
from dataplatform.ingest.git import split_history, stream_git_log
from dataplatform.store.batches import BatchWriter
from dataplatform.store.loader import load_pending

HERE = Path(__file__).resolve().parent
REPO_NAME = "bench/replayed-histories"


def _git_log_baseline(repo: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["git", "log", "--numstat"], cwd=repo, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def _ingest_range(repo: str, store_dir: str, rev_range: list[str]) -> tuple[int, int]:
    """Stream one rev range into one raw batch; returns (commits, lines added + deleted)."""
    store = ObjectStore.local(store_dir)
    commits = lines = 0
    with BatchWriter(store, repo=REPO_NAME, source=repo) as writer:
        for record in stream_git_log(Path(repo), repo=REPO_NAME, rev_range=rev_range):
            writer.add(record)
            if isinstance(record, CommitRecord):
                commits += 1
                lines += record.lines_added + record.lines_deleted
        writer.close(Watermark(repo=REPO_NAME, source=repo, head_sha=rev_range[0]))
    return commits, lines


def _ingest(repo: Path, parts: int, work: Path) -> tuple[float, int, int]:
    """Ingest the whole history with `parts` processes, then load; (seconds, commits, lines)."""
    store_dir = work / "objects"
    started = time.perf_counter()
    ranges = split_history(repo, parts) if parts > 1 else [["HEAD"]]
    if parts == 1:
        results = [_ingest_range(str(repo), str(store_dir), ranges[0])]
    else:
        with ProcessPoolExecutor(max_workers=parts) as pool:
            futures = [pool.submit(_ingest_range, str(repo), str(store_dir), r) for r in ranges]
            results = [f.result() for f in futures]
    with DuckDBWarehouse(work / "warehouse.duckdb") as warehouse:
        warehouse.ensure_raw_schema()
        summary = load_pending(ObjectStore.local(store_dir), warehouse, b"benchmark-key")
    seconds = time.perf_counter() - started
    commits = sum(c for c, _ in results)
    if summary.rows_inserted != commits:
        raise SystemExit(f"loaded {summary.rows_inserted} rows for {commits} commits")
    return seconds, commits, sum(n for _, n in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(tempfile.gettempdir()) / "dp-bench.git")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    subprocess.run([sys.executable, str(HERE / "make_repo.py"), str(args.repo)], check=True)
    git_s = min(_git_log_baseline(args.repo) for _ in range(args.repeat))

    results = {}
    for parts in (1, 2):
        best = None
        for _ in range(args.repeat):
            work = Path(tempfile.mkdtemp(prefix="dp-bench-ingest-"))
            try:
                run = _ingest(args.repo, parts, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            best = run if best is None or run[0] < best[0] else best
        results[parts] = best

    commits = results[1][1]
    git_rate = commits / git_s
    print(f"repository: {args.repo} ({commits:,} commits, {results[1][2]:,} lines changed)")
    print(f"baseline  git log --numstat > /dev/null : {git_s:6.2f} s  {git_rate:8,.0f} commits/s")
    for parts, (seconds, n, lines) in results.items():
        rate = n / seconds
        print(
            f"ingest → Parquet → warehouse, {parts} proc : {seconds:6.2f} s  {rate:8,.0f} commits/s"
            f"  {lines / seconds:10,.0f} lines/s  ratio {rate / git_rate:4.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
