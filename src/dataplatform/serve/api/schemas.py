"""Request and response bodies. Limits here are hard caps; `ServeSettings` may lower them.

A commit is the ingestion record's shape (`dataplatform.contracts.CommitRecord`) with the same
validation rules as the dataset parser: 40-hex sha, `owner/name` repo, no NUL characters, counts
0..2**31-1 (strict integers), timestamps ISO 8601 WITH an offset. Lone surrogates become U+FFFD
as in ingestion. `author_utc_offset_minutes` left out is taken from `authored_at`'s own offset;
sent as null it means "unknown" (features then use UTC, as in the mart).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    model_validator,
)

from dataplatform.serve.settings import DEFAULT_MODEL

INT32_MAX = 2**31 - 1
MAX_MESSAGE_CHARS = 65_536
MAX_ITEMS = 1_000
MAX_NAME_CHARS = 1_000
# pandas' nanosecond timestamps end in 2262; git has nothing before 1970 in practice.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_SURROGATES = re.compile(r"[\ud800-\udfff]")

CLASS_LABELS: dict[str, dict[int, str]] = {
    "commit-classifier": {0: "non_merge", 1: "merge"},
    "corrective-classifier": {0: "non_corrective", 1: "corrective"},
}


def class_label(model: str, value: int) -> str:
    """Readable name of a predicted class (the number as text for unknown models)."""
    return CLASS_LABELS.get(model, {}).get(int(value), str(int(value)))


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return _SURROGATES.sub("\ufffd", value) if _SURROGATES.search(value) else value


def _timestamp_text(value: Any) -> Any:
    # JSON has no datetime: only strings (numbers would silently mean unix seconds).
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 string with a UTC offset")
    return value


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 1900-01-01 and 2200-01-01 UTC")
    return value


Text = Annotated[str, AfterValidator(_clean_text)]
Count = Annotated[StrictInt, Field(ge=0, le=INT32_MAX)]
Sha = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$", examples=["0" * 40])]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_text), AfterValidator(_in_range)]
OffsetMinutes = Annotated[StrictInt, Field(ge=-1439, le=1439)]


class CommitIn(BaseModel):
    """One commit to classify (the ingestion record's shape)."""

    model_config = ConfigDict(extra="forbid")

    repo: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", max_length=200)]
    commit_sha: Sha
    message: Annotated[Text, Field(max_length=MAX_MESSAGE_CHARS)]
    author_name: Annotated[Text, Field(max_length=MAX_NAME_CHARS)]
    authored_at: Timestamp
    author_utc_offset_minutes: OffsetMinutes | None = None
    committed_at: Timestamp
    committer_utc_offset_minutes: OffsetMinutes | None = None
    files_changed: Count
    lines_added: Count
    lines_deleted: Count
    # Part of the record, not used by the model; accepted so records can be posted as they are.
    parent_shas: Annotated[list[Sha], Field(max_length=64)] | None = None
    parent_count: Count | None = None
    author_email: Annotated[Text, Field(max_length=MAX_NAME_CHARS)] | None = None
    committer_name: Annotated[Text, Field(max_length=MAX_NAME_CHARS)] | None = None
    committer_email: Annotated[Text, Field(max_length=MAX_NAME_CHARS)] | None = None

    @model_validator(mode="after")
    def _offsets_from_timestamps(self) -> CommitIn:
        fields = self.model_fields_set
        if "author_utc_offset_minutes" not in fields:
            self.author_utc_offset_minutes = _offset_minutes(self.authored_at)
        if "committer_utc_offset_minutes" not in fields:
            self.committer_utc_offset_minutes = _offset_minutes(self.committed_at)
        return self

    def to_record(self) -> dict[str, Any]:
        """The columns the shared feature code reads (timestamps in UTC)."""
        return {
            "repo": self.repo,
            "commit_sha": self.commit_sha,
            "message": self.message,
            "author_name": self.author_name,
            "authored_at": self.authored_at.astimezone(UTC),
            "author_utc_offset_minutes": self.author_utc_offset_minutes,
            "committed_at": self.committed_at.astimezone(UTC),
            "files_changed": self.files_changed,
            "lines_added": self.lines_added,
            "lines_deleted": self.lines_deleted,
        }


def _offset_minutes(at: datetime) -> int | None:
    offset = at.utcoffset()
    return None if offset is None else int(offset.total_seconds() // 60)


ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]


class PredictRequest(BaseModel):
    """One or many commits for one model."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName = Field(default=DEFAULT_MODEL, description="Registered model name.")
    commits: Annotated[list[CommitIn], Field(min_length=1, max_length=MAX_ITEMS)]


class Prediction(BaseModel):
    """The answer for one commit."""

    request_id: str
    repo: str
    commit_sha: str
    predicted_class: int
    label: str
    probability: float = Field(description="Probability of the predicted class.")
    model_name: str
    model_version: str
    model_semver: str | None
    served_by: Literal["production", "staging"] = Field(
        description="Alias of the version that answered (staging = canary)."
    )


class PredictResponse(BaseModel):
    model: str
    model_version: str
    served_by: Literal["production", "staging"]
    predictions: list[Prediction]


# --- Open Inference Protocol v2 ---------------------------------------------------------------
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip


class InferInput(BaseModel):
    """A named input tensor (row-major `data`, flat or nested)."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    shape: Annotated[list[Annotated[int, Field(ge=0, le=INT32_MAX)]], Field(max_length=4)]
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: Annotated[list[Any], Field(max_length=MAX_ITEMS)]


class RequestedOutput(BaseModel):
    name: Annotated[str, Field(max_length=100)]
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """OIP v2 inference request."""

    id: Annotated[str, Field(max_length=200)] | None = None
    parameters: dict[str, Any] | None = None
    inputs: Annotated[list[InferInput], Field(min_length=1, max_length=64)]
    outputs: Annotated[list[RequestedOutput], Field(max_length=8)] | None = None


class InferOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    parameters: dict[str, Any]
    outputs: list[InferOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any] = Field(default_factory=dict)
