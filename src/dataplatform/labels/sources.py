"""Catalogue of the human-labelled commit files, and the pure parsing of one file into rows.

Each known file (see /work/shared/datasets/labels/README.md for provenance and licences) is a
`LabelFile`: which data set and labelling protocol it belongs to, which split its rows are in,
and which of its columns hold the sha, message, repository and labels. Parsing keeps only rows
that carry at least one label; a row whose label cell cannot be read is rejected with a reason
(never silently dropped). The data itself is never shipped with the repository: it is read from
the folder the user names (`--labels-dir`, setting `labels_dir` / `DATAPLATFORM_LABELS_DIR`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

LABELS_DIR_ENV = "DATAPLATFORM_LABELS_DIR"

# Data sets (column `dataset`) and labelling protocols (column `labelling_protocol`).
AMIT_FEITELSON = "amit-feitelson-ccp"
LEVIN_YEHUDAI = "levin-yehudai-1151"
PROTOCOL_AMIT_4LABEL = "amit-feitelson-2020-4label"  # Is_Corrective/Adaptive/Perfective/Refactor
PROTOCOL_AMIT_BUGFIX = "amit-feitelson-2018-is-bug"  # one binary Is_Bug
PROTOCOL_AMIT_3ANNOTATORS = "amit-feitelson-2020-corrective-3-annotators"  # consensus label
PROTOCOL_LEVIN = "levin-yehudai-2017-swanson-3class"  # one of c / p / a per commit

# Splits (column `split`): where a row may be used.
SPLIT_PAPER_TEST = "paper_test_random"  # Amit & Feitelson's test set: never trained on
SPLIT_EXTRA_NONRANDOM = "extra_nonrandom"
SPLIT_RANDOM_2020 = "random_batch_2020"
SPLIT_BUGFIX_2018_TRAIN = "bugfix_2018_train"
SPLIT_BUGFIX_2018_TEST = "bugfix_2018_test"
SPLIT_PAPER_VALIDATION = "paper_validation"
SPLIT_THREE_ANNOTATORS = "three_annotators"
SPLIT_LEVIN = "levin_1151"

LABEL_COLUMNS: tuple[str, ...] = ("is_corrective", "is_adaptive", "is_perfective", "is_refactor")
ROW_COLUMNS: tuple[str, ...] = (
    "label_id",
    "dataset",
    "source_file",
    "source_row",
    "file_sha256",
    "labelling_protocol",
    "split",
    "repo",
    "commit_sha",
    "message",
    *LABEL_COLUMNS,
    "maintenance_activity",
    "project",
    "annotator_comment",
)

_TRUE = {"true", "1"}
_FALSE = {"false", "0", "flase"}  # `flase`: a typo kept in random_batch_2020
_UNSURE = {"?"}  # annotator left the label open (bq_test2 Is_Refactor): not labelled
_ACTIVITY = {"c": "corrective", "p": "perfective", "a": "adaptive"}
_SHA = re.compile(r"^[0-9a-f]{40}$")
# Levin's messages are `git format-patch` subjects + bodies: "[PATCH 0562/3401] ...--".
_PATCH_PREFIX = re.compile(r"^\s*\[PATCH(?: [0-9]+/[0-9]+)?\]\s*")
_PATCH_SUFFIX = re.compile(r"\s*--\s*$")


class LabelsError(ValueError):
    """A labels folder or file cannot be used (missing, unknown layout, unreadable)."""


def strip_format_patch(message: str) -> str:
    """`message` without a leading `[PATCH k/N]` and a trailing `--` (Levin's export format)."""
    return _PATCH_SUFFIX.sub("", _PATCH_PREFIX.sub("", message))


@dataclass(frozen=True, slots=True)
class LabelFile:
    """How to read one label file of the catalogue."""

    name: str  # file name inside the labels folder
    dataset: str
    protocol: str
    split: str | Callable[[Mapping[str, str]], str]  # fixed, or decided per row
    labels: Mapping[str, str] = field(default_factory=dict)  # our column -> file column
    activity_column: str | None = None  # single-label a/c/p column (Levin)
    sha_column: str = "commit"
    message_column: str = "message"
    repo_column: str | None = "repo_name"
    project_column: str | None = None
    comment_column: str | None = "Comment"
    clean_message: Callable[[str], str] | None = None

    def split_of(self, row: Mapping[str, str]) -> str:
        """The split of `row`."""
        return self.split if isinstance(self.split, str) else self.split(row)


def _updated5_split(row: Mapping[str, str]) -> str:
    # The paper's own test code: commits_updated5 filtered to Sampling == 'Random'.
    return SPLIT_PAPER_TEST if row.get("Sampling") == "Random" else SPLIT_EXTRA_NONRANDOM


_FOUR = {
    "is_corrective": "Is_Corrective",
    "is_adaptive": "Is_Adaptive",
    "is_perfective": "Is_Perfective",
    "is_refactor": "Is_Refactor",
}

LABEL_FILES: dict[str, LabelFile] = {
    f.name: f
    for f in (
        LabelFile(
            "amit_ccp_commits_updated5.csv.gz",
            AMIT_FEITELSON,
            PROTOCOL_AMIT_4LABEL,
            _updated5_split,
            _FOUR,
        ),
        LabelFile(
            "amit_ccp_random_batch_18_nov_2020.csv.gz",
            AMIT_FEITELSON,
            PROTOCOL_AMIT_4LABEL,
            SPLIT_RANDOM_2020,
            _FOUR,
        ),
        LabelFile(
            "amit_bugfix_commit_train_11_aug_18.csv.gz",
            AMIT_FEITELSON,
            PROTOCOL_AMIT_BUGFIX,
            SPLIT_BUGFIX_2018_TRAIN,
            {"is_corrective": "Is_Bug"},
        ),
        LabelFile(
            "amit_bugfix_commits_test_12_aug_18.csv.gz",
            AMIT_FEITELSON,
            PROTOCOL_AMIT_BUGFIX,
            SPLIT_BUGFIX_2018_TEST,
            {"is_corrective": "Is_Bug"},
        ),
        LabelFile(
            "amit_ccp_model_validation_samples.csv.gz",
            AMIT_FEITELSON,
            PROTOCOL_AMIT_4LABEL,
            SPLIT_PAPER_VALIDATION,
            {"is_corrective": "Is_Corrective"},
        ),
        LabelFile(
            "amit_ccp_bq_test2_3annotators.csv.gz",
            AMIT_FEITELSON,
            PROTOCOL_AMIT_3ANNOTATORS,
            SPLIT_THREE_ANNOTATORS,
            {"is_corrective": "Is_Corrective", "is_refactor": "Is_Refactor"},
            repo_column="repo_name_x",
        ),
        LabelFile(
            "levin1151_messages_stas_labeling2.csv.gz",
            LEVIN_YEHUDAI,
            PROTOCOL_LEVIN,
            SPLIT_LEVIN,
            activity_column="original_label",
            repo_column=None,
            project_column="project_derived",
            clean_message=strip_format_patch,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A labelled row that could not be read, with why."""

    source_file: str
    source_row: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedLabels:
    """Rows of one file ready for `raw.commit_labels` (columns `ROW_COLUMNS`), and rejects."""

    file: LabelFile
    file_sha256: str
    rows: pd.DataFrame
    rejected: list[RejectedRow]
    unlabelled: int  # rows of the file without any label (not loaded)


def resolve_labels_dir(explicit: Path | str | None = None, settings: Any = None) -> Path:
    """The labels folder: `explicit`, else `settings.labels_dir`, else $DATAPLATFORM_LABELS_DIR.

    Raises `LabelsError` when none is given or the folder does not exist.
    """
    candidate = explicit or getattr(settings, "labels_dir", None) or os.environ.get(LABELS_DIR_ENV)
    if not candidate:
        raise LabelsError(
            f"no labels folder given: pass --labels-dir or set {LABELS_DIR_ENV} "
            "(the labelled data is not shipped with the repository)"
        )
    path = Path(candidate).expanduser()
    if not path.is_dir():
        raise LabelsError(f"labels folder {path} does not exist")
    return path


def parse_bool(value: str) -> bool | None:
    """`TRUE`/`True`/`1` -> True, `FALSE`/`False`/`0`/`flase` -> False, empty or `?` -> None."""
    text = value.strip().lower()
    if not text or text in _UNSURE:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean label: {value!r}")


def parse_label_file(path: Path, spec: LabelFile | None = None) -> ParsedLabels:
    """Labelled rows of the catalogue file at `path` (its name selects the `LabelFile`)."""
    spec = spec or LABEL_FILES.get(path.name)
    if spec is None:
        raise LabelsError(f"{path.name} is not a known label file; known: {sorted(LABEL_FILES)}")
    data = path.read_bytes()
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise LabelsError(f"cannot read {path}: {exc}") from exc
    wanted = [spec.sha_column, spec.message_column, *spec.labels.values()]
    wanted += [c for c in (spec.activity_column, spec.repo_column, spec.project_column) if c]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise LabelsError(f"{path.name} lacks columns {missing}")
    rows: list[dict[str, Any]] = []
    rejected: list[RejectedRow] = []
    unlabelled = 0
    for position, record in enumerate(frame.to_dict("records")):
        try:
            row = _row(spec, position, record)
        except ValueError as exc:
            rejected.append(RejectedRow(spec.name, position, str(exc)))
            continue
        if row is None:
            unlabelled += 1
        else:
            rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in ROW_COLUMNS if c != "file_sha256"])
    out.insert(4, "file_sha256", hashlib.sha256(data).hexdigest())
    return ParsedLabels(spec, hashlib.sha256(data).hexdigest(), out, rejected, unlabelled)


def _row(spec: LabelFile, position: int, record: Mapping[str, str]) -> dict[str, Any] | None:
    labels = {name: parse_bool(record[column]) for name, column in spec.labels.items()}
    activity: str | None = None
    if spec.activity_column:
        code = record[spec.activity_column].strip().lower()
        if code and code not in _ACTIVITY:
            raise ValueError(f"not a maintenance activity (c/p/a): {code!r}")
        activity = _ACTIVITY.get(code)
    if activity is None and all(v is None for v in labels.values()):
        return None
    sha = record[spec.sha_column].strip().lower() or None
    if sha is not None and not _SHA.match(sha):
        raise ValueError(f"commit sha is not 40 hex characters: {sha[:60]!r}")
    message = record[spec.message_column]
    if spec.clean_message is not None:
        message = spec.clean_message(message)
    if sha is None and not message.strip():
        raise ValueError("row has neither a commit sha nor a message")
    return {
        "label_id": f"{spec.name}:{position}",
        "dataset": spec.dataset,
        "source_file": spec.name,
        "source_row": position,
        "labelling_protocol": spec.protocol,
        "split": spec.split_of(record),
        "repo": _text(record, spec.repo_column),
        "commit_sha": sha,
        "message": message if message.strip() else None,
        **{name: labels.get(name) for name in LABEL_COLUMNS},
        "maintenance_activity": activity,
        "project": _text(record, spec.project_column),
        "annotator_comment": _text(record, spec.comment_column),
    }


def _text(record: Mapping[str, str], column: str | None) -> str | None:
    if column is None:
        return None
    value = str(record.get(column, "")).strip()
    return value or None
