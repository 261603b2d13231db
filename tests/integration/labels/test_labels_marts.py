"""Labels end to end on DuckDB: load real label files, dbt-build the labels marts, then check
leakage, the join to commits, training + registering the corrective spec into a real MLflow
store, and the CCP view with a few fake predictions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from dataplatform.adapters.warehouse import open_warehouse
from dataplatform.config import Settings, get_settings
from dataplatform.labels import load_labels, parse_label_file, repository_monthly_ccp
from dataplatform.train.text import normalise_message

pytestmark = pytest.mark.slow

LOADED_AT = datetime(2026, 11, 26, tzinfo=UTC)
MARTS = ["+labelled_commits", "+labelled_maintenance_commits", "+repository_monthly_ccp"]
# repo, sha seed, authored_at, parent_count
FAKE_COMMITS = [
    ("acme/widgets", "w1", "2024-01-03T10:00:00+00:00", 1),
    ("acme/widgets", "w2", "2024-01-20T10:00:00+00:00", 1),
    ("acme/widgets", "w3", "2024-01-21T10:00:00+00:00", 2),  # merge: not in CCP
    ("acme/widgets", "w4", "2024-02-01T00:30:00+00:00", 1),
]


def _sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


@pytest.fixture(scope="module")
def joined_sha(labels_dir: Path) -> str:
    """A training label's sha that we also ingest as a commit (label <-> commit join)."""
    rows = parse_label_file(labels_dir / "amit_ccp_random_batch_18_nov_2020.csv.gz").rows
    return str(rows.loc[rows["is_corrective"].notna(), "commit_sha"].iloc[0])


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, labels_dir: Path, joined_sha: str
) -> Iterator[Settings]:
    from dataplatform.serve.batch import ensure_predictions_table
    from dataplatform.transform.dbt_runner import run_dbt

    settings = get_settings(home=tmp_path_factory.mktemp("labels-home"))
    with open_warehouse(settings) as warehouse:
        first = load_labels(warehouse, labels_dir)
        second = load_labels(warehouse, labels_dir)
        assert first.rows_written == first.rows > 5000
        assert second.rows_written == 0
        assert second.rows == first.rows
        ensure_predictions_table(warehouse)
        commits = [*FAKE_COMMITS, ("acme/tools", joined_sha, "2024-03-05T12:00:00+00:00", 1)]
        for repo, seed, at, parents in commits:
            sha = seed if len(seed) == 40 else _sha(seed)
            warehouse.execute(
                "INSERT INTO raw.commits VALUES (?, ?, NULL, ?, 'Dev', 'dev@example.org', NULL, "
                "NULL, ?, 0, ?, 0, ?, 1, 1, 0, ?, NULL, 'batch-1', ?)",
                [
                    repo,
                    sha,
                    parents,
                    at,
                    at,
                    "Fix parser, thanks dev@example.org",
                    hashlib.sha256(b"dev").hexdigest(),
                    LOADED_AT,
                ],
            )
    run_dbt(settings, select=MARTS)
    return settings


@pytest.fixture(scope="module")
def mart(built: Settings) -> pd.DataFrame:
    with open_warehouse(built) as warehouse:
        return warehouse.query_df("SELECT * FROM analytics.labelled_commits")


def test_no_paper_test_sha_or_message_in_training(mart: pd.DataFrame, labels_dir: Path) -> None:
    paper = pd.read_csv(
        labels_dir / "amit_ccp_commits_updated5.csv.gz", dtype=str, keep_default_na=False
    )
    paper = paper[paper["Sampling"] == "Random"]
    train = mart[mart["split"] == "train"]
    test = mart[mart["split"] == "paper_test_random"]
    assert len(test) == 1100
    assert set(test["commit_sha"]) == set(paper["commit"])
    assert not set(train["commit_sha"]) & set(paper["commit"])
    paper_messages = {normalise_message(m) for m in paper["message"]}
    assert not {normalise_message(m) for m in train["message"]} & paper_messages
    assert train["commit_sha"].is_unique  # de-duplicated by sha
    assert set(train["label_split"]) == {
        "random_batch_2020",
        "bugfix_2018_train",
        "bugfix_2018_test",
    }
    assert len(train) > 2000


def test_labels_join_commits_by_sha_and_keep_message_only_rows(
    mart: pd.DataFrame, joined_sha: str
) -> None:
    joined = mart[mart["has_git_metadata"]]
    assert joined["commit_key"].tolist() == [f"acme/tools:{joined_sha}"]
    assert joined["authored_at"].notna().all()
    unjoined = mart[~mart["has_git_metadata"]]
    assert len(unjoined) == len(mart) - 1
    assert unjoined["authored_at"].isna().all()
    assert mart["commit_key"].is_unique
    assert mart["message"].ne("").all()
    assert not mart["message"].str.contains("@example.org", regex=False).any()


def test_maintenance_mart_has_levin_rows(built: Settings) -> None:
    with open_warehouse(built) as warehouse:
        levin = warehouse.query_df("SELECT * FROM analytics.labelled_maintenance_commits")
    assert len(levin) == 1151
    assert levin["project"].nunique() == 11
    assert not levin["message"].str.startswith("[PATCH").any()


