"""Model specs: the registry of specs, the merge baseline rule, the estimator factory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from dataplatform.features import FEATURE_COLUMNS
from dataplatform.train.specs import COMMIT_CLASSIFIER, MODEL_SPECS, get_spec, starts_with_merge
from dataplatform.train.split import TimeSplit


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Merge pull request #1 from a/b", 1),
        ("Merge branch 'main'", 1),
        ("Merged in changes", 1),  # a prefix rule: wrong on this non-merge, by design
        ("merge\n", 0),  # case-sensitive: lower-case merges are missed
        (" Merge", 0),
        ("Fix (#12)", 0),
    ],
)
def test_baseline_is_message_starts_with_merge(message: str, expected: int) -> None:
    assert starts_with_merge(pd.DataFrame({"message": [message]})).tolist() == [expected]
    assert COMMIT_CLASSIFIER.baseline.predict(pd.DataFrame({"message": [message]})).dtype == "int64"


def test_commit_classifier_spec() -> None:
    spec = get_spec("commit-classifier")
    assert spec is COMMIT_CLASSIFIER is MODEL_SPECS["commit-classifier"]
    assert spec.target == "is_merge_commit"
    assert spec.input_columns == FEATURE_COLUMNS
    assert spec.training_mart == "analytics.commit_features"
    assert isinstance(spec.split, TimeSplit)
    assert spec.split.column == "committed_at"
    assert spec.gate == "commit-classifier"


def test_estimator_factory_returns_fresh_unfitted_pipelines_that_handle_negative_values() -> None:
    first, second = COMMIT_CLASSIFIER.estimator_factory(), COMMIT_CLASSIFIER.estimator_factory()
    assert first is not second
    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        rng.integers(-5_000, 5_000, size=(60, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS
    )
    y = (x["files_changed"] > 0).astype(int)
    fitted = clone(first).fit(x, y)
    assert set(fitted.predict(x)) <= {0, 1}


def test_unknown_spec_lists_known_names() -> None:
    with pytest.raises(KeyError, match="commit-classifier"):
        get_spec("nope")
