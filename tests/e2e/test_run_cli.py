"""`dataplatform run` as a user runs it: a fresh home, the shipped sample data, twice.

The second run must ingest 0 new rows and leave every warehouse table's row count unchanged.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

SAMPLE_COMMITS = 18_019  # sum of the four shipped datasets (data/commits/README.md)


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATAPLATFORM_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "dataplatform", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _counts(home: Path) -> dict[str, int]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'analytics', 'registry', 'monitoring')"
        ).fetchall()
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for (t,) in tables}
    finally:
        con.close()


def test_run_twice_is_idempotent_and_summarises(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _run(home, "run")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    assert f"{SAMPLE_COMMITS:,} rows ingested, 0 quarantined" in out
    assert f"{SAMPLE_COMMITS:,} rows loaded into raw.commits" in out
    assert re.search(r"\d+ dbt models built, \d+ tests passed, 0 failed", out)
    assert re.search(r"commit-classifier.*version 1", out)
    assert "rule baseline" in out
    assert "mlflow ui --backend-store-uri sqlite:///" in out
    counts = _counts(home)
    assert counts["raw.commits"] == SAMPLE_COMMITS
    assert counts["analytics.commit_features"] == SAMPLE_COMMITS
    assert counts["analytics.dim_repositories"] == 4

    second = _run(home, "run")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "0 rows ingested, 0 quarantined" in second.stdout
    assert "0 rows loaded into raw.commits" in second.stdout
    assert _counts(home) == counts


def test_run_reports_a_missing_source_clearly(tmp_path: Path) -> None:
    result = _run(tmp_path / "home", "run", str(tmp_path / "does-not-exist"))
    assert result.returncode == 1
    assert "no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr
