"""Parsing the real label files: rows, splits, booleans, Levin's format, rejects."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataplatform.labels.sources import (
    LABEL_FILES,
    LabelsError,
    parse_bool,
    parse_label_file,
    resolve_labels_dir,
    strip_format_patch,
)


def test_paper_test_set_is_the_1100_random_rows(labels_dir: Path) -> None:
    parsed = parse_label_file(labels_dir / "amit_ccp_commits_updated5.csv.gz")
    rows = parsed.rows
    assert len(rows) == 1224  # every labelled row, README: 1,224
    test = rows[rows["split"] == "paper_test_random"]
    assert len(test) == 1100
    assert int(test["is_corrective"].sum()) == 271  # README class balance
    assert set(rows["split"]) == {"paper_test_random", "extra_nonrandom"}
    assert rows["commit_sha"].str.fullmatch(r"[0-9a-f]{40}").all()
    assert rows["label_id"].is_unique
    assert (rows["labelling_protocol"] == "amit-feitelson-2020-4label").all()
    assert parsed.unlabelled == 5000 - 1224
    assert not parsed.rejected


def test_bugfix_is_bug_maps_to_is_corrective(labels_dir: Path) -> None:
    parsed = parse_label_file(labels_dir / "amit_bugfix_commit_train_11_aug_18.csv.gz")
    assert len(parsed.rows) == 838
    assert int(parsed.rows["is_corrective"].sum()) == 244
    assert parsed.rows["is_adaptive"].isna().all()  # not labelled by this protocol


def test_flase_typo_and_question_marks(labels_dir: Path) -> None:
    batch = parse_label_file(labels_dir / "amit_ccp_random_batch_18_nov_2020.csv.gz")
    labelled = batch.rows["is_corrective"].dropna()
    assert len(labelled) == 1396  # README: 322/1,396, the one 'flase' counted as False
    assert int(labelled.sum()) == 322
    three = parse_label_file(labels_dir / "amit_ccp_bq_test2_3annotators.csv.gz")
    assert len(three.rows) == 413
    assert not three.rejected


def test_levin_messages_lose_the_format_patch_wrapping(labels_dir: Path) -> None:
    parsed = parse_label_file(labels_dir / "levin1151_messages_stas_labeling2.csv.gz")
    rows = parsed.rows
    assert len(rows) == 1151
    assert rows["maintenance_activity"].value_counts().to_dict() == {
        "corrective": 500,
        "perfective": 404,
        "adaptive": 247,
    }
    assert rows["project"].nunique() == 11
    assert not rows["message"].str.startswith("[PATCH").any()
    assert not rows["message"].str.endswith("--").any()
    assert rows["is_corrective"].isna().all()  # Levin's protocol: no binary labels


def test_strip_format_patch() -> None:
    assert strip_format_patch("[PATCH 0562/3401] Change hasException--") == "Change hasException"
    assert strip_format_patch("[PATCH] a -b-- ") == "a -b"
    assert strip_format_patch("no wrapping") == "no wrapping"


def test_parse_bool() -> None:
    assert parse_bool("TRUE") is True
    assert parse_bool("True") is True
    assert parse_bool("FALSE") is False
    assert parse_bool("flase") is False
    assert parse_bool("") is None
    assert parse_bool(" ? ") is None
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool("maybe")


def test_bad_label_cells_are_rejected_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "amit_bugfix_commits_test_12_aug_18.csv.gz"
    import gzip

    header = "repo_name,commit,subject,message,bug_in_subject,not_a_bug_in_subject,"
    header += "bug_in_message,not_a_bug_in_message,Is_Bug,Comment,new token\n"
    good = "a/b," + "a" * 40 + ",s,fix crash,0,0,0,0,TRUE,,\n"
    bad = "a/b," + "b" * 40 + ",s,msg,0,0,0,0,perhaps,,\n"
    short = "a/b,abc,s,msg,0,0,0,0,FALSE,,\n"
    path.write_bytes(gzip.compress((header + good + bad + short).encode()))
    parsed = parse_label_file(path)
    assert len(parsed.rows) == 1
    assert [(r.source_row, r.reason.split(":")[0]) for r in parsed.rejected] == [
        (1, "not a boolean label"),
        (2, "commit sha is not 40 hex characters"),
    ]


def test_unknown_file_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="not a known label file"):
        parse_label_file(tmp_path / "other.csv.gz")
    with pytest.raises(LabelsError, match="does not exist"):
        resolve_labels_dir(tmp_path / "absent")
    assert resolve_labels_dir(tmp_path) == tmp_path
    assert "levin1151_messages_stas_labeling2.csv.gz" in LABEL_FILES


def test_no_labels_folder_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAPLATFORM_LABELS_DIR", raising=False)
    with pytest.raises(LabelsError, match="DATAPLATFORM_LABELS_DIR"):
        resolve_labels_dir(None)
