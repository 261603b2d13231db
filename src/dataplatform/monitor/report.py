"""The Evidently HTML drift report: one file people can open, next to our own numbers.

Evidently 0.7's `DataDriftPreset` with ``method="psi"`` over the model's input features and a
`ValueDrift` with ``method="kl_div"`` over the predicted probability — the same tests, bins and
thresholds the monitor uses (our numpy values equal Evidently's; see tests/unit/monitor).
Evidently is imported only here and only when a report is written; its usage telemetry is off.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

PREDICTION_COLUMN = "predicted_proba"


def _quiet_evidently() -> None:
    # No network at run time: Evidently's (and iterative-telemetry's) usage tracking stays off.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("ITERATIVE_DO_NOT_TRACK", "1")


def write_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    path: Path,
    *,
    psi_threshold: float = 0.2,
    kl_threshold: float = 0.1,
    prediction_column: str | None = PREDICTION_COLUMN,
) -> Path:
    """Write the HTML report of `current` against `reference` to `path`; returns `path`."""
    _quiet_evidently()
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    columns = list(features)
    with_prediction = (
        prediction_column is not None
        and prediction_column in reference.columns
        and prediction_column in current.columns
    )
    if with_prediction:
        assert prediction_column is not None
        columns.append(prediction_column)
    definition = DataDefinition(numerical_columns=columns)
    metrics: list[object] = [
        DataDriftPreset(columns=list(features), method="psi", threshold=psi_threshold)
    ]
    if with_prediction:
        metrics.append(
            ValueDrift(column=str(prediction_column), method="kl_div", threshold=kl_threshold)
        )
    report = Report(metrics)
    snapshot = report.run(
        Dataset.from_pandas(current[columns].reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(reference[columns].reset_index(drop=True), data_definition=definition),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path


def evidently_values(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str],
    *,
    method: str = "psi",
) -> dict[str, float]:
    """Evidently's own drift value per column (used by the equality test and the benchmark)."""
    _quiet_evidently()
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(numerical_columns=list(columns))
    report = Report([ValueDrift(column=c, method=method) for c in columns])
    snapshot = report.run(
        Dataset.from_pandas(
            current[list(columns)].reset_index(drop=True), data_definition=definition
        ),
        Dataset.from_pandas(
            reference[list(columns)].reset_index(drop=True), data_definition=definition
        ),
    )
    values: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        column = config.get("column")
        if column is not None:
            values[str(column)] = float(metric["value"])
    return values
