"""The pure `git log -z --numstat` stream parser, on hand-made byte streams."""

from __future__ import annotations

from datetime import UTC, datetime

from dataplatform.contracts import CommitRecord, QuarantinedRecord
from dataplatform.ingest.parser import ParsedRecord, parse_git_log_stream

SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "c" * 40
SHA_D = "d" * 40


def header(
    sha: str,
    parents: str,
    message: bytes,
    *,
    author_date: bytes = b"1313584730 +0545",
    committer_date: bytes = b"1313584790 -0500",
) -> bytes:
    fields = [
        sha.encode(),
        parents.encode(),
        b"Ann Author",
        b"ann@example.org",
        author_date,
        b"Cid Committer",
        b"cid@example.org",
        committer_date,
        message,
    ]
    return b"\x00".join(fields) + b"\x00"  # -z: git terminates each commit's text with NUL


# Exactly what `git log -z --numstat --format=tformat:<GIT_LOG_FORMAT>` prints (see git.py).
STREAM = (
    header(SHA_A, f"{SHA_B} {SHA_C}", b"Merge branch 'x'\n")  # merge: no numstat
    + header(SHA_B, SHA_D, b"rename + binary\n\nbody\r\n")
    + b"\n3\t1\tsrc/app.py\x00"
    + b"0\t0\t\x00old name.txt\x00new\tname.txt\x00"  # rename: paths follow as two tokens
    + b"-\t-\tlogo.png\x00"
    + header(SHA_C, SHA_D, b"")  # empty message, empty commit
    + header(SHA_D, "", b"root \xe9\xff\n", author_date=b"1313584730 +51800")
    + b"\n10\t0\tREADME\x00"
)


def parse(chunks: list[bytes]) -> list[ParsedRecord]:
    return list(parse_git_log_stream(chunks, repo="o/r", source="git:o/r"))


def test_whole_stream() -> None:
    merge, renamed, empty, root = parse([STREAM])
    assert isinstance(merge, CommitRecord)
    assert merge.parent_shas == (SHA_B, SHA_C)
    assert merge.is_merge_commit
    assert (merge.files_changed, merge.lines_added, merge.lines_deleted) == (0, 0, 0)
    assert merge.author_utc_offset_minutes == 345
    assert merge.committer_utc_offset_minutes == -300
    assert merge.authored_at == datetime(2011, 8, 17, 12, 38, 50, tzinfo=UTC)
    assert merge.committer_name == "Cid Committer"
    assert merge.committer_email == "cid@example.org"

    assert isinstance(renamed, CommitRecord)
    assert (renamed.files_changed, renamed.lines_added, renamed.lines_deleted) == (3, 3, 1)
    assert renamed.message == "rename + binary\n\nbody\r\n"

    assert isinstance(empty, CommitRecord)
    assert empty.message == ""
    assert empty.files_changed == 0
    assert empty.parent_count == 1

    assert isinstance(root, CommitRecord)
    assert root.parent_shas == ()
    assert root.parent_count == 0
    assert root.files_changed == 1
    assert root.lines_added == 10
    assert root.message == "root \ufffd\ufffd\n"
    assert root.author_utc_offset_minutes is None  # "+51800": psf/requests' +051800
    assert root.authored_at.timestamp() == 1313584730


def test_stream_cut_at_every_byte_gives_the_same_records() -> None:
    whole = parse([STREAM])
    assert parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == whole
    for size in (2, 3, 7, 64):
        assert parse([STREAM[i : i + size] for i in range(0, len(STREAM), size)]) == whole


def test_positions_are_stream_ordinals() -> None:
    records = list(parse_git_log_stream([STREAM], repo="o/r", source="s", start_position=10))
    assert all(isinstance(r, CommitRecord) for r in records)
    truncated = STREAM[: STREAM.index(SHA_C.encode() + b"\x00" + SHA_D.encode()) + 45]
    last = parse([truncated])[-1]
    assert isinstance(last, QuarantinedRecord)
    assert last.position == 3
    assert last.commit_sha == SHA_C


def test_truncated_stream_is_quarantined() -> None:
    cut = STREAM[: STREAM.rindex(b"Ann Author")]
    records = parse([cut])
    assert [type(r).__name__ for r in records] == ["CommitRecord"] * 3 + ["QuarantinedRecord"]
    last = records[-1]
    assert isinstance(last, QuarantinedRecord)
    assert last.reason.startswith("truncated git log record")
    assert last.commit_sha == SHA_D
    assert last.repo == "o/r"


def test_bad_date_and_bad_parent_are_quarantined_and_the_stream_goes_on() -> None:
    stream = (
        header(SHA_A, SHA_B, b"x", author_date=b"garbage +0000")
        + header(SHA_B, "not-a-sha", b"y")
        + header(SHA_C, "", b"z")
    )
    first, second, third = parse([stream])
    assert isinstance(first, QuarantinedRecord)
    assert "invalid git raw date" in first.reason
    assert '"author_date": "garbage +0000"' in first.raw
    assert isinstance(second, QuarantinedRecord)
    assert second.reason == "invalid parent sha 'not-a-sha'"
    assert isinstance(third, CommitRecord)


def test_empty_stream() -> None:
    assert parse([]) == []
    assert parse([b""]) == []
