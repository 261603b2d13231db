"""The pure parsers, checked on real records of the shared datasets and on hand-made quirks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ingest_real_lines import RealLine

from dataplatform.contracts import CommitRecord, QuarantinedRecord
from dataplatform.ingest.parser import (
    TimestampError,
    local_time,
    parse_dataset_line,
    parse_git_offset,
    parse_git_raw_date,
    parse_iso_timestamp,
)

FindLine = Callable[[str], RealLine]


def parse_ok(line: bytes | str, position: int = 1) -> CommitRecord:
    record = parse_dataset_line(line, "test.jsonl", position)
    assert isinstance(record, CommitRecord), record
    return record


def parse_bad(line: bytes | str, position: int = 7) -> QuarantinedRecord:
    record = parse_dataset_line(line, "test.jsonl", position)
    assert isinstance(record, QuarantinedRecord), record
    assert record.source == "test.jsonl"
    assert record.position == position
    assert "\x00" not in record.raw
    return record


def edited(line: RealLine, **changes: Any) -> bytes:
    """The real line with some fields replaced (re-serialised like the datasets: raw UTF-8)."""
    obj = line.obj
    obj.update(changes)
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def without(line: RealLine, key: str) -> bytes:
    obj = line.obj
    del obj[key]
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


# --- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "minutes"),
    [("+0000", 0), ("-0000", 0), ("+0545", 345), ("-0500", -300), ("+1400", 840)],
)
def test_git_offset_valid(tz: str, minutes: int) -> None:
    assert parse_git_offset(tz) == minutes


@pytest.mark.parametrize("tz", ["+51800", "+051800", "+0575", "0545", "+05:45", "", "+2400"])
def test_git_offset_malformed_is_none(tz: str) -> None:
    assert parse_git_offset(tz) is None


def test_git_raw_date_keeps_the_instant_of_a_malformed_offset() -> None:
    at, offset = parse_git_raw_date("1313584730 +51800")
    assert at == datetime(2011, 8, 17, 12, 38, 50, tzinfo=UTC)
    assert offset is None


def test_git_raw_date_invalid_raises() -> None:
    with pytest.raises(TimestampError):
        parse_git_raw_date("yesterday +0000")


def test_iso_malformed_offset_recovers_the_true_instant() -> None:
    at, offset = parse_iso_timestamp("2011-09-08T02:38:50+518:00")
    assert at.timestamp() == 1313584730
    assert at.tzinfo is UTC
    assert offset is None


@pytest.mark.parametrize(
    ("value", "expected", "minutes"),
    [
        ("2019-07-29T18:05:12+05:45", datetime(2019, 7, 29, 12, 20, 12, tzinfo=UTC), 345),
        ("2011-02-13T13:41:18-05:00", datetime(2011, 2, 13, 18, 41, 18, tzinfo=UTC), -300),
        ("2020-01-01T00:00:00Z", datetime(2020, 1, 1, tzinfo=UTC), 0),
        ("2020-01-01T00:00:00+0530", datetime(2019, 12, 31, 18, 30, tzinfo=UTC), 330),
    ],
)
def test_iso_valid(value: str, expected: datetime, minutes: int) -> None:
    assert parse_iso_timestamp(value) == (expected, minutes)


@pytest.mark.parametrize(
    "value", ["2020-01-01T00:00:00", "2020-13-01T00:00:00+00:00", "not a date", "", "+05:45"]
)
def test_iso_invalid_raises(value: str) -> None:
    with pytest.raises(TimestampError):
        parse_iso_timestamp(value)


# --- real records with quirks -----------------------------------------------------------------


def test_requests_malformed_offset_051800(real_line: FindLine) -> None:
    line = real_line("5e6ecdad9f69b1ff789a17733b8edc6fd7091bd8")
    assert line.obj["author_time"] == "2011-09-08T02:38:50+518:00"
    record = parse_ok(line.raw)
    assert record.repo == "psf/requests"
    assert record.authored_at == datetime.fromtimestamp(1313584730, UTC)
    assert record.committed_at == datetime.fromtimestamp(1313584730, UTC)
    assert record.authored_at.tzinfo is UTC
    assert record.author_utc_offset_minutes is None
    assert record.committer_utc_offset_minutes is None


@pytest.mark.parametrize("sha", ["23f11aaa8d", "6dac39dbca"])
def test_nepal_offset_0545(real_line: FindLine, sha: str) -> None:
    line = real_line(sha)
    record = parse_ok(line.raw)
    assert line.obj["author_time"].endswith("+05:45")
    assert record.author_utc_offset_minutes == 345
    # Back in the author's offset, the wall clock is exactly what the dataset says.
    local = local_time(record.authored_at, record.author_utc_offset_minutes)
    assert local.isoformat() == line.obj["author_time"]
    assert record.authored_at.utcoffset() == timedelta(0)


def test_16k_character_message_kept_whole(real_line: FindLine) -> None:
    line = real_line("0976185af9")
    record = parse_ok(line.raw)
    assert record.message == line.obj["message"]
    assert len(record.message) == 16902
    assert len(record.message.encode()) == 17575


@pytest.mark.parametrize(
    ("sha", "email"),
    [("2ba88eefb5", "C:\\Users\\cgrinds\\AppData\\Roaming\\The Bat!"), ("1723990aee", "=")],
)
def test_odd_emails_kept_as_recorded(real_line: FindLine, sha: str, email: str) -> None:
    record = parse_ok(real_line(sha).raw)
    assert record.author_email == email
    assert record.repo == "pallets/flask"


def test_empty_non_merge_commit(real_line: FindLine) -> None:
    record = parse_ok(real_line("7af0271f47").raw)
    assert record.parent_count == 1
    assert not record.is_merge_commit
    assert (record.files_changed, record.lines_added, record.lines_deleted) == (0, 0, 0)


def test_field_mapping_of_a_real_record(real_line: FindLine) -> None:
    line = real_line("1f6589ec3a1ee910f9a65cc3ceac60b26677bc0e")  # requests HEAD
    obj = line.obj
    record = parse_ok(line.raw)
    assert record.commit_sha == obj["sha"]
    assert record.author_name == "dependabot[bot]"
    assert (record.files_changed, record.lines_added, record.lines_deleted) == (
        obj["files_changed"],
        obj["insertions"],
        obj["deletions"],
    )
    assert record.parent_shas is None
    assert record.committer_name is None
    assert record.committer_email is None
    assert record.author_utc_offset_minutes == -360


def test_root_commits(real_lines: list[RealLine]) -> None:
    roots = [line for line in real_lines if line.obj["parent_count"] == 0]
    assert len(roots) == 4  # one per repository (README)
    for line in roots:
        record = parse_ok(line.raw)
        assert record.parent_count == 0
        assert not record.is_merge_commit
        assert record.files_changed == line.obj["files_changed"] > 0


def test_merges_have_no_numstat(real_lines: list[RealLine]) -> None:
    merges = [line for line in real_lines[:2000] if line.obj["parent_count"] == 2]
    assert merges
    for line in merges:
        record = parse_ok(line.raw)
        assert record.is_merge_commit
        assert (record.files_changed, record.lines_added, record.lines_deleted) == (0, 0, 0)


def test_clock_skew_committer_before_author(real_lines: list[RealLine]) -> None:
    skewed = []
    for line in real_lines:
        record = parse_ok(line.raw)
        if record.committed_at < record.authored_at:
            skewed.append(record)
    # README: committer time < author time in 1 + 0 + 4 + 2 commits.
    assert len(skewed) == 7
    assert all(r.committed_at.tzinfo is UTC for r in skewed)


def test_cr_and_emoji_messages_byte_for_byte(real_lines: list[RealLine]) -> None:
    with_cr = next(line for line in real_lines if "\r" in line.obj["message"])
    with_emoji = next(
        line for line in real_lines if any(ord(c) > 0xFFFF for c in line.obj["message"])
    )
    for line in (with_cr, with_emoji):
        record = parse_ok(line.raw)
        assert record.message == line.obj["message"]
    assert "\r" in parse_ok(with_cr.raw).message
    assert any(ord(c) > 0xFFFF for c in parse_ok(with_emoji.raw).message)


@pytest.mark.parametrize("sha", ["ca0d08eeda", "c4eb9301bb", "57ba337e79", "055f7c1eb6"])
def test_messages_with_leading_whitespace_are_not_stripped(real_line: FindLine, sha: str) -> None:
    # The README's "messages starting with whitespace/newline" in requests: 4, all a space.
    line = real_line(sha)
    record = parse_ok(line.raw)
    assert record.message == line.obj["message"]
    assert record.message[0].isspace()


# --- hand-made quirks (derived from a real line) -----------------------------------------------


@pytest.fixture
def base(real_line: FindLine) -> RealLine:
    return real_line("7af0271f47")  # flask, an ordinary-looking non-merge commit


def test_invalid_utf8_is_replaced_and_kept(base: RealLine) -> None:
    raw = edited(base, message="caf\x00PLACEHOLDER\n").replace(
        b"\\u0000PLACEHOLDER", b"\xe9 \xff\xfe ok"
    )
    record = parse_ok(raw)
    assert record.message == "caf\ufffd \ufffd\ufffd ok\n"
    assert record.commit_sha == base.obj["sha"]


def test_str_and_bytes_give_the_same_record(base: RealLine) -> None:
    assert parse_ok(base.raw) == parse_ok(base.raw.decode("utf-8"))


def test_trailing_newline_of_the_line_is_ignored(base: RealLine) -> None:
    assert parse_ok(base.raw + b"\n") == parse_ok(base.raw)


@pytest.mark.parametrize(
    "message",
    ["", "x" * 44 * 1024, "\nleading newline", "crlf\r\nbody\r\n", "📝 docs", "a\u2028b\x85c"],
)
def test_unusual_but_valid_messages_kept(base: RealLine, message: str) -> None:
    assert parse_ok(edited(base, message=message)).message == message


@pytest.mark.parametrize("email", ["", "no-at-sign", "=", "  spaced  "])
def test_unusual_emails_kept(base: RealLine, email: str) -> None:
    assert parse_ok(edited(base, author_email=email)).author_email == email


def test_octopus_merge_is_valid(base: RealLine) -> None:
    record = parse_ok(edited(base, parent_count=3, files_changed=0, insertions=0, deletions=0))
    assert record.parent_count == 3
    assert record.is_merge_commit


def test_lone_surrogate_escape_becomes_replacement_char(base: RealLine) -> None:
    raw = edited(base, message="PLACEHOLDER").replace(b"PLACEHOLDER", b"bad \\udcff end")
    assert parse_ok(raw).message == "bad \ufffd end"


def test_nul_in_message_is_quarantined(base: RealLine) -> None:
    bad = parse_bad(edited(base, message="a\x00b"))
    assert "NUL" in bad.reason
    assert bad.commit_sha == base.obj["sha"]
    assert bad.repo == "pallets/flask"


def test_bad_json_is_quarantined_with_the_raw_text(base: RealLine) -> None:
    truncated = base.raw[:-10]
    bad = parse_bad(truncated)
    assert bad.reason.startswith("invalid JSON")
    assert bad.raw == truncated.decode("utf-8")
    assert bad.commit_sha is None


def test_raw_bytes_nul_and_invalid_utf8_in_quarantine_payload(base: RealLine) -> None:
    bad = parse_bad(b"\xff\x00{")
    assert bad.raw == "\ufffd\ufffd{"


@pytest.mark.parametrize("key", ["sha", "repo", "author_time", "message", "insertions"])
def test_missing_field_is_quarantined(base: RealLine, key: str) -> None:
    bad = parse_bad(without(base, key))
    assert bad.reason == f"missing field(s): {key}"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"insertions": "1"}, "field 'insertions' must be an integer, got str"),
        ({"deletions": True}, "field 'deletions' must be an integer, got bool"),
        ({"files_changed": 1.0}, "field 'files_changed' must be an integer, got float"),
        ({"parent_count": -1}, "field 'parent_count' out of range: -1"),
        ({"insertions": 2**31}, "field 'insertions' out of range: 2147483648"),
        ({"message": None}, "field 'message' must be a string, got null"),
        ({"author_name": 5}, "field 'author_name' must be a string, got int"),
        ({"sha": "abc"}, "invalid commit sha 'abc' (want 40 lowercase hex)"),
        ({"sha": "7AF0271F4703A71BEEF8E26D1F5F6F8DA04100E6"}, "invalid commit sha"),
        ({"repo": "flask"}, "invalid repo 'flask' (want 'owner/name')"),
        ({"repo": "a/b/c"}, "invalid repo"),
        ({"author_time": "yesterday"}, "not an ISO 8601 timestamp with offset: 'yesterday'"),
        ({"committer_time": "2011-02-30T00:00:00+00:00"}, "invalid date/time"),
        ({"author_email": "a\x00b"}, "field 'author_email' contains a NUL character"),
    ],
)
def test_invalid_fields_are_quarantined(
    base: RealLine, changes: dict[str, Any], reason: str
) -> None:
    bad = parse_bad(edited(base, **changes))
    assert bad.reason.startswith(reason)
    assert bad.raw == edited(base, **changes).decode("utf-8").replace("\x00", "\ufffd")


@pytest.mark.parametrize("text", ["[]", "42", '"sha"', "null"])
def test_non_object_json_is_quarantined(text: str) -> None:
    assert parse_bad(text).reason.startswith("expected a JSON object")
