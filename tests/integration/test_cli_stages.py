"""The CLI's stage verbs one by one, in-process, on a fresh home: ingest → load → transform →
train, with a malformed record quarantined (kept with its reason) and a git clone URL source."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from dataplatform.cli import app

REPO_ROOT = Path(__file__).resolve().parents[2]
HTTPX = REPO_ROOT / "data" / "commits" / "encode__httpx.jsonl.gz"
FLASK = REPO_ROOT / "data" / "commits" / "pallets__flask.jsonl.gz"

pytestmark = pytest.mark.slow


def _invoke(home: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--home", str(home), *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _count(home: Path, sql: str) -> int:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def test_stage_verbs_with_a_malformed_record(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dataset = tmp_path / "httpx-with-a-bad-line.jsonl.gz"
    lines = gzip.decompress(HTTPX.read_bytes()).split(b"\n")
    lines.insert(5, b'{"sha": "not-a-sha", "repo": "encode/httpx"}')
    dataset.write_bytes(gzip.compress(b"\n".join(lines)))

    out = _invoke(home, "ingest", str(dataset), str(FLASK))
    assert "ingested 7,053 new rows, quarantined 1" in out
    out = _invoke(home, "load")
    assert "7,053 rows inserted" in out
    assert _count(home, "SELECT count(*) FROM raw.commits") == 7053
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    quarantined = con.execute("SELECT reason, raw FROM raw.commit_quarantine").fetchall()
    con.close()
    assert len(quarantined) == 1
    reason, raw = quarantined[0]
    assert "not-a-sha" in raw
    assert reason

    assert "loaded 0 batch(es)" in _invoke(home, "load")  # a second load changes nothing
    assert _count(home, "SELECT count(*) FROM raw.commits") == 7053

    out = _invoke(home, "transform")
    assert "0 failed" in out
    assert _count(home, "SELECT count(*) FROM analytics.commit_features") == 7053

    out = _invoke(home, "train")
    assert "registered commit-classifier version 1 (v1.0.0)" in out
    assert "rule baseline" in out


def test_ingest_a_clone_url_incrementally(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    subprocess.run(["git", "init", "-q", "-b", "main", str(origin)], check=True)

    def commit(message: str) -> None:
        (origin / "file.txt").write_text(message)
        subprocess.run(["git", "-C", str(origin), "add", "file.txt"], check=True)
        subprocess.run(
            ["git", "-C", str(origin), "-c", "user.name=T", "-c", "user.email=t@example.org",
             "commit", "-q", "-m", message],
            check=True,
        )  # fmt: skip

    commit("first")
    commit("second")
    home = tmp_path / "home"
    url = origin.as_uri()
    assert "ingested 2 new rows" in _invoke(home, "ingest", url)
    assert "ingested 0 new rows" in _invoke(home, "ingest", url)
    commit("third")
    assert "ingested 1 new rows" in _invoke(home, "ingest", url)
    _invoke(home, "load")
    assert _count(home, "SELECT count(*) FROM raw.commits") == 3
