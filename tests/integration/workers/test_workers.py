"""Four worker processes ingest eight real git repositories into PostgreSQL; one is killed with
SIGKILL while it holds an item. Every commit must land exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from dataplatform.config import get_settings
from dataplatform.workers.cli import worker_app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N_REPOS = 8
N_WORKERS = 4
LEASE_SECONDS = 3


def make_repo(path: Path, commits: int, seed: int) -> set[str]:
    """A real git repository with `commits` commits (one merge every 10) via git fast-import;
    returns the sha of every commit."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=seed)
    lines: list[str] = []
    for n in range(1, commits + 1):
        when = int((start + timedelta(hours=n)).timestamp())
        body = f"repo {seed} change {n}\n" * (n % 5 + 1)
        message = f"Change {n} of repo {seed}\n\nFixes #{n}\n"
        lines += [
            "commit refs/heads/main",
            f"mark :{n}",
            f"author Dev {seed} <dev{seed}@example.com> {when} +0100",
            f"committer Dev {seed} <dev{seed}@example.com> {when} +0100",
            f"data {len(message.encode())}",
            message,
        ]
        if n > 1:
            lines.append(f"from :{n - 1}")
        if n % 10 == 0 and n > 2:
            lines.append(f"merge :{n - 2}")
        lines += [f"M 100644 inline file{n % 3}.txt", f"data {len(body.encode())}", body]
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=stream.encode(), check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=path, check=True)
    out = subprocess.run(
        ["git", "rev-list", "--all"], cwd=path, capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


def _running_owners(conninfo: str) -> list[tuple[int, str]]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT item_id, lease_owner FROM raw.ingest_queue WHERE status = 'running'"
        ).fetchall()
    return [(int(item_id), str(owner)) for item_id, owner in rows]


def test_four_workers_one_killed_lose_and_double_nothing(
    pg_db: dict[str, Any], tmp_path: Path
) -> None:
    expected: set[tuple[str, str]] = set()
    repos = []
    for i in range(N_REPOS):
        path = tmp_path / "repos" / f"service-{i}"
        shas = make_repo(path, commits=30 + 3 * i, seed=i)
        expected |= {(f"local/service-{i}", sha) for sha in shas}
        repos.append(str(path))

    config = {
        "profile": "dev",
        "home": str(tmp_path / "home"),
        "object_store_uri": str(tmp_path / "objects"),
        "warehouse_backend": "postgres",
        "postgres_host": pg_db["host"],
        "postgres_port": str(pg_db["port"]),
        "postgres_db": pg_db["dbname"],
        "postgres_user": pg_db["user"],
        "postgres_password": pg_db["password"],
        "postgres_sslmode": "disable",
    }
    # The workers are separate processes: they get the same settings through the environment.
    env = {**os.environ, **{f"DATAPLATFORM_{k.upper()}": v for k, v in config.items()}}
    settings = get_settings(**config)
    queued = CliRunner().invoke(worker_app, ["enqueue", *repos], obj=settings)
    assert queued.exit_code == 0, queued.output
    assert f"queued {N_REPOS} of {N_REPOS}" in queued.output

    conninfo = settings.postgres_conninfo()
    cmd = [
        sys.executable,
        "-m",
        "dataplatform.workers",
        "work",
        "--lease-seconds",
        str(LEASE_SECONDS),
        "--poll-seconds",
        "0.2",
    ]
    logs = [open(tmp_path / f"worker-{n}.log", "w") for n in range(N_WORKERS)]  # noqa: SIM115
    workers = [subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    by_pid = {p.pid: p for p in workers}
    try:
        # Kill (SIGKILL: no cleanup at all) the first worker seen holding an item.
        victim: subprocess.Popen[bytes] | None = None
        killed_item = None
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline:
            for item_id, owner in _running_owners(conninfo):
                pid = int(owner.split(":")[1])
                if pid in by_pid:
                    os.kill(pid, signal.SIGKILL)
                    victim, killed_item, killed_owner = by_pid[pid], item_id, owner
                    break
            else:
                time.sleep(0.05)
        assert victim is not None, "no worker was ever seen holding an item"
        for proc in workers:
            proc.wait(timeout=240)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()

    outputs = {p.pid: (tmp_path / f"worker-{n}.log").read_text() for n, p in enumerate(workers)}
    assert victim.returncode == -signal.SIGKILL
    for proc in workers:
        if proc is not victim:
            assert proc.returncode == 0, outputs[proc.pid]

    with psycopg.connect(conninfo) as conn:
        loaded = conn.execute("SELECT repo, commit_sha FROM raw.commits").fetchall()
        queue = conn.execute(
            "SELECT item_id, status, attempts, lease_owner FROM raw.ingest_queue"
        ).fetchall()
        inserted_by_batches = conn.execute(
            "SELECT sum(rows_inserted) FROM raw.ingest_batches"
        ).fetchone()
    # 0 duplicates, 0 lost: exactly the commits of the eight repositories.
    assert len(loaded) == len(set(loaded))
    assert set(loaded) == expected
    assert inserted_by_batches is not None
    assert inserted_by_batches[0] == len(expected)
    statuses = {item_id: (status, attempts, owner) for item_id, status, attempts, owner in queue}
    assert len(statuses) == N_REPOS
    assert all(status == "done" for status, _, _ in statuses.values()), statuses
    # The killed worker's item was taken over by another worker once its lease expired.
    _status, attempts, owner = statuses[killed_item]
    assert attempts >= 2
    assert owner != killed_owner
    assert any(f"item {killed_item} " in text for text in outputs.values() if text)
