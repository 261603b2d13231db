"""Real commit records (the shipped copy of the shared commit datasets), turned into mart rows."""

from __future__ import annotations

import gzip
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dataplatform.features import compute_features

# The repository's own copy first (CI), else the shared one; DATAPLATFORM_DATASETS overrides.
_REPO_COPY = Path(__file__).resolve().parents[3] / "data" / "commits"
DATASETS = (
    Path(os.environ["DATAPLATFORM_DATASETS"]) / "commits"
    if "DATAPLATFORM_DATASETS" in os.environ
    else _REPO_COPY
    if _REPO_COPY.is_dir()
    else Path(__file__).resolve().parents[3] / "data" / "commits"
)
_TIME = re.compile(r"^(.*T\d\d:\d\d:\d\d)([+-])(\d+):(\d\d)$")


def _instant(text: str) -> tuple[datetime, int | None]:
    # git prints requests' malformed `+051800` as `+518:00`: the instant is still local - offset;
    # only the offset itself is unusable (more than 14 h).
    match = _TIME.match(text)
    assert match, text
    minutes = (int(match[3]) * 60 + int(match[4])) * (1 if match[2] == "+" else -1)
    instant = (datetime.fromisoformat(match[1]) - timedelta(minutes=minutes)).replace(tzinfo=UTC)
    return instant, minutes if abs(minutes) <= 14 * 60 else None


def read_commits(*names: str) -> pd.DataFrame:
    """Commit fields (INPUT_COLUMNS + parent_count) of the named dataset files."""
    rows = []
    for name in names:
        path = DATASETS / f"{name}.jsonl.gz"
        if not path.exists():
            pytest.skip(f"dataset {path} not available")
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle.read().split("\n"):  # not splitlines(): U+2028 is not a line end
                if not line:
                    continue
                raw = json.loads(line)
                authored_at, offset = _instant(raw["author_time"])
                committed_at, _ = _instant(raw["committer_time"])
                rows.append(
                    {
                        "repo": raw["repo"],
                        "commit_sha": raw["sha"],
                        "message": raw["message"],
                        "author_name": raw["author_name"],
                        "authored_at": authored_at,
                        "author_utc_offset_minutes": offset,
                        "committed_at": committed_at,
                        "files_changed": raw["files_changed"],
                        "lines_added": raw["insertions"],
                        "lines_deleted": raw["deletions"],
                        "parent_count": raw["parent_count"],
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def merge_feature_frame() -> pd.DataFrame:
    """Mart rows of flask + requests (12,020 commits, ~28% merges)."""
    return compute_features(read_commits("pallets__flask", "psf__requests"))
