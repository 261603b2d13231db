"""3-class maintenance activity (corrective / perfective / adaptive) on Levin & Yehudai's commits.

A benchmark model, not a registered one: the binary trainer does not fit a 3-class target, so
this module evaluates `text.maintenance_pipeline` itself and logs one MLflow run:

* leave-projects-out (`project`): each project's commits are predicted by a model trained on the
  other projects only; accuracy, macro F1 and Cohen's kappa over all held-out predictions, and
  per-project accuracy;
* a stratified 85/15 split (seed 0), the paper's setting, for comparison with its 76% accuracy;
* the majority-class baseline on both.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score
from sklearn.model_selection import train_test_split

from dataplatform.adapters.registry import configure_mlflow, ensure_experiment
from dataplatform.config import Settings
from dataplatform.train.lineage import Lineage
from dataplatform.train.text import maintenance_pipeline

CLASSES: tuple[str, ...] = ("corrective", "perfective", "adaptive")
MAINTENANCE_MODEL = "maintenance-activity"
PUBLISHED_ACCURACY = 0.76  # Levin & Yehudai 2017, 85/15 split, message keywords + code changes
REQUIRED_COLUMNS = ("label_id", "message", "maintenance_activity", "project")


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    """Held-out figures of the 3-class model and its majority baseline."""

    run_id: str
    n_rows: int
    n_projects: int
    lopo: dict[str, float]  # accuracy, macro_f1, kappa (leave-projects-out)
    holdout: dict[str, float]  # same on the stratified 85/15 split
    baseline_lopo_accuracy: float
    baseline_holdout_accuracy: float
    per_project_accuracy: dict[str, float] = field(default_factory=dict)


def multiclass_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """accuracy, macro F1 and Cohen's kappa of string class predictions."""
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0.0)),
        "kappa": float(cohen_kappa_score(y_true, y_pred)),
    }


def leave_projects_out(frame: pd.DataFrame) -> np.ndarray:
    """Prediction for every row from a model that never saw the row's project."""
    predicted = np.empty(len(frame), dtype=object)
    projects = frame["project"].astype(str).to_numpy()
    for project in sorted(set(projects)):
        held = projects == project
        model = maintenance_pipeline()
        model.fit(frame.loc[~held, ["message"]], frame.loc[~held, "maintenance_activity"])
        predicted[held] = model.predict(frame.loc[held, ["message"]])
    return predicted


def majority_class(train_labels: pd.Series) -> str:
    """The most frequent class (ties broken by class name)."""
    counts = train_labels.value_counts()
    return str(sorted(counts[counts == counts.max()].index)[0])


def evaluate_maintenance(
    frame: pd.DataFrame, settings: Settings, *, lineage: Lineage
) -> MaintenanceResult:
    """Evaluate the 3-class model on `frame` (analytics.labelled_maintenance_commits), log a run."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"maintenance frame lacks columns {missing}")
    frame = frame.sort_values("label_id").reset_index(drop=True)
    truth = frame["maintenance_activity"].astype(str).to_numpy()
    lopo_pred = leave_projects_out(frame)
    lopo = multiclass_metrics(truth, lopo_pred)
    projects = frame["project"].astype(str)
    per_project = {
        p: float(accuracy_score(truth[(projects == p).to_numpy()], lopo_pred[projects == p]))
        for p in sorted(set(projects))
    }
    # Majority baseline, leave-projects-out: the majority of the other projects.
    base_lopo = np.array(
        [majority_class(frame.loc[projects != p, "maintenance_activity"]) for p in projects]
    )
    train, test = train_test_split(
        frame, test_size=0.15, random_state=0, stratify=frame["maintenance_activity"]
    )
    model = maintenance_pipeline()
    model.fit(train[["message"]], train["maintenance_activity"])
    holdout_pred = model.predict(test[["message"]])
    holdout = multiclass_metrics(test["maintenance_activity"].to_numpy(), holdout_pred)
    base_holdout = float(
        np.mean(test["maintenance_activity"] == majority_class(train["maintenance_activity"]))
    )
    result_args = {
        "n_rows": len(frame),
        "n_projects": len(per_project),
        "lopo": lopo,
        "holdout": holdout,
        "baseline_lopo_accuracy": float(accuracy_score(truth, base_lopo)),
        "baseline_holdout_accuracy": base_holdout,
        "per_project_accuracy": per_project,
    }
    run_id = _log_run(settings, lineage, frame, truth, lopo_pred, result_args)
    return MaintenanceResult(run_id=run_id, **result_args)  # type: ignore[arg-type]


def _log_run(
    settings: Settings,
    lineage: Lineage,
    frame: pd.DataFrame,
    truth: np.ndarray,
    lopo_pred: np.ndarray,
    figures: dict[str, object],
) -> str:
    import mlflow
    import sklearn

    client = configure_mlflow(settings)
    experiment_id = ensure_experiment(client, settings)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    tags = {
        "git_commit": lineage.git_commit,
        "git_branch": lineage.git_branch,
        "training_date": now,
        "framework": "scikit-learn",
        "framework_version": sklearn.__version__,
        "spec_name": MAINTENANCE_MODEL,
        "training_mart": "analytics.labelled_maintenance_commits",
        "run_role": "benchmark",
    }
    estimator = maintenance_pipeline()
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"{MAINTENANCE_MODEL}-{now[:19].replace(':', '')}",
        tags=tags,
    ) as run:
        mlflow.log_params(
            {
                "estimator.steps": " -> ".join(
                    f"{n}:{type(s).__name__}" for n, s in estimator.steps
                ),
                "classifier.C": estimator.named_steps["classifier"].C,
                "classifier.class_weight": str(estimator.named_steps["classifier"].class_weight),
                "n_rows": figures["n_rows"],
                "n_projects": figures["n_projects"],
                "evaluation": "leave-projects-out (project) + stratified 85/15 split, seed 0",
                "published_accuracy": PUBLISHED_ACCURACY,
            }
        )
        lopo = figures["lopo"]
        holdout = figures["holdout"]
        assert isinstance(lopo, dict)
        assert isinstance(holdout, dict)
        mlflow.log_metrics(
            {
                **{f"lopo_{k}": v for k, v in lopo.items()},
                **{f"holdout_{k}": v for k, v in holdout.items()},
                "baseline_lopo_accuracy": float(figures["baseline_lopo_accuracy"]),  # type: ignore[arg-type]
                "baseline_holdout_accuracy": float(figures["baseline_holdout_accuracy"]),  # type: ignore[arg-type]
            }
        )
        matrix = confusion_matrix(truth, lopo_pred, labels=list(CLASSES))
        with tempfile.TemporaryDirectory(prefix="dataplatform-maintenance-") as tmp:
            path = Path(tmp) / "lopo_evaluation.json"
            path.write_text(
                json.dumps(
                    {
                        "classes": list(CLASSES),
                        "confusion_matrix_rows_truth": matrix.tolist(),
                        "per_project_accuracy": figures["per_project_accuracy"],
                        "n_per_project": frame["project"].value_counts().sort_index().to_dict(),
                    },
                    indent=2,
                )
            )
            mlflow.log_artifact(str(path), artifact_path="evaluation")
        return str(run.info.run_id)
