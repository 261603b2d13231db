"""Registration helpers that need no MLflow store: description, URIs, UI command."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.adapters.registry import mlflow_ui_command
from dataplatform.config import get_settings
from dataplatform.registry.register import RegisteredVersion, describe_version


@dataclass
class FakeResult:
    run_id: str = "r1"
    metrics: dict[str, float] = field(
        default_factory=lambda: {
            "f1_score": 0.98765,
            "accuracy": 0.99,
            "precision": 1.0,
            "recall": 0.97,
        }
    )
    baseline_metrics: dict[str, float] = field(
        default_factory=lambda: {"f1_score": 0.9, "accuracy": 0.9, "precision": 0.9, "recall": 0.9}
    )
    per_repo_f1: dict[str, float] = field(default_factory=lambda: {"a/x": 1.0, "b/y": float("nan")})
    dataset_version: str = "ab" * 32
    n_train: int = 9616
    n_test: int = 2404
    cutoff: str = "2019-09-18T08:55:34+00:00"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeSpec:
    name: str = "commit-classifier"
    target: str = "is_merge_commit"
    training_mart: str = "analytics.commit_features"
    input_columns: list[str] = field(default_factory=lambda: ["files_changed", "mentions_merge"])
    description: str = "Is this commit a merge?"


def test_description_carries_real_numbers_and_marks_undefined_slices() -> None:
    text = describe_version(FakeSpec(), FakeResult(), 3)
    assert text.startswith("commit-classifier v3")
    assert "- f1_score: 0.9877 / 0.9000" in text
    assert "Training rows: 9,616; test rows: 2,404" in text
    assert "- b/y: n/a" in text
    assert "- a/x: 1.0000" in text
    assert "ab" * 32 in text


def test_registered_version_uri() -> None:
    assert RegisteredVersion("m", 2, "r").model_uri == "models:/m/2"


def test_ui_command_points_at_the_local_store(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path / "my home")
    command = mlflow_ui_command(settings)
    assert command.startswith("mlflow ui --backend-store-uri ")
    assert f"'sqlite:///{tmp_path}/my home/mlflow.db'" in command  # quoted: the path has a space
    assert "--default-artifact-root" in command
    assert "mlartifacts" in command


def test_ui_command_for_a_tracking_server() -> None:
    settings = get_settings(mlflow_tracking_uri="http://mlflow:5000")
    assert "http://mlflow:5000" in mlflow_ui_command(settings)