def test_corrective_spec_trains_and_registers_on_a_slice(
    built: Settings, mart: pd.DataFrame
) -> None:
    import mlflow.sklearn

    from dataplatform.adapters.registry import configure_mlflow
    from dataplatform.registry.register import register_model
    from dataplatform.registry.semver import assign_semver
    from dataplatform.train.lineage import Lineage
    from dataplatform.train.specs import CORRECTIVE_CLASSIFIER
    from dataplatform.train.trainer import train_model

    train = mart[mart["split"] == "train"].sort_values("commit_key").head(600)
    test = mart[mart["split"] == "paper_test_random"].sort_values("commit_key").head(200)
    frame = pd.concat([train, test], ignore_index=True)
    lineage = Lineage(git_commit="0" * 40, git_branch="main")
    result = train_model(CORRECTIVE_CLASSIFIER, frame, built, lineage=lineage)
    assert result.n_train == 600
    assert result.n_test == 200
    assert result.metrics["f1_score"] > 0.3  # well above chance even on 600 rows
    assert set(result.baseline_metrics) == {"f1_score", "accuracy", "precision", "recall"}
    registered = register_model(built, result, CORRECTIVE_CLASSIFIER)
    assert registered.tags["feature_columns"] == "message"
    assert registered.tags["training_mart"] == "analytics.labelled_commits"
    client = configure_mlflow(built)
    assert str(assign_semver(client, "corrective-classifier", str(registered.version)))
    model = mlflow.sklearn.load_model(f"models:/corrective-classifier/{registered.version}")
    proba = model.predict_proba(pd.DataFrame({"message": ["Fix crash <email>", "Add docs"]}))
    assert proba.shape == (2, 2)


def test_ccp_view_from_fake_predictions(built: Settings) -> None:
    repos = ["acme/widgets"]
    with open_warehouse(built) as warehouse:
        assert repository_monthly_ccp(warehouse, repos) == []  # nothing scored yet
        unscored = repository_monthly_ccp(warehouse, repos, scored_only=False)
        assert [(r.month.isoformat(), r.commit_count, r.ccp) for r in unscored] == [
            ("2024-01-01", 2, None),  # the merge commit is not counted
            ("2024-02-01", 1, None),
        ]
        runs = [
            (
                "run-1",
                1,
                "2026-01-01T00:00:00+00:00",
                {"w1": (1, 0.9), "w2": (0, 0.2), "w4": (1, 0.7)},
            ),
            ("run-2", 2, "2026-02-01T00:00:00+00:00", {"w2": (1, 0.6)}),  # newer production
        ]
        for batch_id, version, at, predictions in runs:
            warehouse.execute(
                "INSERT INTO analytics.commit_prediction_batches VALUES "
                "(?, 'corrective-classifier', ?, NULL, 'production', 'analytics.commit_features', "
                "?, 0, 0, ?, ?)",
                [batch_id, version, len(predictions), at, at],
            )
            for seed, (predicted, probability) in predictions.items():
                sha = _sha(seed)
                warehouse.execute(
                    "INSERT INTO analytics.commit_predictions VALUES "
                    "(?, 'acme/widgets', ?, 'corrective-classifier', ?, NULL, 'production', "
                    "?, ?, ?, ?)",
                    [f"acme/widgets:{sha}", sha, version, predicted, probability, at, batch_id],
                )
        # Another model's predictions never count.
        warehouse.execute(
            "INSERT INTO analytics.commit_predictions VALUES (?, 'acme/widgets', ?, "
            "'commit-classifier', 1, NULL, 'production', 1, 1.0, ?, 'run-1')",
            [f"acme/widgets:{_sha('w1')}", _sha("w1"), LOADED_AT],
        )
        rows = repository_monthly_ccp(warehouse, repos)
    assert [
        (
            r.month.isoformat(),
            r.scored_commit_count,
            r.corrective_commit_count,
            r.ccp,
            r.model_version,
        )
        for r in rows
    ] == [("2024-01-01", 2, 2, 1.0, 2), ("2024-02-01", 1, 1, 1.0, 1)]
    assert rows[0].mean_corrective_probability == pytest.approx((0.9 + 0.6) / 2)


def test_corrective_model_batch_scores_and_is_monitored_per_model(
    built: Settings, mart: pd.DataFrame
) -> None:
    """The second model through the same commands: production alias → batch scoring of every
    ingested commit → the monitor (drift on the message by its length; no labels on ingested
    commits, so performance is reported as not measurable rather than invented)."""
    from dataplatform import pipeline
    from dataplatform.adapters.registry import configure_mlflow
    from dataplatform.monitor.runner import run_monitor
    from dataplatform.registry.register import register_model
    from dataplatform.train.lineage import Lineage
    from dataplatform.train.specs import CORRECTIVE_CLASSIFIER
    from dataplatform.train.trainer import train_model
    from dataplatform.transform.dbt_runner import run_dbt

    run_dbt(built, select="+commit_features")
    train = mart[mart["split"] == "train"].sort_values("commit_key").head(400)
    test = mart[mart["split"] == "paper_test_random"].sort_values("commit_key").head(150)
    frame = pd.concat([train, test], ignore_index=True)
    result = train_model(CORRECTIVE_CLASSIFIER, frame, built, lineage=Lineage())
    registered = register_model(built, result, CORRECTIVE_CLASSIFIER)
    assert registered.tags["scoring_mart"] == "analytics.commit_features"
    client = configure_mlflow(built)
    client.set_registered_model_alias(
        "corrective-classifier", "production", str(registered.version)
    )

    scored = pipeline.predict(built, "corrective-classifier")
    assert scored.source_table == "analytics.commit_features"
    # every ingested commit has a prediction of this version (some may come from the CCP test)
    assert scored.rows_scored + scored.rows_already_scored == len(FAKE_COMMITS) + 1
    assert scored.rows_scored > 0

    outcome = run_monitor(
        built,
        "corrective-classifier",
        pipeline.monitor_deps(built, "corrective-classifier"),
        html_report=False,
        log_to_mlflow=False,
    )
    checks = {c.name: c for c in outcome.checks}
    assert "psi:message_length" in checks
    assert checks["f1_drop"].value is None
    assert "not measurable" in checks["f1_drop"].detail
    assert "prediction_kl" in checks
