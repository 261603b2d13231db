"""Fixtures for ingest tests: the real lines of the shared commit datasets, by sha."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from ingest_real_lines import RealLine

DATASETS_DIR = Path(
    os.environ.get(
        "DATAPLATFORM_COMMIT_DATASETS",
        str(Path(__file__).resolve().parents[3] / "data" / "commits"),
    )
)


@pytest.fixture(scope="session")
def real_lines() -> list[RealLine]:
    """Every line of the four shared dataset files (about 18k)."""
    files = sorted(DATASETS_DIR.glob("*.jsonl.gz"))
    if not files:
        pytest.skip(f"shared commit datasets not found in {DATASETS_DIR}")
    lines = []
    for path in files:
        with gzip.open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                lines.append(RealLine(path.name, number, raw.rstrip(b"\n")))
    return lines


@pytest.fixture(scope="session")
def real_line(real_lines: list[RealLine]) -> Callable[[str], RealLine]:
    """Look a real line up by (a unique prefix of) its sha."""
    by_sha = {json.loads(line.raw)["sha"]: line for line in real_lines}

    def find(prefix: str) -> RealLine:
        matches = [line for sha, line in by_sha.items() if sha.startswith(prefix)]
        assert len(matches) == 1, f"{prefix}: {len(matches)} matches in the shared datasets"
        return matches[0]

    return find
