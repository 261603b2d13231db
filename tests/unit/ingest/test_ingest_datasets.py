"""Reading dataset files: gzip by magic bytes, LF-only splitting, checksum watermarks."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from dataplatform.contracts import CommitRecord, QuarantinedRecord, Watermark
from dataplatform.ingest.datasets import DatasetReader, iter_dataset, iter_dataset_lines
from dataplatform.ingest.errors import SourceError


def row(sha: str, repo: str = "o/r", when: str = "2020-01-01T00:00:00+00:00", **kw: Any) -> bytes:
    obj = {
        "sha": sha,
        "repo": repo,
        "author_name": "A",
        "author_email": "a@x",
        "author_time": when,
        "committer_time": when,
        "parent_count": 1,
        "message": "m",
        "files_changed": 1,
        "insertions": 2,
        "deletions": 3,
    }
    obj.update(kw)
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


ROWS = [
    row("1" * 40, message="line\u2028separator\x85next\x0cfeed\rcr\n"),
    row("2" * 40, repo="p/q", when="2021-01-01T00:00:00+00:00"),
    b"",  # blank line: not a record
    b"{not json",
    row("3" * 40, when="2019-01-01T00:00:00+05:45"),
    row("4" * 40, repo="p/q", when="2022-06-01T00:00:00-07:00"),
]
PAYLOAD = b"\n".join(ROWS) + b"\n"


@pytest.fixture(params=["gzip", "plain"])
def dataset(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    # Misleading extensions on purpose: the format is detected from the bytes.
    if request.param == "gzip":
        path = tmp_path / "commits.jsonl"
        path.write_bytes(gzip.compress(PAYLOAD))
    else:
        path = tmp_path / "commits.jsonl.gz"
        path.write_bytes(PAYLOAD)
    return path


def test_lines_split_on_lf_only(dataset: Path) -> None:
    lines = list(iter_dataset_lines(dataset))
    assert [n for n, _ in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[0][1] == ROWS[0]


def test_records_keep_unicode_separators_and_skip_blank_lines(dataset: Path) -> None:
    records = list(iter_dataset(dataset))
    assert len(records) == 5
    first = records[0]
    assert isinstance(first, CommitRecord)
    assert first.message == "line\u2028separator\x85next\x0cfeed\rcr\n"
    bad = records[2]
    assert isinstance(bad, QuarantinedRecord)
    assert bad.position == 4
    assert bad.raw == "{not json"
    assert bad.source == str(dataset)


def test_reader_watermarks_and_skip_when_checksum_seen(dataset: Path) -> None:
    reader = DatasetReader(dataset, source="ds")
    with pytest.raises(RuntimeError):
        reader.watermarks()
    assert len(list(reader.records({}))) == 5
    checksum = hashlib.sha256(dataset.read_bytes()).hexdigest()
    marks = reader.watermarks()
    assert set(marks) == {"o/r", "p/q"}
    assert marks["o/r"].head_sha == "1" * 40  # first (newest) sha of the file
    assert marks["p/q"].head_sha == "2" * 40
    assert marks["o/r"].source_checksum == checksum
    assert marks["o/r"].source == "ds"
    assert marks["p/q"].committed_at_max is not None
    assert marks["p/q"].committed_at_max.isoformat() == "2022-06-01T07:00:00+00:00"

    again = DatasetReader(dataset, source="ds")
    assert list(again.records(marks)) == []
    assert again.watermarks() == marks


def test_changed_file_is_read_again(dataset: Path, tmp_path: Path) -> None:
    old = Watermark(repo="o/r", source="ds", head_sha="1" * 40, source_checksum="0" * 64)
    reader = DatasetReader(dataset)
    assert len(list(reader.records({"o/r": old}))) == 5


def test_truncated_gzip_raises_source_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(PAYLOAD * 50)[:-30])
    with pytest.raises(SourceError, match="cannot read dataset"):
        list(iter_dataset(path))
