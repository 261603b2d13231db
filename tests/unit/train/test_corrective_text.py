"""The corrective model's text path: e-mail redaction equals dbt's, keyword baseline, spec."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd

from dataplatform.train.specs import CORRECTIVE_CLASSIFIER, MODEL_SPECS
from dataplatform.train.text import (
    EMAIL_PART,
    EMAIL_PATTERN,
    keyword_rule,
    normalise_message,
    redact_emails,
)

MACRO = Path(__file__).resolve().parents[3] / "dbt" / "macros" / "email_pattern.sql"
MESSAGES = [
    "Fix crash\n\nSigned-off-by: Jane Doe <jane.doe@example.org>",
    "Co-authored-by: bot <1+dependabot[bot]@users.noreply.github.com>",
    "clone git@github.com:owner/repo.git, then (mail a@b) or 'x@y';z@w`q@r",
    "no address here @ all",
    "unicode naïve@exämple.org\tand\u00a0tabs x@y",
]


def _macro_part() -> str:
    text = MACRO.read_text(encoding="utf-8")
    match = re.search(r'set part = "((?:[^"\\]|\\.)*)"', text)
    assert match, "email_pattern macro layout changed"
    # Jinja string literal -> its value: \\ -> \, \" -> "
    return re.sub(r"\\(.)", r"\1", match.group(1))


def test_python_pattern_is_the_dbt_macro_pattern() -> None:
    assert _macro_part() == EMAIL_PART


def test_redaction_matches_duckdb_on_the_macro_pattern() -> None:
    con = duckdb.connect()
    for message in MESSAGES:
        (sql,) = con.execute(
            "SELECT regexp_replace(?, ?, '<email>', 'g')", [message, EMAIL_PATTERN]
        ).fetchone()
        assert redact_emails(message) == sql
    assert "@example.org" not in redact_emails(MESSAGES[0])
    assert redact_emails(redact_emails(MESSAGES[2])) == redact_emails(MESSAGES[2])


def test_normalise_message() -> None:
    assert normalise_message("  Fix\tBUG  by <a@b.c>\n\n") == "fix bug by <<email>>"


def test_keyword_rule() -> None:
    frame = pd.DataFrame(
        {"message": ["Fixed NPE", "bugfix: x", "prefix handling", "debug log", None, "Crash"]}
    )
    assert keyword_rule(frame).tolist() == [1, 1, 0, 0, 0, 1]


def test_corrective_spec_is_registered_and_scores_all_commits() -> None:
    spec = MODEL_SPECS["corrective-classifier"]
    assert spec is CORRECTIVE_CLASSIFIER
    assert spec.input_columns == ["message"]
    assert spec.training_mart == "analytics.labelled_commits"
    assert spec.score_from == "analytics.commit_features"
    assert MODEL_SPECS["commit-classifier"].score_from == "analytics.commit_features"
    assert spec.gate == "corrective-classifier"


def test_corrective_pipeline_learns_from_text() -> None:
    frame = pd.DataFrame(
        {
            "message": ["fix crash in parser", "fix null pointer", "add feature flag"] * 5
            + ["update docs", "fix typo bug in loader", "add new endpoint"] * 5,
        }
    )
    target = (frame["message"].str.contains("fix")).astype("int64")
    model = CORRECTIVE_CLASSIFIER.estimator_factory()
    model.fit(frame[["message"]], target)
    predicted = model.predict(pd.DataFrame({"message": ["fix crash", "add feature"]}))
    assert predicted.tolist() == [1, 0]
