"""Evaluation helpers: binary metrics, NaN-safe per-slice F1, metric names, figures, histograms."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dataplatform.train.evaluation import (
    binary_metrics,
    f1_by_slice,
    feature_histograms,
    finite,
    save_confusion_matrix,
    slice_metric_name,
)


def test_binary_metrics() -> None:
    m = binary_metrics(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
    assert m == {"f1_score": 0.5, "accuracy": 0.5, "precision": 0.5, "recall": 0.5}


def test_slice_without_positives_is_nan_and_false_alarms_score_zero() -> None:
    repos = pd.Series(["a/x", "a/x", "b/y", "b/y", "c/z"])
    y_true = np.array([1, 0, 0, 0, 0])
    y_pred = np.array([1, 0, 0, 0, 1])
    f1 = f1_by_slice(repos, y_true, y_pred)
    assert f1["a/x"] == 1.0
    assert math.isnan(f1["b/y"])  # nothing to find, nothing predicted: undefined
    assert f1["c/z"] == 0.0  # nothing to find, but a false alarm
    assert finite(f1) == {"a/x": 1.0, "c/z": 0.0}


def test_slice_metric_names_are_mlflow_safe() -> None:
    name = slice_metric_name("f1_score", "repo", "pallets/flask")
    assert name == "f1_score__repo__pallets__flask"
    assert slice_metric_name("f1_score", "repo", "o/we ird!") == "f1_score__repo__o__we_ird_"


def test_confusion_matrix_png(tmp_path: Path) -> None:
    path = save_confusion_matrix(
        np.array([1, 0, 1]), np.array([1, 0, 0]), tmp_path / "sub" / "cm.png", title="t"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_histograms_bin_every_value_once() -> None:
    frame = pd.DataFrame({"a": range(100), "const": [3] * 100})
    hist = feature_histograms(frame, ["a", "const"], bins=4)
    assert sum(hist["a"]["counts"]) == 100
    assert len(hist["a"]["counts"]) == 4
    assert hist["const"]["counts"] == [100]
