"""Pure parsers: timestamps, commit-dataset lines and the `git log` stream → `CommitRecord`.

Nothing here touches the file system or starts a process. Every malformed input comes out as a
`QuarantinedRecord` with a reason; only programming errors raise.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from dataplatform.contracts import CommitRecord, QuarantinedRecord

ParsedRecord = CommitRecord | QuarantinedRecord

INT32_MAX = 2**31 - 1  # COMMIT_SCHEMA stores counts as int32

_HEX_DIGITS = "0123456789abcdef"
_REPO_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_ISO_RE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<hours>\d+)(?::(?P<minutes>\d+))?)\Z",
    re.ASCII,
)

# Dataset fields: name → (CommitRecord attribute or None, expected type).
_DATASET_INT_FIELDS = {
    "parent_count": "parent_count",
    "files_changed": "files_changed",
    "insertions": "lines_added",
    "deletions": "lines_deleted",
}
_DATASET_STR_FIELDS = (
    "sha",
    "repo",
    "author_name",
    "author_email",
    "author_time",
    "committer_time",
    "message",
)


class TimestampError(ValueError):
    """A timestamp whose instant cannot be recovered."""


# --- timestamps ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # a history holds few distinct offsets
def parse_git_offset(tz: str) -> int | None:
    """Minutes east of UTC for a git ``±HHMM`` offset; None when malformed (e.g. ``+51800``)."""
    if len(tz) != 5 or tz[0] not in "+-" or not tz[1:].isascii() or not tz[1:].isdigit():
        return None
    hours, minutes = int(tz[1:3]), int(tz[3:5])
    if hours > 23 or minutes > 59:
        return None
    total = hours * 60 + minutes
    return -total if tz[0] == "-" else total


def parse_git_raw_date(value: str) -> tuple[datetime, int | None]:
    """``"<unix seconds> <±HHMM>"`` (``--date=raw``) → (UTC instant, offset minutes or None).

    The instant is the unix time, which git stores verbatim even when the offset next to it is
    malformed (psf/requests' ``+051800`` comes out as ``+51800``); only the offset becomes None.
    """
    seconds_text, _, tz = value.strip().partition(" ")
    try:
        at = datetime.fromtimestamp(int(seconds_text), UTC)
    except (ValueError, OverflowError, OSError) as exc:  # OSError: outside the C library's range
        raise TimestampError(f"invalid git raw date {value!r}") from exc
    return at, parse_git_offset(tz.strip())


def parse_iso_timestamp(value: str) -> tuple[datetime, int | None]:
    """ISO 8601 with an offset (``%aI``) → (UTC instant, offset minutes or None).

    git renders a malformed raw offset such as ``+051800`` as ``+518:00`` (hours = n // 100).
    That is not valid ISO, but local time minus the stated offset is still the true instant,
    so it is recovered and the offset is reported as None (malformed).
    """
    match = _ISO_RE.match(value.strip())
    if match is None:
        raise TimestampError(f"not an ISO 8601 timestamp with offset: {value!r}")
    try:
        local = datetime.fromisoformat(f"{match['date']}T{match['time']}")
    except ValueError as exc:
        raise TimestampError(f"invalid date/time in {value!r}: {exc}") from exc
    if match["z"]:
        return local.replace(tzinfo=UTC), 0
    hours_text, minutes_text = match["hours"], match["minutes"]
    if minutes_text is None:  # "+HHMM" or git-style "+HHHMM" without a colon
        if len(hours_text) < 3:
            raise TimestampError(f"invalid UTC offset in {value!r}")
        hours_text, minutes_text = hours_text[:-2], hours_text[-2:]
    hours, minutes = int(hours_text), int(minutes_text)
    total = hours * 60 + minutes
    if match["sign"] == "-":
        total = -total
    well_formed = len(hours_text) == 2 and len(minutes_text) == 2 and hours < 24 and minutes < 60
    try:
        at = (local - timedelta(minutes=total)).replace(tzinfo=UTC)
    except OverflowError as exc:
        raise TimestampError(f"UTC offset out of range in {value!r}") from exc
    return at, total if well_formed else None


def format_offset(minutes: int | None) -> str:
    """Offset minutes → ``±HH:MM`` (``+00:00`` when None)."""
    if minutes is None:
        return "+00:00"
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def local_time(at: datetime, offset_minutes: int | None) -> datetime:
    """The wall-clock time of `at` in the recorded offset (UTC when the offset is None)."""
    if offset_minutes is None:
        return at.astimezone(UTC)
    return at.astimezone(timezone(timedelta(minutes=offset_minutes)))


# --- text helpers ----------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-8 → str, invalid bytes replaced by U+FFFD (what git does when it re-encodes)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


def _fix_surrogates(text: str) -> str:
    # json.loads accepts escaped lone surrogates ("\udcff"); they cannot be stored as UTF-8.
    return _SURROGATE_RE.sub("\ufffd", text) if _SURROGATE_RE.search(text) else text


def _raw_payload(text: str) -> str:
    # Quarantine payloads go to text columns; PostgreSQL text cannot hold NUL.
    return _fix_surrogates(text).replace("\x00", "\ufffd")


def _valid_sha(value: object) -> str | None:
    return value if isinstance(value, str) and _is_sha(value) else None


def _is_sha(text: str) -> bool:
    # `strip` leaves something behind iff a character is not a lowercase hex digit.
    return len(text) == 40 and not text.strip(_HEX_DIGITS)


def _valid_repo(value: object) -> str | None:
    return value if isinstance(value, str) and _REPO_RE.match(value) else None


def is_valid_repo_name(value: str) -> bool:
    """True for ``owner/name`` made of letters, digits, ``_``, ``.`` and ``-``."""
    return _REPO_RE.match(value) is not None


# --- datasets --------------------------------------------------------------------------------


def parse_dataset_line(line: bytes | str, source: str, position: int) -> ParsedRecord:
    """One JSON Lines row of a commit dataset → `CommitRecord`, or `QuarantinedRecord` + reason.

    Invalid UTF-8 is replaced by U+FFFD and the record kept (as git would show it); anything
    structurally wrong (bad JSON, missing or mistyped field, bad sha, NUL in text, unparsable
    timestamp) is quarantined with the raw payload.
    """
    if isinstance(line, bytes):
        text = decode_text(line[:-1] if line.endswith(b"\n") else line)
    else:
        text = line[:-1] if line.endswith("\n") else line

    def quarantine(reason: str, obj: dict[str, Any] | None = None) -> QuarantinedRecord:
        return QuarantinedRecord(
            source=source,
            position=position,
            reason=reason,
            raw=_raw_payload(text),
            repo=_valid_repo(obj.get("repo")) if obj else None,
            commit_sha=_valid_sha(obj.get("sha")) if obj else None,
        )

    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return quarantine(f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        return quarantine(f"expected a JSON object, got {type(obj).__name__}")

    missing = [k for k in (*_DATASET_STR_FIELDS, *_DATASET_INT_FIELDS) if k not in obj]
    if missing:
        return quarantine("missing field(s): " + ", ".join(missing), obj)
    for key in _DATASET_STR_FIELDS:
        if not isinstance(obj[key], str):
            return quarantine(f"field {key!r} must be a string, got {_type_name(obj[key])}", obj)
    counts: dict[str, int] = {}
    for key, attr in _DATASET_INT_FIELDS.items():
        value = obj[key]
        if type(value) is not int:  # bool is an int subclass: refuse it too
            return quarantine(f"field {key!r} must be an integer, got {_type_name(value)}", obj)
        if not 0 <= value <= INT32_MAX:
            return quarantine(f"field {key!r} out of range: {value}", obj)
        counts[attr] = value

    sha: str = obj["sha"]
    if _valid_sha(sha) is None:
        return quarantine(f"invalid commit sha {sha[:80]!r} (want 40 lowercase hex)", obj)
    repo: str = obj["repo"]
    if _valid_repo(repo) is None:
        return quarantine(f"invalid repo {repo[:80]!r} (want 'owner/name')", obj)
    strings = {key: _fix_surrogates(obj[key]) for key in _DATASET_STR_FIELDS}
    for key in ("author_name", "author_email", "message"):
        if "\x00" in strings[key]:
            return quarantine(f"field {key!r} contains a NUL character", obj)
    try:
        authored_at, author_offset = parse_iso_timestamp(strings["author_time"])
        committed_at, committer_offset = parse_iso_timestamp(strings["committer_time"])
    except TimestampError as exc:
        return quarantine(str(exc), obj)

    return CommitRecord(
        repo=repo,
        commit_sha=sha,
        parent_shas=None,
        parent_count=counts["parent_count"],
        author_name=strings["author_name"],
        author_email=strings["author_email"],
        committer_name=None,
        committer_email=None,
        authored_at=authored_at,
        author_utc_offset_minutes=author_offset,
        committed_at=committed_at,
        committer_utc_offset_minutes=committer_offset,
        message=strings["message"],
        files_changed=counts["files_changed"],
        lines_added=counts["lines_added"],
        lines_deleted=counts["lines_deleted"],
    )


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


# --- git log stream --------------------------------------------------------------------------

# One commit = these NUL-separated header fields, the message (%B, which cannot contain NUL),
# git's own NUL terminator (`-z`), then zero or more NUL-terminated `--numstat` entries.
GIT_LOG_FIELDS = ("%H", "%P", "%an", "%ae", "%ad", "%cn", "%ce", "%cd", "%B")
GIT_LOG_FORMAT = "%x00".join(GIT_LOG_FIELDS)
_HEADER_LEN = len(GIT_LOG_FIELDS)
_FIELD_NAMES = (
    "commit_sha",
    "parent_shas",
    "author_name",
    "author_email",
    "author_date",
    "committer_name",
    "committer_email",
    "committer_date",
    "message",
)


def parse_git_log_stream(
    chunks: Iterable[bytes], *, repo: str, source: str, start_position: int = 1
) -> Iterator[ParsedRecord]:
    """``git log -z --numstat --date=raw --format=GIT_LOG_FORMAT`` output → records, streamed.

    `chunks` may split the stream anywhere; see `GitLogParser` for the rules.
    """
    parser = GitLogParser(repo=repo, source=source, start_position=start_position)
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.finish()


class GitLogParser:
    """Push parser of the ``git log -z --numstat`` stream: `feed` chunks cut anywhere, `finish`.

    Merges carry no numstat (git's default), so their counts are 0; binary files count 1 file
    and 0 lines; a rename is one entry whose two paths follow as separate tokens. `position` is
    the 1-based ordinal of the commit in the stream (from `start_position`). ``git diff-tree
    --stdin --always`` with the same options prints the same stream for the commits it is fed.
    """

    def __init__(self, *, repo: str, source: str, start_position: int = 1) -> None:
        self.repo = repo
        self.source = source
        self.position = start_position  # of the commit being read
        self._carry = b""
        self._header: list[bytes] = []
        self._files = self._added = self._deleted = self._skip_paths = 0

    def feed(self, chunk: bytes) -> list[ParsedRecord]:
        """The records completed by `chunk` (the last one waits for the next commit or EOF)."""
        if not chunk:
            return []
        tokens = (self._carry + chunk).split(b"\x00") if self._carry else chunk.split(b"\x00")
        self._carry = tokens.pop()
        return self._consume(tokens)

    def finish(self) -> list[ParsedRecord]:
        """The last record, once the stream has ended (a cut-off one comes out quarantined)."""
        out = self._consume([self._carry]) if self._carry else []
        self._carry = b""
        if self._header:
            out.append(
                build_git_record(
                    self._header,
                    self._files,
                    self._added,
                    self._deleted,
                    self.repo,
                    self.source,
                    self.position,
                )
            )
            self.position += 1
        self._header = []
        self._files = self._added = self._deleted = self._skip_paths = 0
        return out

    def _consume(self, tokens: list[bytes]) -> list[ParsedRecord]:
        # The hot loop of ingestion: state in locals, `_numstat` inlined.
        out: list[ParsedRecord] = []
        header = self._header
        files, added, deleted = self._files, self._added, self._deleted
        skip_paths = self._skip_paths
        position = self.position
        repo, source = self.repo, self.source
        header_len = _HEADER_LEN
        for token in tokens:
            if len(header) < header_len:
                header.append(token)
                continue
            if skip_paths:
                skip_paths -= 1
                continue
            entry = token[1:] if token[:1] == b"\n" else token
            first, sep, rest = entry.partition(b"\t")
            if sep:
                second, sep, path = rest.partition(b"\t")
                if sep and (
                    (first == b"-" and second == b"-") or (first.isdigit() and second.isdigit())
                ):
                    files += 1
                    if first != b"-":  # binary files ("-\t-") count 1 file and 0 lines
                        added += int(first)
                        deleted += int(second)
                    if not path:  # a rename: its two paths follow as tokens
                        skip_paths = 2
                    continue
            out.append(build_git_record(header, files, added, deleted, repo, source, position))
            position += 1
            header = [token]
            files = added = deleted = 0
        self._header = header
        self._files, self._added, self._deleted = files, added, deleted
        self._skip_paths = skip_paths
        self.position = position
        return out


def build_git_record(
    fields: list[bytes],
    files_changed: int,
    lines_added: int,
    lines_deleted: int,
    repo: str,
    source: str,
    position: int,
) -> ParsedRecord:
    """The header fields of one commit (see `GIT_LOG_FIELDS`) + its numstat sums → a record."""
    try:  # one decode for the whole header; per field only when some bytes are not UTF-8
        texts = b"\x00".join(fields).decode("utf-8").split("\x00") if fields else []
    except UnicodeDecodeError:
        texts = [decode_text(f) for f in fields]

    def quarantine(reason: str) -> QuarantinedRecord:
        raw = json.dumps(dict(zip(_FIELD_NAMES, texts, strict=False)), ensure_ascii=False)
        sha = texts[0] if texts else None
        return QuarantinedRecord(
            source=source,
            position=position,
            reason=reason,
            raw=_raw_payload(raw),
            repo=repo,
            commit_sha=_valid_sha(sha),
        )

    if len(fields) < _HEADER_LEN:
        return quarantine(
            f"truncated git log record: {len(fields)} of {_HEADER_LEN} fields (git stopped?)"
        )
    sha, parents_text, author_name, author_email, author_date = texts[:5]
    committer_name, committer_email, committer_date, message = texts[5:]
    if not _is_sha(sha):
        return quarantine(f"invalid commit sha {sha[:80]!r}")
    parents = tuple(parents_text.split())
    bad = [p for p in parents if not _is_sha(p)]
    if bad:
        return quarantine(f"invalid parent sha {bad[0][:80]!r}")
    if max(files_changed, lines_added, lines_deleted) > INT32_MAX:
        return quarantine("numstat counts out of int32 range")
    try:
        authored_at, author_offset = parse_git_raw_date(author_date)
        committed_at, committer_offset = (  # most commits were committed as authored
            (authored_at, author_offset)
            if committer_date == author_date
            else parse_git_raw_date(committer_date)
        )
    except TimestampError as exc:
        return quarantine(str(exc))
    return CommitRecord(
        repo=repo,
        commit_sha=sha,
        parent_shas=parents,
        parent_count=len(parents),
        author_name=author_name,
        author_email=author_email,
        committer_name=committer_name,
        committer_email=committer_email,
        authored_at=authored_at,
        author_utc_offset_minutes=author_offset,
        committed_at=committed_at,
        committer_utc_offset_minutes=committer_offset,
        message=message,
        files_changed=files_changed,
        lines_added=lines_added,
        lines_deleted=lines_deleted,
    )
