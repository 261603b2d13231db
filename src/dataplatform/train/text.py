"""Message-text models: the text every path feeds them, their estimators and keyword baselines.

Online text must equal offline text. The marts hold messages with e-mail addresses replaced by
`<email>` (dbt macro `email_pattern`, applied in int_commits__features and
stg_labels__commit_labels); `dataplatform.features.redact_emails` is its Python twin, and
serving/batch code must pass messages through it before a text model sees them (redacting twice
changes nothing); `compute_features` already returns `message` redacted.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

# The redaction lives with the shared feature code (serving uses it too); re-exported here.
from dataplatform.features import EMAIL_PART as EMAIL_PART
from dataplatform.features import EMAIL_PATTERN as EMAIL_PATTERN
from dataplatform.features import EMAIL_REPLACEMENT as EMAIL_REPLACEMENT
from dataplatform.features import redact_emails as redact_emails

_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")

# A-priori bug-fix vocabulary (prefixes: fix/fixes/fixed/bugfix..., error/errors, fail/failure),
# fixed before any evaluation; the rule the corrective model must beat.
CORRECTIVE_KEYWORDS: tuple[str, ...] = ("fix", "bug", "defect", "fault", "crash", "error", "fail")
_KEYWORD = re.compile(r"\b(?:" + "|".join(CORRECTIVE_KEYWORDS) + ")", re.IGNORECASE)


def redact_messages(messages: pd.Series) -> pd.Series:
    """`redact_emails` over a Series (None stays None)."""
    return messages.map(lambda m: m if m is None or m is pd.NA else redact_emails(str(m)))


def normalise_message(text: str) -> str:
    """Redacted, lower-cased, whitespace runs collapsed to one space, trimmed.

    The identity of a message for leakage checks; the SQL twin is `message_normalised` in
    stg_labels__commit_labels.
    """
    return _WHITESPACE.sub(" ", redact_emails(text).lower()).strip(" ")


def keyword_rule(frame: pd.DataFrame) -> np.ndarray:
    """1 where the message contains a bug-fix keyword (`CORRECTIVE_KEYWORDS`), else 0."""
    messages = frame["message"].fillna("").astype(str)
    return messages.map(lambda m: int(bool(_KEYWORD.search(m)))).to_numpy(dtype="int64")


def text_features(column: str = "message") -> ColumnTransformer:
    """TF-IDF of word 1-2-grams and of character 2-5-grams within words, of one text column.

    Character n-grams carry morphology the small data cannot teach word by word
    (fix/fixes/fixed/bugfix, NPE/null-pointer); both are sub-linear and need 2 documents.
    """
    return ColumnTransformer(
        [
            (
                "words",
                TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                column,
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True
                ),
                column,
            ),
        ]
    )


def corrective_pipeline() -> Pipeline:
    """TF-IDF (words + characters) -> balanced logistic regression, C = 4.

    C and class weighting chosen by 5-fold stratified cross-validation on the training rows only
    (C in {1, 4, 16}, weighting none/balanced; CV accuracy 0.866, F1 0.741 for the chosen pair);
    the paper test set was not looked at. liblinear: fast and deterministic on a few thousand rows.
    """
    return Pipeline(
        [
            ("text", text_features("message")),
            (
                "classifier",
                LogisticRegression(C=4.0, solver="liblinear", class_weight="balanced"),
            ),
        ]
    )


def maintenance_pipeline() -> Pipeline:
    """Same text features -> multinomial logistic regression (balanced) for c / p / a."""
    return Pipeline(
        [
            ("text", text_features("message")),
            ("classifier", LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced")),
        ]
    )
