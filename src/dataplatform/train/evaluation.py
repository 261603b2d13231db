"""Pure evaluation helpers: binary metrics, per-slice F1, confusion-matrix figure."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

METRIC_NAMES = ("f1_score", "accuracy", "precision", "recall")


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """accuracy, f1_score, precision, recall of the positive class (0.0 when undefined)."""
    return {
        "f1_score": float(f1_score(y_true, y_pred, zero_division=0.0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0.0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0.0)),
    }


def f1_by_slice(slices: pd.Series, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """F1 per slice value (e.g. repository), sorted by slice.

    F1 = 2TP / (2TP + FP + FN). A slice with no positives in truth and none predicted has nothing
    to measure (0/0): it gets NaN, not 0 or 1, so that it cannot flatter or sink an average. A slice
    without true positives but with false alarms gets 0.0, which is what it deserves.
    """
    result: dict[str, float] = {}
    values = slices.astype(str).to_numpy()
    for name in sorted(set(values)):
        mask = values == name
        result[name] = float(f1_score(y_true[mask], y_pred[mask], zero_division=np.nan))
    return result


def slice_metric_name(metric: str, slice_name: str, value: str) -> str:
    """MLflow-safe metric name, e.g. `f1_score__repo__pallets__flask` for repo `pallets/flask`."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", value.replace("/", "__"))
    return f"{metric}__{slice_name}__{safe}"


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """Only the defined values (MLflow shows NaN metrics poorly)."""
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


def save_confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, path: Path, *, title: str
) -> Path:
    """Write a labelled confusion-matrix PNG (rows: truth, columns: prediction) to `path`."""
    import matplotlib

    matplotlib.use("Agg")  # headless: training runs in jobs and tests, never on a display
    import matplotlib.pyplot as plt

    matrix = confusion_matrix(y_true, y_pred, labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=100)
    try:
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks([0, 1], labels=["0", "1"])
        ax.set_yticks([0, 1], labels=["0", "1"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=10)
        high = matrix.max() / 2 if matrix.size else 0
        for (row, col), count in np.ndenumerate(matrix):
            ax.text(
                col,
                row,
                str(count),
                ha="center",
                va="center",
                color="white" if count > high else "black",
            )
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def feature_histograms(frame: pd.DataFrame, columns: list[str], bins: int = 10) -> dict[str, dict]:
    """Per-column quantile bin edges and counts of `frame` (the drift reference for PSI).

    Edges are unique quantiles of the training values; monitoring bins current data with the same
    edges (values outside fall in the first/last bin) and compares the proportions.
    """
    result: dict[str, dict] = {}
    for name in columns:
        values = frame[name].to_numpy(dtype="float64")
        edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
        if edges.size < 2:  # constant column: one bin around the value
            edges = np.array([edges[0], edges[0]])
        inner = edges[1:-1]
        counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=edges.size - 1)
        result[name] = {
            "edges": edges.tolist(),
            "counts": counts.tolist(),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "n": int(values.size),
        }
    return result
