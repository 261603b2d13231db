"""Time split (no leakage, respects time) and the dataset_version content hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dataplatform.train.split import ColumnSplit, SplitError, TimeSplit, dataset_version

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(n: int = 50) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "commit_key": [f"r:{i:04d}" for i in range(n)],
            # shuffled times, and pairs of rows sharing a second
            "committed_at": [T0 + timedelta(seconds=(i * 7919 % n) // 2) for i in range(n)],
            "x": range(n),
            "label": [i % 3 == 0 for i in range(n)],
        }
    )


def test_time_split_puts_the_last_fifth_of_time_in_test_with_no_key_in_both() -> None:
    data = frame()
    split = TimeSplit(test_fraction=0.2).split(data, "commit_key")
    assert split.train["committed_at"].max() < split.test["committed_at"].min()
    assert not set(split.train["commit_key"]) & set(split.test["commit_key"])
    assert len(split.train) + len(split.test) == len(data)
    assert 0.15 <= len(split.test) / len(data) <= 0.3
    assert split.params["split_cutoff"] == split.cutoff
    assert pd.Timestamp(split.cutoff) == split.test["committed_at"].min()


def test_rows_at_the_cutoff_second_all_go_to_test() -> None:
    data = pd.DataFrame(
        {
            "commit_key": list("abcdef"),
            "committed_at": [T0, T0, T0 + timedelta(seconds=1), *[T0 + timedelta(seconds=2)] * 3],
        }
    )
    split = TimeSplit(test_fraction=0.4).split(data, "commit_key")
    assert sorted(split.test["commit_key"]) == ["d", "e", "f"]


def test_a_split_that_leaves_a_side_empty_is_an_error() -> None:
    data = pd.DataFrame({"commit_key": list("abc"), "committed_at": [T0] * 3})
    with pytest.raises(SplitError, match="empty side"):
        TimeSplit().split(data, "commit_key")


def test_duplicate_keys_across_sides_are_caught() -> None:
    data = pd.DataFrame(
        {
            "commit_key": ["a", "a", "b", "c", "d"],
            "committed_at": [T0 + timedelta(days=d) for d in (0, 9, 1, 2, 3)],
        }
    )
    with pytest.raises(SplitError, match="both train and test"):
        TimeSplit(test_fraction=0.2).split(data, "commit_key")


def test_column_split_uses_the_data_sets_own_split() -> None:
    data = pd.DataFrame({"commit_key": list("abcd"), "split": ["train", "test", "train", "test"]})
    split = ColumnSplit("split", ("test",)).split(data, "commit_key")
    assert sorted(split.test["commit_key"]) == ["b", "d"]


def test_dataset_version_ignores_row_order_index_and_int_width() -> None:
    data = frame()
    cols = ["committed_at", "x", "label"]
    reference = dataset_version(data, "commit_key", cols)
    shuffled = data.sample(frac=1.0, random_state=3).set_index(pd.Index(range(100, 150)))
    narrow = data.astype({"x": "int32"})
    assert dataset_version(shuffled, "commit_key", cols) == reference
    assert dataset_version(narrow, "commit_key", cols) == reference
    assert len(reference) == 64


@pytest.mark.parametrize(
    ("column", "value"), [("x", 999), ("label", True), ("committed_at", T0 + timedelta(days=1))]
)
def test_dataset_version_changes_when_one_value_changes(column: str, value: object) -> None:
    data = frame()
    cols = ["committed_at", "x", "label"]
    changed = data.copy()
    changed.loc[1, column] = value
    assert dataset_version(changed, "commit_key", cols) != dataset_version(data, "commit_key", cols)


def test_dataset_version_changes_when_a_row_is_dropped() -> None:
    data = frame()
    cols = ["x"]
    assert dataset_version(data.iloc[1:], "commit_key", cols) != dataset_version(
        data, "commit_key", cols
    )
