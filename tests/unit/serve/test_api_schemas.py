"""Validation of request bodies: the same rules as ingestion, field errors for everything else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from dataplatform.serve.api.schemas import CommitIn, PredictRequest


def _commit(**overrides: Any) -> dict[str, Any]:
    base = {
        "repo": "psf/requests",
        "commit_sha": "f" * 40,
        "message": "Fix #12",
        "author_name": "dependabot[bot]",
        "authored_at": "2021-05-01T23:30:00-05:00",
        "committed_at": "2021-05-02T04:30:10+00:00",
        "files_changed": 1,
        "lines_added": 2,
        "lines_deleted": 3,
    }
    return {**base, **overrides}


def test_offset_comes_from_the_timestamp_unless_given() -> None:
    record = CommitIn.model_validate(_commit()).to_record()
    assert record["author_utc_offset_minutes"] == -300
    assert record["authored_at"] == datetime(2021, 5, 2, 4, 30, tzinfo=UTC)
    explicit_null = CommitIn.model_validate(_commit(author_utc_offset_minutes=None))
    assert explicit_null.to_record()["author_utc_offset_minutes"] is None


def test_surrogates_become_replacement_characters_as_in_ingestion() -> None:
    assert CommitIn.model_validate(_commit(message="a\udcffb")).message == "a\ufffdb"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"message": "nul\x00"}, "message"),
        ({"author_name": "x\x00"}, "author_name"),
        ({"lines_added": "2"}, "lines_added"),
        ({"lines_added": 2.0}, "lines_added"),
        ({"lines_added": False}, "lines_added"),
        ({"lines_added": -1}, "lines_added"),
        ({"files_changed": 2**31}, "files_changed"),
        ({"authored_at": "2021-05-01T23:30:00"}, "authored_at"),
        ({"authored_at": 1620000000}, "authored_at"),
        ({"committed_at": "1800-01-01T00:00:00Z"}, "committed_at"),
        ({"commit_sha": "F" * 40}, "commit_sha"),
        ({"repo": "no-slash"}, "repo"),
        ({"message": "x" * 70_000}, "message"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_fields_are_named(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        CommitIn.model_validate(_commit(**overrides))
    assert field in {str(e["loc"][0]) for e in err.value.errors()}


def test_missing_field_is_named() -> None:
    body = _commit()
    del body["committed_at"]
    with pytest.raises(ValidationError) as err:
        CommitIn.model_validate(body)
    assert [e["loc"] for e in err.value.errors()] == [("committed_at",)]


def test_request_needs_1_to_1000_commits_and_defaults_the_model() -> None:
    assert PredictRequest.model_validate({"commits": [_commit()]}).model == "commit-classifier"
    for commits in ([], [_commit()] * 1001):
        with pytest.raises(ValidationError):
            PredictRequest.model_validate({"commits": commits})
