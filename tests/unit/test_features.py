"""compute_features: each mart definition on hand-made commits, and one path for 1 or N rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dataplatform.contracts import CommitRecord
from dataplatform.features import FEATURE_COLUMNS, compute_features, feature_row

T0 = datetime(2024, 1, 1, 20, 0, tzinfo=UTC)  # a Monday


def commit(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "repo": "octo/repo",
        "commit_sha": "a" * 40,
        "message": "Fix bug\n",
        "author_name": "Ada",
        "authored_at": T0,
        "author_utc_offset_minutes": 0,
        "committed_at": T0,
        "files_changed": 2,
        "lines_added": 10,
        "lines_deleted": 3,
    }
    base.update(overrides)
    return base


def one(**overrides: object) -> dict[str, int]:
    return feature_row(commit(**overrides))


def test_columns_are_ordered_int64_and_never_null() -> None:
    second = commit(commit_sha="b" * 40, author_utc_offset_minutes=None)
    frame = compute_features([commit(), second])
    assert list(frame.columns[-len(FEATURE_COLUMNS) :]) == FEATURE_COLUMNS
    assert all(str(frame[c].dtype) == "int64" for c in FEATURE_COLUMNS)
    assert not frame[FEATURE_COLUMNS].isna().any().any()
    assert frame["commit_key"].tolist() == ["octo/repo:" + "a" * 40, "octo/repo:" + "b" * 40]


def test_crlf_message_counts_cr_but_strips_it_from_the_subject() -> None:
    row = one(message="Fix bug\r\n\r\nBody\r\n")
    assert row["message_length"] == 17
    assert row["message_line_count"] == 4
    assert row["subject_length"] == 7


def test_message_without_newline_is_one_line_and_its_own_subject() -> None:
    row = one(message="Update README")
    assert (row["message_line_count"], row["subject_length"], row["message_length"]) == (1, 13, 13)


@pytest.mark.parametrize(
    ("message", "length"),
    [("📝 Update docs", 13), ("♻️ Refactor", 11), ("日本語", 3)],  # ♻️ = U+267B U+FE0F
)
def test_lengths_count_code_points_not_bytes(message: str, length: int) -> None:
    row = one(message=message)
    assert row["message_length"] == length
    assert row["subject_length"] == length


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Fix crash (#12)", 1),
        ("JIRA-123: fix", 1),
        ("see HBASE2-7", 1),
        ("jira-123 lower case", 0),
        ("A-1 needs two letters", 0),
        ("issue # without digits", 0),
        ("#١٢ arabic-indic digits", 0),
        ("plain message", 0),
    ],
)
def test_has_issue_ref(message: str, expected: int) -> None:
    assert one(message=message)["has_issue_ref"] == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [("Merge pull request #1", 1), ("MERGED", 1), ("emerge", 1), ("Fix", 0)],
)
def test_mentions_merge_is_case_insensitive_substring(message: str, expected: int) -> None:
    assert one(message=message)["mentions_merge"] == expected


@pytest.mark.parametrize(
    ("authored_at", "offset", "hour", "day"),
    [
        (T0, 345, 1, 2),  # 20:00Z +05:45 -> Tue 01:45 local
        (datetime(2024, 1, 1, 3, 0, tzinfo=UTC), -300, 22, 7),  # -> Sun 22:00 local
        (datetime(2024, 1, 6, 12, 30, tzinfo=UTC), None, 12, 6),  # malformed offset: UTC, Sat
    ],
)
def test_hour_and_iso_day_in_the_authors_local_time(
    authored_at: datetime, offset: int | None, hour: int, day: int
) -> None:
    row = one(authored_at=authored_at, committed_at=authored_at, author_utc_offset_minutes=offset)
    assert (row["hour_of_day"], row["day_of_week"]) == (hour, day)


def test_non_utc_aware_and_naive_timestamps_are_read_as_instants() -> None:
    aware = T0.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    naive = T0.replace(tzinfo=None)
    assert one(authored_at=aware, committed_at=aware) == one(authored_at=naive, committed_at=naive)


@pytest.mark.parametrize(("delta", "lag"), [(-30, -30), (0, 0), (3600, 3600)])
def test_commit_lag_seconds_may_be_negative(delta: int, lag: int) -> None:
    row = one(committed_at=T0 + timedelta(seconds=delta))
    assert row["commit_lag_seconds"] == lag


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dependabot[bot]", 1),
        ("github-actions[BOT]", 1),
        ("renovate-bot", 1),
        ("ROBOT", 1),
        ("Abbot", 1),  # the definition is "ends with 'bot'", nothing smarter
        ("Bot Builder", 0),
        ("Bottle", 0),
    ],
)
def test_is_bot_author(name: str, expected: int) -> None:
    assert one(author_name=name)["is_bot_author"] == expected


@pytest.mark.parametrize(
    ("message", "signed", "co_author"),
    [
        ("Fix\n\nSigned-off-by: A <a@x>", 1, 0),
        ("Fix\n\nsigned-off-by: A <a@x>", 0, 0),  # Signed-off-by is case-sensitive
        ("Fix\n\nCo-authored-by: B <b@x>", 0, 1),
        ("Fix\n\nCO-AUTHORED-BY: B <b@x>", 0, 1),
        ("Fix\n\nCo-authored-by B", 0, 0),  # the colon is part of the trailer
    ],
)
def test_trailers(message: str, signed: int, co_author: int) -> None:
    row = one(message=message)
    assert (row["has_signed_off"], row["has_co_author"]) == (signed, co_author)


def test_counts_pass_through() -> None:
    row = one(files_changed=0, lines_added=0, lines_deleted=0)
    assert (row["files_changed"], row["lines_added"], row["lines_deleted"]) == (0, 0, 0)


def test_one_commit_gives_the_same_values_as_inside_a_batch() -> None:
    commits = [
        commit(commit_sha=f"{i:040x}", message=m, author_utc_offset_minutes=o)
        for i, (m, o) in enumerate([("a\r\nb", 345), ("📝 x #1", None), ("Merge y", -300)])
    ]
    batch = compute_features(pd.DataFrame(commits))
    for i, c in enumerate(commits):
        assert feature_row(c) == {k: int(batch.loc[i, k]) for k in FEATURE_COLUMNS}


def test_accepts_commit_records_and_derives_the_label() -> None:
    record = CommitRecord(
        repo="octo/repo",
        commit_sha="c" * 40,
        parent_shas=None,
        parent_count=2,
        author_name="Ada",
        author_email="a@x",
        committer_name=None,
        committer_email=None,
        authored_at=T0,
        author_utc_offset_minutes=60,
        committed_at=T0,
        committer_utc_offset_minutes=60,
        message="Merge branch 'x'",
        files_changed=0,
        lines_added=0,
        lines_deleted=0,
    )
    frame = compute_features([record])
    assert bool(frame.loc[0, "is_merge_commit"]) is True
    assert frame.loc[0, "hour_of_day"] == 21


def test_missing_and_null_inputs_are_refused_by_name() -> None:
    frame = pd.DataFrame([commit()]).drop(columns=["lines_added"])
    with pytest.raises(ValueError, match="lines_added"):
        compute_features(frame)
    with pytest.raises(ValueError, match="message"):
        compute_features([commit(message=None)])


def test_message_comes_out_redacted_but_features_use_the_original() -> None:
    message = "Fix\n\nCo-authored-by: B <b@example.org>"
    frame = compute_features([commit(message=message)])
    assert frame.loc[0, "message"] == "Fix\n\nCo-authored-by: B <<email>>"
    assert frame.loc[0, "message_length"] == len(message)
    assert str(frame["authored_at"].dtype) == "datetime64[ns, UTC]"


def test_empty_input_gives_the_mart_columns() -> None:
    frame = compute_features([])
    assert len(frame) == 0
    assert list(frame.columns) == ["commit_key", "repo", "commit_sha", "authored_at",
                                   "committed_at", "message", *FEATURE_COLUMNS]  # fmt: skip
    assert all(str(frame[c].dtype) == "int64" for c in FEATURE_COLUMNS)
