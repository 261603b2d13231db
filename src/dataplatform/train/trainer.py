"""Fit a `ModelSpec` on a mart frame, evaluate it against its baseline, log everything to MLflow.

The caller (pipeline) reads the mart into a DataFrame and computes the `Lineage`; this module
splits by time, fits, evaluates and records one MLflow run:

* params: estimator hyper-parameters (`estimator.*`), split cutoff, row counts, spec, columns;
* metrics: `f1_score`, `accuracy`, `precision`, `recall`, `baseline_*`, per-slice
  `f1_score__repo__<owner>__<name>` (only where defined), timings;
* artifacts: the model (`name="model"`, skops format, signature, input example, explicit pip
  requirements), `evaluation/` (confusion matrices, per-slice table), `reference/` (training
  feature sample + histograms: the drift reference for monitoring);
* tags: lineage (git_commit, git_branch, training_date, dataset_version, framework, ...);
* a nested `baseline` run with the baseline's own metrics and confusion matrix.
"""

from __future__ import annotations

import json
import math
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataplatform.adapters.registry import configure_mlflow, ensure_experiment
from dataplatform.config import Settings
from dataplatform.train.evaluation import (
    binary_metrics,
    f1_by_slice,
    feature_histograms,
    finite,
    save_confusion_matrix,
    slice_metric_name,
)
from dataplatform.train.lineage import Lineage
from dataplatform.train.specs import ModelSpec
from dataplatform.train.split import dataset_version

Progress = Callable[[str], None]

MODEL_ARTIFACT = "model"  # registered as runs:/<run_id>/model
REFERENCE_SAMPLE_ROWS = 5_000
# What the served model needs, pinned to what trained it (inference does not have to guess).
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")


