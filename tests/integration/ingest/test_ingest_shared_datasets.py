"""The four shared commit datasets parse completely, with the README's counts and checksums."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from dataplatform.config import Settings
from dataplatform.contracts import CommitRecord
from dataplatform.ingest.sources import DatasetSource, resolve_source

DATASETS_DIR = Path(
    os.environ.get(
        "DATAPLATFORM_COMMIT_DATASETS",
        str(Path(__file__).resolve().parents[3] / "data" / "commits"),
    )
)

# From the datasets' README: file → (repo, commits, merges, HEAD sha, sha256 of the file).
EXPECTED = {
    "pallets__flask.jsonl.gz": (
        "pallets/flask", 5531, 1725, "2ac89889f4cc330eabd50f295dcef02828522c69",
        "53d69afb5f9fc130f75c4624463a65f15e0db0803f2e5c67f29e8a5823d1a51a",
    ),
    "psf__requests.jsonl.gz": (
        "psf/requests", 6489, 1612, "1f6589ec3a1ee910f9a65cc3ceac60b26677bc0e",
        "92f8826d991997a861196b0c3ae8951b4e33990e8e6417e5bcf96071980f68ec",
    ),
    "encode__httpx.jsonl.gz": (
        "encode/httpx", 1522, 41, "ae1b9f66238f75ced3ced5e4485408435de10768",
        "7758765db3f33ccb1b107d275556b56a956ab9d8e0e62aef4e00aca099f3d44e",
    ),
    "tiangolo__fastapi.jsonl.gz": (
        "tiangolo/fastapi", 4477, 7, "6d9dc39fcb3eb3bcd9c2a693683d68311d1618e0",
        "38e9f5185ad7e739fb4e5269b222953c4438df698275a60b9b300469be4b27da",
    ),
}  # fmt: skip


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_shared_dataset_parses_completely(file_name: str, tmp_path: Path) -> None:
    path = DATASETS_DIR / file_name
    if not path.exists():
        pytest.skip(f"{path} not present")
    repo, count, merges, head, checksum = EXPECTED[file_name]
    source = resolve_source(str(path), Settings(home=tmp_path))
    assert isinstance(source, DatasetSource)
    records = list(source.iter_records({}))
    assert all(isinstance(r, CommitRecord) for r in records)  # 0 quarantined
    commits = [r for r in records if isinstance(r, CommitRecord)]
    assert len(commits) == count
    assert sum(r.is_merge_commit for r in commits) == merges
    assert {r.repo for r in commits} == {repo}
    assert all(
        r.authored_at.tzinfo is not None and r.authored_at.utcoffset() == r.committed_at.utcoffset()
        for r in commits
    )

    # Text and numbers byte-for-byte what the file says, for every line.
    with gzip.open(path, "rb") as fh:
        for record, line in zip(commits, fh, strict=True):
            obj = json.loads(line)
            assert record.commit_sha == obj["sha"]
            assert record.message == obj["message"]
            assert record.author_name == obj["author_name"]
            assert record.author_email == obj["author_email"]
            assert record.lines_added == obj["insertions"]
            assert record.lines_deleted == obj["deletions"]

    marks = source.watermarks()
    assert set(marks) == {repo}
    assert marks[repo].head_sha == head
    assert marks[repo].source_checksum == checksum
    assert marks[repo].committed_at_max == max(r.committed_at for r in commits)

    # Same file again with the stored watermark: nothing to do.
    assert list(source.iter_records(marks)) == []
