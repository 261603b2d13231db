"""predict_batch against a real MLflow store (SQLite) and real DuckDB / PostgreSQL warehouses.

A small real commit-classifier (the spec's pipeline, logged like the trainer: sklearn flavor,
skops) is fitted on real commits of pallets/flask; the mart holds 300 of their feature rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dataplatform.adapters.registry import configure_mlflow
from dataplatform.adapters.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse
from dataplatform.config import Settings, get_settings
from dataplatform.contracts import CommitRecord
from dataplatform.features import compute_features
from dataplatform.ingest.datasets import iter_dataset
from dataplatform.serve.batch import (
    BATCHES_TABLE,
    PREDICTIONS_TABLE,
    BatchInferenceError,
    NoModelForAlias,
    ensure_predictions_table,
    predict_batch,
)
from dataplatform.train.specs import get_spec

NAME = "commit-classifier"
DATASET = (
    Path(
        os.environ.get(
            "DATAPLATFORM_DATASETS",
            str(Path(__file__).resolve().parents[3].parent / "shared" / "datasets"),
        )
    )
    / "commits"
    / "pallets__flask.jsonl.gz"
)
MART_ROWS = 300


@pytest.fixture(scope="module")
def feature_frame() -> pd.DataFrame:
    """Mart rows of 600 real flask commits (both classes present)."""
    if not DATASET.exists():
        pytest.skip(f"dataset {DATASET} not available")
    records = []
    for record in iter_dataset(DATASET):
        if isinstance(record, CommitRecord):
            records.append(record)
        if len(records) == 2 * MART_ROWS:
            break
    frame = compute_features(records)
    assert frame["is_merge_commit"].nunique() == 2
    return frame


@pytest.fixture(scope="module")
def estimators(feature_frame: pd.DataFrame) -> list[Any]:
    """Two fitted commit-classifier pipelines (different training rows → different versions)."""
    spec = get_spec(NAME)
    x, y = feature_frame[spec.input_columns], feature_frame[spec.target].astype("int64")
    first = spec.estimator_factory().fit(x, y)
    second = spec.estimator_factory().fit(x.iloc[::2], y.iloc[::2])
    return [first, second]


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Home of the module's MLflow store (logging and registering take seconds: done once)."""
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="module")
def versions(
    registry_home: Path, feature_frame: pd.DataFrame, estimators: list[Any]
) -> tuple[str, str]:
    """commit-classifier v1 (semver v1.0.0) and v2 (v1.1.0), registered once for the module."""
    settings = get_settings(home=registry_home)
    return (
        register(settings, estimators[0], feature_frame, "v1.0.0"),
        register(settings, estimators[1], feature_frame, "v1.1.0"),
    )


@pytest.fixture
def settings(tmp_path: Path, registry_home: Path, versions: tuple[str, str]) -> Settings:
    """Settings on a fresh home sharing the module's registry; no alias set."""
    shared = get_settings(home=registry_home)
    client = configure_mlflow(shared)
    for alias in client.get_registered_model(NAME).aliases:
        client.delete_registered_model_alias(NAME, alias)
    return get_settings(
        home=tmp_path / "home",
        mlflow_tracking_uri=shared.tracking_uri,
        mlflow_artifact_uri=shared.artifact_uri,
    )


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Warehouse]:
    wh: Warehouse
    if request.param == "postgres":
        wh = PostgresWarehouse(request.getfixturevalue("pg_db")["conninfo"])
    else:
        wh = DuckDBWarehouse(settings.warehouse_path)
    with wh:
        yield wh


def register(settings: Settings, estimator: Any, frame: pd.DataFrame, semver: str) -> str:
    """Log `estimator` like the trainer does and register it; returns the version."""
    import mlflow
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    spec = get_spec(NAME)
    configure_mlflow(settings)
    mlflow.set_experiment(settings.mlflow_experiment)
    x = frame[spec.input_columns]
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            estimator,
            name="model",
            serialization_format="skops",
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
            or None,
            signature=infer_signature(x, np.asarray(estimator.predict(x), dtype="int64")),
        )
    mv = mlflow.register_model(
        f"runs:/{run.info.run_id}/model",
        NAME,
        tags={"training_mart": spec.training_mart, "semver": semver},
    )
    return str(mv.version)


