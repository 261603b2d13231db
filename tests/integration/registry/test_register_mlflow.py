"""register_model and configure_mlflow against a real SQLite MLflow store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dataplatform.adapters.registry import configure_mlflow
from dataplatform.config import Settings, get_settings
from dataplatform.features import FEATURE_COLUMNS
from dataplatform.registry.register import register_model
from dataplatform.train.lineage import Lineage
from dataplatform.train.specs import COMMIT_CLASSIFIER
from dataplatform.train.trainer import TrainResult, train_model

pytestmark = pytest.mark.slow


def small_mart(n: int = 120, shift: int = 0) -> pd.DataFrame:
    """Mart-shaped rows where merges have no diff, like real git history."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    merge = [i % 3 == 0 for i in range(n)]
    data = {c: [0] * n for c in FEATURE_COLUMNS}
    data.update(
        files_changed=[0 if m else 1 + (i + shift) % 7 for i, m in enumerate(merge)],
        lines_added=[0 if m else 5 + i for i, m in enumerate(merge)],
        mentions_merge=[int(m) for m in merge],
        commit_key=[f"o/r:{i:040x}" for i in range(n)],
        repo=["o/r"] * n,
        message=["Merge branch x" if m else "Fix thing" for m in merge],
        committed_at=[t0 + timedelta(hours=i) for i in range(n)],
        is_merge_commit=merge,
    )
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return get_settings(home=tmp_path_factory.mktemp("home"), mlflow_experiment="registry-test")


@pytest.fixture(scope="module")
def first_run(settings: Settings) -> TrainResult:
    return train_model(COMMIT_CLASSIFIER, small_mart(), settings, lineage=Lineage())


def test_configure_creates_the_experiment_with_the_artifact_root(settings: Settings) -> None:
    client = configure_mlflow(settings)
    experiment = client.get_experiment_by_name("registry-test")
    assert experiment is not None
    assert experiment.artifact_location == settings.artifact_uri
    assert (settings.home / "mlflow.db").exists()
    # a second call reuses it
    again = configure_mlflow(settings).get_experiment_by_name("registry-test")
    assert again is not None
    assert again.experiment_id == experiment.experiment_id


def test_configure_restores_a_deleted_experiment(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path, mlflow_experiment="gone")
    client = configure_mlflow(settings)
    experiment_id = client.get_experiment_by_name("gone").experiment_id
    client.delete_experiment(experiment_id)
    configure_mlflow(settings)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_registration_is_idempotent_per_run(settings: Settings, first_run: TrainResult) -> None:
    first = register_model(settings, first_run, COMMIT_CLASSIFIER)
    again = register_model(settings, first_run, COMMIT_CLASSIFIER)
    assert (first.version, first.created) == (1, True)
    assert (again.version, again.created, again.run_id) == (1, False, first_run.run_id)
    client = configure_mlflow(settings)
    versions = client.search_model_versions("name = 'commit-classifier'")
    assert [int(v.version) for v in versions] == [1]
    assert first.tags["dataset_version"] == first_run.dataset_version
    assert first.tags["git_commit"] == "unknown"
    assert first.tags["feature_columns"].split(",") == FEATURE_COLUMNS
    assert client.get_registered_model("commit-classifier").description


def test_a_new_run_becomes_the_next_version(settings: Settings, first_run: TrainResult) -> None:
    register_model(settings, first_run, COMMIT_CLASSIFIER)
    second_run = train_model(COMMIT_CLASSIFIER, small_mart(shift=3), settings, lineage=Lineage())
    assert second_run.dataset_version != first_run.dataset_version
    second = register_model(settings, second_run, COMMIT_CLASSIFIER)
    assert (second.version, second.run_id, second.created) == (2, second_run.run_id, True)
    version = configure_mlflow(settings).get_model_version("commit-classifier", "2")
    assert version.run_id == second_run.run_id
    assert "commit-classifier v2" in version.description
