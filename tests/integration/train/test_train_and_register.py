"""Train the commit classifier on real commits into a real MLflow store, register, load, predict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from dataplatform.adapters.registry import configure_mlflow
from dataplatform.config import Settings, get_settings
from dataplatform.features import FEATURE_COLUMNS
from dataplatform.registry.register import RegisteredVersion, register_model
from dataplatform.train.lineage import Lineage
from dataplatform.train.specs import COMMIT_CLASSIFIER
from dataplatform.train.trainer import TrainResult, train_model

pytestmark = pytest.mark.slow

LINEAGE = Lineage(git_commit="0123456789abcdef0123456789abcdef01234567", git_branch="main")
LINEAGE_TAGS = {
    "git_commit",
    "git_branch",
    "training_date",
    "dataset_version",
    "framework",
    "framework_version",
    "python_version",
    "spec_name",
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return get_settings(home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def trained(settings: Settings, merge_feature_frame: pd.DataFrame) -> TrainResult:
    messages: list[str] = []
    result = train_model(
        COMMIT_CLASSIFIER, merge_feature_frame, settings, lineage=LINEAGE, progress=messages.append
    )
    assert messages, "progress callback was never called"
    return result


@pytest.fixture(scope="module")
def registered(settings: Settings, trained: TrainResult) -> RegisteredVersion:
    return register_model(settings, trained, COMMIT_CLASSIFIER)


def test_model_beats_the_baseline_and_the_bar(trained: TrainResult) -> None:
    assert trained.metrics["f1_score"] >= 0.80
    assert trained.metrics["f1_score"] > trained.baseline_metrics["f1_score"]
    assert set(trained.per_repo_f1) == {"pallets/flask", "psf/requests"}
    assert all(not math.isnan(v) for v in trained.per_repo_f1.values())


def test_split_is_by_time(trained: TrainResult, merge_feature_frame: pd.DataFrame) -> None:
    cutoff = pd.Timestamp(trained.cutoff)
    assert trained.n_train == int((merge_feature_frame["committed_at"] < cutoff).sum())
    assert trained.n_test == len(merge_feature_frame) - trained.n_train
    assert 0.15 < trained.n_test / len(merge_feature_frame) < 0.25


def test_run_has_params_metrics_tags_and_artifacts(
    settings: Settings, trained: TrainResult
) -> None:
    client = configure_mlflow(settings)
    run = client.get_run(trained.run_id)
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    for name in ("f1_score", "accuracy", "precision", "recall", "baseline_f1_score"):
        assert metrics[name] == pytest.approx(
            (trained.baseline_metrics if name.startswith("baseline_") else trained.metrics)[
                name.removeprefix("baseline_")
            ]
        )
    assert metrics["f1_score__repo__pallets__flask"] == pytest.approx(
        trained.per_repo_f1["pallets/flask"]
    )
    assert "f1_score__repo__psf__requests" in metrics
    assert params["split_cutoff"] == trained.cutoff
    assert int(params["n_train"]) == trained.n_train
    assert int(params["n_test"]) == trained.n_test
    assert params["estimator.classifier__class_weight"] == "balanced"
    assert set(tags) >= LINEAGE_TAGS
    assert tags["git_commit"] == LINEAGE.git_commit
    assert tags["git_branch"] == "main"
    assert tags["dataset_version"] == trained.dataset_version
    assert tags["framework"] == "scikit-learn"

    run_files = _artifact_paths(client, trained.run_id)
    assert {
        "evaluation/confusion_matrix.png",
        "evaluation/f1_by_repo.json",
        "reference/feature_histograms.json",
        "reference/train_reference_sample.parquet",
    } <= run_files
    png = Path(client.download_artifacts(trained.run_id, "evaluation/confusion_matrix.png"))
    assert png.read_bytes()[:4] == b"\x89PNG"
    hist = json.loads(
        Path(
            client.download_artifacts(trained.run_id, "reference/feature_histograms.json")
        ).read_text()
    )
    assert set(hist["features"]) == set(FEATURE_COLUMNS)
    sample = pd.read_parquet(
        client.download_artifacts(trained.run_id, "reference/train_reference_sample.parquet")
    )
    assert set(FEATURE_COLUMNS) <= set(sample.columns)
    assert "predicted_proba" in sample.columns
    # MLflow 3: the model lives in a LoggedModel linked to the run, not in run artifacts.
    logged = client.get_logged_model(trained.model_id)
    assert logged.source_run_id == trained.run_id
    assert logged.name == "model"

    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{trained.run_id}'"
    )
    assert [c.data.tags["run_role"] for c in children] == ["baseline"]
    assert children[0].data.metrics["f1_score"] == pytest.approx(
        trained.baseline_metrics["f1_score"]
    )


def test_registered_as_version_one_with_lineage(
    settings: Settings, trained: TrainResult, registered: RegisteredVersion
) -> None:
    assert (registered.name, registered.version, registered.run_id) == (
        "commit-classifier",
        1,
        trained.run_id,
    )
    assert set(registered.tags) >= LINEAGE_TAGS
    version = configure_mlflow(settings).get_model_version("commit-classifier", "1")
    assert f"{trained.metrics['f1_score']:.4f}" in version.description
    assert version.tags["dataset_version"] == trained.dataset_version


def test_registered_model_loads_and_predicts_the_test_rows(
    settings: Settings,
    trained: TrainResult,
    registered: RegisteredVersion,
    merge_feature_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow.pyfunc

    # MLflow 3.17 refuses to deserialise any sklearn model (even skops) without this opt-in.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    configure_mlflow(settings)
    model = mlflow.pyfunc.load_model("models:/commit-classifier/1")
    test = merge_feature_frame[merge_feature_frame["committed_at"] >= pd.Timestamp(trained.cutoff)]
    predictions = np.asarray(model.predict(test[FEATURE_COLUMNS]))
    assert predictions.shape == (trained.n_test,)
    truth = test["is_merge_commit"].astype(int).to_numpy()
    accuracy = float((predictions == truth).mean())
    assert accuracy == pytest.approx(trained.metrics["accuracy"])
    assert model.metadata.get_input_schema().input_names() == FEATURE_COLUMNS


def _artifact_paths(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    found: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found