def set_alias(settings: Settings, version: str, alias: str = "production") -> None:
    configure_mlflow(settings).set_registered_model_alias(NAME, alias, version)


def create_mart(warehouse: Warehouse, frame: pd.DataFrame) -> None:
    """analytics.commit_features with the frame's rows (portable DDL, row inserts)."""
    spec = get_spec(NAME)
    types = {
        "commit_key": "TEXT",
        "repo": "TEXT",
        "commit_sha": "TEXT",
        "is_merge_commit": "BOOLEAN",
    }
    columns = {**types, **dict.fromkeys(spec.feature_columns, "BIGINT")}
    warehouse.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    ddl = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    warehouse.execute(f"CREATE TABLE IF NOT EXISTS analytics.commit_features ({ddl})")
    insert_rows(warehouse, frame)


def insert_rows(warehouse: Warehouse, frame: pd.DataFrame) -> None:
    spec = get_spec(NAME)
    names = ["commit_key", "repo", "commit_sha", "is_merge_commit", *spec.feature_columns]
    sql = (
        f"INSERT INTO analytics.commit_features ({', '.join(names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    for row in frame[names].astype(object).itertuples(index=False):
        warehouse.execute(sql, [None if pd.isna(v) else v for v in row])


def predictions(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.query_df(
        f"SELECT * FROM {PREDICTIONS_TABLE} ORDER BY model_version, commit_key"
    )


def test_scores_every_row_once_stamped_with_the_version(
    settings: Settings,
    warehouse: Warehouse,
    feature_frame: pd.DataFrame,
    estimators: list[Any],
    versions: tuple[str, str],
) -> None:
    mart = feature_frame.head(MART_ROWS)
    create_mart(warehouse, mart)
    version = versions[0]
    set_alias(settings, version)
    messages: list[str] = []

    result = predict_batch(settings, warehouse, batch_size=70, progress=messages.append)

    assert (result.rows_scored, result.rows_already_scored, result.rows_invalid) == (300, 0, 0)
    assert result.chunks == 5  # 70+70+70+70+20
    assert (result.model_version, result.semver, result.alias) == (
        int(version),
        "v1.0.0",
        "production",
    )
    assert result.label == "v1.0.0-production"
    rows = predictions(warehouse)
    assert sorted(rows["commit_key"]) == sorted(mart["commit_key"])
    assert set(rows["model_name"]) == {NAME}
    assert set(rows["model_version"].astype(int)) == {int(version)}
    assert set(rows["semver"]) == {"v1.0.0"}
    assert set(rows["alias"]) == {"production"}
    assert set(rows["batch_id"]) == {result.batch_id}
    assert rows["scored_at"].notna().all()
    # The stored predictions are the model's own, row for row.
    spec = get_spec(NAME)
    by_key = mart.set_index("commit_key").loc[rows["commit_key"], spec.input_columns]
    expected_class = estimators[0].predict(by_key)
    expected_proba = estimators[0].predict_proba(by_key)[:, 1]
    assert np.array_equal(rows["predicted_class"].astype(int).to_numpy(), expected_class)
    assert np.allclose(rows["probability"].astype(float).to_numpy(), expected_proba)
    assert rows["predicted_class"].astype(int).nunique() == 2
    assert any("chunk 5" in m for m in messages)
    batches = warehouse.query_df(f"SELECT * FROM {BATCHES_TABLE}")
    assert list(batches["batch_id"]) == [result.batch_id]
    assert int(batches["rows_scored"].iloc[0]) == 300


def test_rerun_adds_nothing_and_new_commits_only_are_scored(
    settings: Settings,
    warehouse: Warehouse,
    feature_frame: pd.DataFrame,
    estimators: list[Any],
    versions: tuple[str, str],
) -> None:
    create_mart(warehouse, feature_frame.head(MART_ROWS))
    set_alias(settings, versions[0])
    first = predict_batch(settings, warehouse, batch_size=128)

    again = predict_batch(settings, warehouse, batch_size=128)
    assert (again.rows_scored, again.rows_already_scored, again.chunks) == (0, 300, 0)
    assert len(predictions(warehouse)) == 300

    insert_rows(warehouse, feature_frame.iloc[MART_ROWS : MART_ROWS + 25])
    third = predict_batch(settings, warehouse, batch_size=128)
    assert (third.rows_scored, third.rows_already_scored) == (25, 300)
    rows = predictions(warehouse)
    assert len(rows) == 325
    new_keys = set(feature_frame["commit_key"].iloc[MART_ROWS : MART_ROWS + 25])
    assert set(rows.loc[rows["batch_id"] == third.batch_id, "commit_key"]) == new_keys
    assert (rows["batch_id"] == first.batch_id).sum() == 300
    # the run that scored nothing (alias unchanged) left no trace: re-runs change no table
    batch_ids = set(warehouse.query_df(f"SELECT batch_id FROM {BATCHES_TABLE}")["batch_id"])
    assert batch_ids == {first.batch_id, third.batch_id}


def test_promoting_a_new_version_adds_only_its_rows(
    settings: Settings,
    warehouse: Warehouse,
    feature_frame: pd.DataFrame,
    estimators: list[Any],
    versions: tuple[str, str],
) -> None:
    create_mart(warehouse, feature_frame.head(MART_ROWS))
    v1, v2 = versions
    set_alias(settings, v1)
    predict_batch(settings, warehouse)
    before = predictions(warehouse)

    set_alias(settings, v2)
    second = predict_batch(settings, warehouse)
    assert (second.model_version, second.semver) == (int(v2), "v1.1.0")
    assert (second.rows_scored, second.rows_already_scored) == (300, 0)
    rows = predictions(warehouse)
    assert rows.groupby("model_version").size().to_dict() == {int(v1): 300, int(v2): 300}
    pd.testing.assert_frame_equal(
        rows[rows["model_version"] == int(v1)].reset_index(drop=True), before
    )
    assert predict_batch(settings, warehouse).rows_scored == 0

    set_alias(settings, v1)  # a rollback: v1 scored everything already
    assert predict_batch(settings, warehouse).rows_scored == 0
    assert len(predictions(warehouse)) == 600


def test_no_version_holding_the_alias_is_a_clear_error(
    settings: Settings,
    warehouse: Warehouse,
    feature_frame: pd.DataFrame,
    estimators: list[Any],
    versions: tuple[str, str],
) -> None:
    create_mart(warehouse, feature_frame.head(10))
    with pytest.raises(NoModelForAlias, match="not-registered"):
        predict_batch(settings, warehouse, model_name="not-registered")
    with pytest.raises(NoModelForAlias, match="'production'"):
        predict_batch(settings, warehouse)  # registered, but no version holds production
    set_alias(settings, versions[0], "staging")
    with pytest.raises(NoModelForAlias, match="'production'"):
        predict_batch(settings, warehouse)
    assert predict_batch(settings, warehouse, alias="staging").rows_scored == 10
    assert set(predictions(warehouse)["alias"]) == {"staging"}


def test_rows_with_null_inputs_are_skipped_and_reported(
    settings: Settings,
    warehouse: Warehouse,
    feature_frame: pd.DataFrame,
    estimators: list[Any],
    versions: tuple[str, str],
) -> None:
    mart = feature_frame.head(20).copy()
    mart["lines_added"] = mart["lines_added"].astype(object)
    mart.iloc[3, mart.columns.get_loc("lines_added")] = None
    create_mart(warehouse, mart)
    set_alias(settings, versions[0])

    result = predict_batch(settings, warehouse)
    assert (result.rows_scored, result.rows_invalid) == (19, 1)
    assert mart["commit_key"].iloc[3] not in set(predictions(warehouse)["commit_key"])


def test_missing_mart_is_a_clear_error_and_writes_nothing(
    settings: Settings, warehouse: Warehouse, versions: tuple[str, str]
) -> None:
    set_alias(settings, versions[0])
    with pytest.raises(BatchInferenceError, match=r"analytics\.commit_features does not exist"):
        predict_batch(settings, warehouse)
    ensure_predictions_table(warehouse)
    ensure_predictions_table(warehouse)  # idempotent
    assert predictions(warehouse).empty