class TrainingDataError(ValueError):
    """The training frame does not fit the spec (missing columns, nulls, duplicate keys, ...)."""


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Outcome of one training run; `per_repo_f1` values are NaN where F1 is undefined."""

    run_id: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    per_repo_f1: dict[str, float]
    dataset_version: str
    model_uri: str  # runs:/<run_id>/model
    n_train: int
    n_test: int
    cutoff: str
    spec_name: str = ""
    model_id: str = ""  # MLflow 3 LoggedModel id (models:/<model_id>)
    baseline_per_repo_f1: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # lineage tags, also on the run
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step


def train_model(
    spec: ModelSpec,
    frame: pd.DataFrame,
    settings: Settings,
    *,
    lineage: Lineage,
    progress: Progress | None = None,
) -> TrainResult:
    """Split `frame` by the spec, fit, evaluate model and baseline on test, log one MLflow run.

    Raises `TrainingDataError` when `frame` lacks columns, has nulls in inputs/target, duplicate
    keys, or a single class in the training window; `SplitError` when a side would be empty.
    """
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    _validate(spec, frame)
    used = _used_columns(spec)
    version_hash = dataset_version(frame, spec.key_column, used)

    split = spec.split.split(frame.loc[:, [spec.key_column, *used]], spec.key_column)
    train, test = split.train, split.test
    overlap = set(train[spec.key_column]) & set(test[spec.key_column])
    assert not overlap, f"leakage: {len(overlap)} keys in train and test"
    y_train = train[spec.target].astype("int64").to_numpy()
    y_test = test[spec.target].astype("int64").to_numpy()
    if len(np.unique(y_train)) < 2:
        raise TrainingDataError(f"training window has a single class of {spec.target!r}")
    say(f"split at {split.cutoff}: {len(train)} train / {len(test)} test rows")

    x_train, x_test = train[spec.input_columns], test[spec.input_columns]
    estimator = spec.estimator_factory()
    with _timed(timings, "fit"):
        estimator.fit(x_train, y_train)
    y_pred = np.asarray(estimator.predict(x_test), dtype="int64")
    y_base = spec.baseline.predict(test)
    metrics = binary_metrics(y_test, y_pred)
    baseline_metrics = binary_metrics(y_test, y_base)
    per_slice: dict[str, float] = {}
    base_slice: dict[str, float] = {}
    if spec.slice_column:
        per_slice = f1_by_slice(test[spec.slice_column], y_test, y_pred)
        base_slice = f1_by_slice(test[spec.slice_column], y_test, y_base)
    say(f"test f1 {metrics['f1_score']:.4f} (baseline {baseline_metrics['f1_score']:.4f})")

    tags = _lineage_tags(spec, lineage, version_hash)
    with _timed(timings, "mlflow_setup"):
        client = configure_mlflow(settings)
        experiment_id = ensure_experiment(client, settings)
    import mlflow

    run_name = f"{spec.name}-{tags['training_date'][:19].replace(':', '')}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        run_id = run.info.run_id
        mlflow.set_tag("run_role", "model")
        # `_validate` refused the frame otherwise; the promotion gate reads this tag.
        mlflow.set_tags({"data_checks_passed": "true", "data_checks": DATA_CHECKS})
        mlflow.log_params(
            {
                **_estimator_params(estimator),
                **split.params,
                "spec_name": spec.name,
                "training_mart": spec.training_mart,
                "target": spec.target,
                "input_columns": json.dumps(spec.input_columns),
                "baseline_rule": spec.baseline.description,
                "n_rows": len(frame),
                "n_train": len(train),
                "n_test": len(test),
                "n_train_positive": int(y_train.sum()),
                "n_test_positive": int(y_test.sum()),
            }
        )
        all_metrics = {
            **metrics,
            **{f"baseline_{k}": v for k, v in baseline_metrics.items()},
            **_slice_metrics(spec, test, y_test, per_slice, base_slice),
        }
        mlflow.log_metrics(all_metrics)
        with tempfile.TemporaryDirectory(prefix="dataplatform-train-") as tmp:
            out = Path(tmp)
            with _timed(timings, "artifacts"):
                _log_evaluation(out, spec, y_test, y_pred, y_base, per_slice, base_slice)
                _log_reference(out, spec, train, estimator)
            say("logging model")
            with _timed(timings, "log_model"):
                model_info = _log_model(estimator, x_train, y_pred_like=estimator.predict(x_train))
        # Link the headline metrics to the LoggedModel too (MLflow 3 "Logged Models" view).
        mlflow.log_metrics(metrics, model_id=model_info.model_id)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{run_name}-baseline", nested=True, tags=tags
        ):
            mlflow.set_tag("run_role", "baseline")
            mlflow.log_param("baseline_rule", spec.baseline.description)
            mlflow.log_metrics(baseline_metrics)
            with tempfile.TemporaryDirectory(prefix="dataplatform-baseline-") as tmp:
                png = save_confusion_matrix(
                    y_test,
                    y_base,
                    Path(tmp) / "confusion_matrix.png",
                    title=f"baseline: {spec.baseline.description}",
                )
                mlflow.log_artifact(str(png), artifact_path="evaluation")
        mlflow.log_metrics({f"time_{k}_seconds": v for k, v in timings.items()})
    say(f"run {run_id} logged")
    return TrainResult(
        run_id=run_id,
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        per_repo_f1=per_slice,
        dataset_version=version_hash,
        model_uri=f"runs:/{run_id}/{MODEL_ARTIFACT}",
        n_train=len(train),
        n_test=len(test),
        cutoff=split.cutoff,
        spec_name=spec.name,
        model_id=str(model_info.model_id or ""),
        baseline_per_repo_f1=base_slice,
        tags=tags,
        timings=timings,
    )


def pip_requirements() -> list[str]:
    """Pinned requirements of the served model, from the versions installed here."""
    pins = []
    for name in RUNTIME_PACKAGES:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:  # e.g. scipy vendored differently: leave it to the resolver
            continue
    return pins


# --- helpers -------------------------------------------------------------------------------


def _used_columns(spec: ModelSpec) -> list[str]:
    wanted = [
        spec.target,
        *spec.input_columns,
        *spec.baseline.columns,
        *([spec.slice_column] if spec.slice_column else []),
        *[c for c in (getattr(spec.split, "column", None),) if c],
    ]
    return list(dict.fromkeys(c for c in wanted if c != spec.key_column))


DATA_CHECKS = (
    "columns present; non-empty; no nulls in features or target; unique keys; binary target; "
    "both classes in the training window"
)


def training_dataset_version(spec: ModelSpec, frame: pd.DataFrame) -> str:
    """The `dataset_version` tag `train_model` would give a run on `frame` (sha256 hex)."""
    return dataset_version(frame, spec.key_column, _used_columns(spec))


def _validate(spec: ModelSpec, frame: pd.DataFrame) -> None:
    needed = [spec.key_column, *_used_columns(spec)]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise TrainingDataError(f"training frame lacks columns {missing} for spec {spec.name!r}")
    if frame.empty:
        raise TrainingDataError(f"training frame for spec {spec.name!r} is empty")
    nulls = [c for c in [spec.target, *spec.feature_columns] if frame[c].isna().any()]
    if nulls:
        raise TrainingDataError(f"null values in {nulls} (features and target must be complete)")
    dupes = frame[spec.key_column].duplicated()
    if dupes.any():
        example = frame.loc[dupes, spec.key_column].iloc[0]
        raise TrainingDataError(f"{int(dupes.sum())} duplicate keys, e.g. {example!r}")
    labels = set(pd.unique(frame[spec.target].astype("int64")))
    if not labels <= {0, 1}:
        raise TrainingDataError(f"target {spec.target!r} must be binary, got {sorted(labels)}")


def _lineage_tags(spec: ModelSpec, lineage: Lineage, version_hash: str) -> dict[str, str]:
    import sklearn

    return {
        "git_commit": lineage.git_commit,
        "git_branch": lineage.git_branch,
        "training_date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset_version": version_hash,
        "framework": "scikit-learn",
        "framework_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "spec_name": spec.name,
        "training_mart": spec.training_mart,
    }


def _estimator_params(estimator: Any) -> dict[str, Any]:
    # Scalar hyper-parameters only; nested estimator objects would log as unreadable reprs.
    params = {}
    for key, value in estimator.get_params(deep=True).items():
        if value is None or isinstance(value, bool | int | float | str):
            params[f"estimator.{key}"] = value
        elif callable(value) and hasattr(value, "__name__"):
            params[f"estimator.{key}"] = value.__name__
    params["estimator.class"] = type(estimator).__name__
    steps = getattr(estimator, "steps", None)
    if steps:
        params["estimator.steps"] = " -> ".join(f"{n}:{type(s).__name__}" for n, s in steps)
    return params


def _slice_metrics(
    spec: ModelSpec,
    test: pd.DataFrame,
    y_test: np.ndarray,
    per_slice: dict[str, float],
    base_slice: dict[str, float],
) -> dict[str, float]:
    if not spec.slice_column:
        return {}
    name = spec.slice_column
    values = test[name].astype(str).to_numpy()
    result: dict[str, float] = {}
    for key, f1 in finite(per_slice).items():
        result[slice_metric_name("f1_score", name, key)] = f1
    for key, f1 in finite(base_slice).items():
        result[slice_metric_name("baseline_f1_score", name, key)] = f1
    for key in per_slice:
        mask = values == key
        result[slice_metric_name("test_rows", name, key)] = float(mask.sum())
        result[slice_metric_name("test_positives", name, key)] = float(y_test[mask].sum())
    return result


def _log_evaluation(
    out: Path,
    spec: ModelSpec,
    y_test: np.ndarray,
    y_pred: np.ndarray,
    y_base: np.ndarray,
    per_slice: dict[str, float],
    base_slice: dict[str, float],
) -> None:
    import mlflow

    png = save_confusion_matrix(
        y_test, y_pred, out / "confusion_matrix.png", title=f"{spec.name} (test)"
    )
    mlflow.log_artifact(str(png), artifact_path="evaluation")
    png = save_confusion_matrix(
        y_test,
        y_base,
        out / "baseline_confusion_matrix.png",
        title=f"baseline: {spec.baseline.description}",
    )
    mlflow.log_artifact(str(png), artifact_path="evaluation")
    if spec.slice_column:
        table = {
            key: {
                "f1_score": None if math.isnan(f1) else f1,
                "baseline_f1_score": None if math.isnan(base_slice[key]) else base_slice[key],
            }
            for key, f1 in per_slice.items()
        }
        note = "null = undefined: no positives in truth and none predicted in this slice"
        mlflow.log_dict(
            {"slice_column": spec.slice_column, "note": note, "slices": table},
            f"evaluation/f1_by_{spec.slice_column}.json",
        )


def _log_reference(out: Path, spec: ModelSpec, train: pd.DataFrame, estimator: Any) -> None:
    """Drift reference: a sample of training inputs with predictions, and feature histograms."""
    import mlflow

    sample = train.sample(n=min(REFERENCE_SAMPLE_ROWS, len(train)), random_state=0)
    sample = sample.sort_values(spec.key_column).reset_index(drop=True)
    reference = sample[[spec.key_column, *spec.input_columns, spec.target]].copy()
    proba = getattr(estimator, "predict_proba", None)
    if proba is not None:
        reference["predicted_proba"] = proba(sample[spec.input_columns])[:, 1]
    path = out / "train_reference_sample.parquet"
    reference.to_parquet(path, index=False)
    mlflow.log_artifact(str(path), artifact_path="reference")
    mlflow.log_dict(
        {
            "spec_name": spec.name,
            "n_train": len(train),
            "features": feature_histograms(train, spec.feature_columns),
            "target_rate": float(train[spec.target].astype("int64").mean()),
        },
        "reference/feature_histograms.json",
    )


def _log_model(estimator: Any, x_train: pd.DataFrame, *, y_pred_like: Any) -> Any:
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    # Trust exactly the types of the estimator we just built (e.g. HistGradientBoosting's
    # TreePredictor); loading still requires MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true.
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(estimator)) or None
    with warnings.catch_warnings():
        # MLflow hints that int columns cannot hold missing values: ours never do (mart contract).
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(x_train, np.asarray(y_pred_like, dtype="int64"))
    return mlflow.sklearn.log_model(
        estimator,
        name=MODEL_ARTIFACT,
        serialization_format="skops",
        skops_trusted_types=trusted,
        signature=signature,
        input_example=x_train.head(5),
        pip_requirements=pip_requirements(),
    )


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(time.perf_counter() - start, 3)
