"""The request path's shortcuts give the answers of the slow path, value for value.

* `features.feature_matrix` (no pandas) equals `compute_features`' feature columns;
* `FeatureRows` over that matrix logs and scores like the mart frame;
* the numpy twin of `predict_proba` (`serve.fastpath`) equals sklearn on the trainer's pipeline,
  and anything it does not know is left to sklearn.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from dataplatform.features import FEATURE_COLUMNS, compute_features, feature_matrix
from dataplatform.serve.fastpath import compile_proba, verified_proba
from dataplatform.serve.featurize import FeatureRows
from dataplatform.serve.predictor import LoadedModel, Scorer
from dataplatform.train.specs import commit_classifier_pipeline


def _commits(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    messages = [
        "Merge pull request #12 from a/b\n\nFix it",
        "fix: crash (JIRA-77)\r\n\r\nSigned-off-by: X <x@example.com>",
        "Ünïcode subject\nCo-authored-by: y <y@z.org>",
        "",
        "merge branch 'main'",
    ]
    start = datetime(2001, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        authored = start + timedelta(seconds=int(rng.integers(0, 800_000_000)))
        out.append(
            {
                "repo": f"o/r{i % 3}",
                "commit_sha": f"{i:040x}",
                "message": messages[i % len(messages)] * int(rng.integers(1, 4)),
                "author_name": ["dependabot[bot]", "Jane", "renovate-bot"][i % 3],
                "authored_at": authored,
                "author_utc_offset_minutes": [None, 60, -300, 330][i % 4],
                "committed_at": authored + timedelta(seconds=int(rng.integers(-100, 10_000))),
                "files_changed": int(rng.integers(0, 50)),
                "lines_added": int(rng.integers(0, 5_000)),
                "lines_deleted": int(rng.integers(0, 5_000)),
            }
        )
    return out


def test_feature_matrix_equals_compute_features() -> None:
    commits = _commits(200)
    expected = compute_features(commits)[FEATURE_COLUMNS].to_numpy()
    got = feature_matrix(commits)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    assert feature_matrix([]).shape == (0, len(FEATURE_COLUMNS))
    with pytest.raises(ValueError, match="null values"):
        feature_matrix([{**commits[0], "files_changed": None}])


def test_feature_rows_log_and_slice_like_the_mart_frame() -> None:
    commits = _commits(7)
    by_matrix = FeatureRows.of_commits(commits)
    by_frame = FeatureRows(frame=compute_features(commits))
    columns = ["lines_added", "hour_of_day", "is_bot_author"]
    assert by_matrix.records(columns) == by_frame.records(columns)
    assert by_matrix.keys() == by_frame.keys()
    part = FeatureRows.concat([by_matrix.slice(0, 3), by_matrix.slice(3, 7)])
    np.testing.assert_array_equal(part.matrix, by_matrix.matrix)
    pd.testing.assert_frame_equal(
        by_matrix.frame[FEATURE_COLUMNS], by_frame.frame[FEATURE_COLUMNS], check_dtype=False
    )


def _fitted(estimator: Any, seed: int = 1) -> Any:
    x = pd.DataFrame(feature_matrix(_commits(300, seed)), columns=FEATURE_COLUMNS)
    y = (x["mentions_merge"] + (x["lines_added"] > 2_500)).clip(0, 1)
    return estimator.fit(x, y)


def test_fast_path_equals_predict_proba_on_the_trainers_pipeline() -> None:
    estimator = _fitted(commit_classifier_pipeline())
    fast = verified_proba(estimator, len(FEATURE_COLUMNS))
    assert fast is not None
    matrix = feature_matrix(_commits(500, seed=7)).astype("float64")
    np.testing.assert_allclose(
        fast(matrix), estimator.predict_proba(pd.DataFrame(matrix, columns=FEATURE_COLUMNS)),
        rtol=1e-12, atol=1e-15,
    )  # fmt: skip


def test_a_model_scores_the_same_with_and_without_the_fast_path() -> None:
    estimator = _fitted(commit_classifier_pipeline())
    model = LoadedModel(
        name="m", version="1", alias="production", semver=None, run_id=None,
        loaded_at=datetime.now(UTC), input_columns=tuple(FEATURE_COLUMNS), estimator=estimator,
    )  # fmt: skip
    assert model.fast_proba is not None
    commits = _commits(50, seed=3)
    fast = Scorer().score_sync(model, commits=commits)
    frame = compute_features(commits)
    proba = estimator.predict_proba(frame[FEATURE_COLUMNS])
    np.testing.assert_array_equal(fast.classes, proba.argmax(axis=1))
    np.testing.assert_allclose(fast.probabilities, proba.max(axis=1), rtol=1e-12)


@pytest.mark.parametrize(
    "estimator",
    [
        HistGradientBoostingClassifier(max_iter=5),
        Pipeline(
            [
                ("asinh", FunctionTransformer(np.arcsinh, validate=True)),
                ("lr", LogisticRegression(max_iter=5000)),
            ]
        ),
        Pipeline(
            [
                ("f", FunctionTransformer(lambda v: np.arcsinh(v))),
                ("lr", LogisticRegression(max_iter=5000)),
            ]
        ),
    ],
    ids=["not-linear", "validating-transformer", "python-function"],
)
def test_unknown_estimators_are_left_to_sklearn(estimator: Any) -> None:
    fitted = _fitted(estimator)
    assert compile_proba(fitted) is None
    assert verified_proba(fitted, len(FEATURE_COLUMNS)) is None


def test_a_twin_that_disagrees_is_not_used() -> None:
    estimator = _fitted(Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]))
    estimator.named_steps["lr"].predict_proba = lambda x: np.full((len(x), 2), 0.5)
    assert compile_proba(estimator) is not None
    assert verified_proba(estimator, len(FEATURE_COLUMNS)) is None
