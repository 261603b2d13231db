"""Shared world of the registry integration tests (helpers + fixtures, re-exported by conftest).

Models are small real sklearn estimators saved once per session; each registered version gets
its own MLflow run (metrics, tags) and points at one of those saved models. The MLflow store is
a real SQLite file, the warehouse a real DuckDB file (PostgreSQL tests build their own).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dataplatform.adapters.notify import NotifyResult
from dataplatform.adapters.registry import configure_mlflow
from dataplatform.adapters.warehouse import DuckDBWarehouse
from dataplatform.config import Settings, get_settings
from dataplatform.registry.gates import Approval
from dataplatform.registry.lifecycle import ModelLifecycle
from dataplatform.registry.locks import FileLock
from dataplatform.registry.thresholds import load_thresholds

NAME = "commit-classifier"
COLUMNS = ["message_length", "files_changed", "lines_added"]
OK = Approval("alice", "reviewed the evaluation report")


def _frame(columns: list[str]) -> tuple[pd.DataFrame, list[int]]:
    rows = [[i * 7 % 50, i % 5, i * 3 % 40, i % 2] for i in range(40)]
    x = pd.DataFrame([r[: len(columns)] for r in rows], columns=columns, dtype="int64")
    return x, [r[3] for r in rows]


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved MLflow sklearn models: logistic / tree on COLUMNS, logistic on a wider signature."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    root = tmp_path_factory.mktemp("models")
    out = {}
    wide = [*COLUMNS, "has_issue_ref"]
    for key, est, cols in (
        ("logistic", LogisticRegression(max_iter=200), COLUMNS),
        ("tree", DecisionTreeClassifier(max_depth=2), COLUMNS),
        ("wide", LogisticRegression(max_iter=200), wide),
    ):
        x, y = _frame(cols)
        est.fit(x, y)
        path = root / key
        mlflow.sklearn.save_model(
            est,
            str(path),
            input_example=x.head(3),
            pip_requirements=["scikit-learn"],
            serialization_format="cloudpickle",
        )
        out[key] = path
    return out


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema migrated once (migrations take seconds)."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def settings(tmp_path: Path, empty_mlflow_db: Path) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(empty_mlflow_db, home / "mlflow.db")
    return get_settings(home=home)


@pytest.fixture
def client(settings: Settings) -> Any:
    return configure_mlflow(settings)


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(settings.warehouse_path)
    yield wh
    wh.close()


class RecordingNotifier:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def send(self, text: str) -> NotifyResult:
        self.messages.append(text)
        return NotifyResult(channel="test", delivered=True, attempts=1)


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def lifecycle(
    client: Any, warehouse: DuckDBWarehouse, settings: Settings, notifier: RecordingNotifier
) -> ModelLifecycle:
    return ModelLifecycle(
        client, warehouse, FileLock(settings.home / "locks"), load_thresholds(), notifier
    )


def register(
    client: Any,
    settings: Settings,
    model_dir: Path,
    *,
    f1: float = 0.9,
    baseline: float = 0.5,
    data_ok: bool | None = True,
    family: str = "LogisticRegression",
    run_id: str | None = None,
    name: str = NAME,
) -> str:
    """Register `model_dir` as a new version with its own run (or `run_id`'s); returns it."""
    import mlflow

    experiment = client.get_experiment_by_name(settings.mlflow_experiment).experiment_id
    if run_id is None:
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_metrics({"f1_score": f1, "baseline_f1_score": baseline})
            if data_ok is not None:
                mlflow.set_tag("data_checks_passed", str(data_ok).lower())
            mlflow.log_artifacts(str(model_dir), "model")
            run_id = run.info.run_id
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    mv = client.create_model_version(name, source, run_id=run_id, tags={"model_family": family})
    return str(mv.version)


def production_versions(client: Any, name: str = NAME) -> list[str]:
    return [
        str(mv.version)
        for mv in client.search_model_versions(f"name='{name}'")
        if "production" in client.get_model_version(name, mv.version).aliases
    ]
