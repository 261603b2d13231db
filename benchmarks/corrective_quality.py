"""Quality of the label-trained models against the published figures (the README table).

    python benchmarks/corrective_quality.py [--labels-dir DIR] [--home DIR] [--out FILE]

Runs the production path on a fresh DuckDB warehouse: load the label files into
raw.commit_labels, dbt-build the labels marts, train `corrective-classifier` with the platform
trainer (one MLflow run, evaluated on the paper's 1,100-commit test set), then evaluate the
3-class maintenance-activity model on Levin & Yehudai's commits (another MLflow run). Extra
figures are logged onto the corrective run: the stored regex predictions (`corrective_pred`)
recomputed on the same test rows, and the model on the paper's validation set and on the
3-annotator set (both never trained on). Prints a Markdown table (docs/models.md).

The labels are read from --labels-dir, else $DATAPLATFORM_LABELS_DIR, else ../shared/datasets/labels
next to the repository; they are never copied into it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dataplatform.adapters.registry import configure_mlflow
from dataplatform.adapters.warehouse import open_warehouse
from dataplatform.config import Settings, get_settings
from dataplatform.labels import load_labels, resolve_labels_dir
from dataplatform.serve.batch import ensure_predictions_table
from dataplatform.train.evaluation import binary_metrics
from dataplatform.train.lineage import Lineage
from dataplatform.train.maintenance import PUBLISHED_ACCURACY as LEVIN_ACCURACY
from dataplatform.train.maintenance import MaintenanceResult, evaluate_maintenance
from dataplatform.train.specs import CORRECTIVE_CLASSIFIER
from dataplatform.train.trainer import TrainResult, train_model
from dataplatform.transform.dbt_runner import run_dbt

REPO = Path(__file__).resolve().parents[1]
SHARED_LABELS = REPO / "../shared/datasets/labels"
PUBLISHED_CCP_ACCURACY = 0.93  # Amit & Feitelson, SQJ 2021 abstract (regex model)
LABEL_MARTS = ("+labelled_commits", "+labelled_maintenance_commits")
TEST_FILE = "amit_ccp_commits_updated5.csv.gz"


def stored_regex_metrics(labels_dir: Path) -> dict[str, float]:
    """The data's own `corrective_pred` column vs `Is_Corrective` on the 1,100 Random rows."""
    raw = pd.read_csv(labels_dir / TEST_FILE, dtype=str, keep_default_na=False)
    test = raw[raw["Sampling"] == "Random"]
    truth = test["Is_Corrective"].str.upper().eq("TRUE").astype("int64").to_numpy()
    pred = test["corrective_pred"].str.upper().eq("TRUE").astype("int64").to_numpy()
    return binary_metrics(truth, pred)


def extra_sets(settings: Settings, result: TrainResult, train_shas: set[str]) -> dict[str, dict]:
    """The trained model on the paper validation and 3-annotator sets (de-duplicated by sha)."""
    import mlflow.sklearn

    configure_mlflow(settings)
    model = mlflow.sklearn.load_model(result.model_uri)
    with open_warehouse(settings) as warehouse:
        labels = warehouse.query_df(
            "SELECT split, commit_sha, message, is_corrective "
            "FROM staging.stg_labels__commit_labels "
            "WHERE split IN ('paper_validation', 'three_annotators') AND is_corrective IS NOT NULL "
            "AND message IS NOT NULL ORDER BY source_file, source_row"
        )
    figures = {}
    for split, rows in labels.groupby("split"):
        rows = rows.drop_duplicates("commit_sha")
        rows = rows[~rows["commit_sha"].isin(train_shas)]
        pred = np.asarray(model.predict(rows[["message"]]), dtype="int64")
        figures[str(split)] = {
            **binary_metrics(rows["is_corrective"].astype("int64").to_numpy(), pred),
            "n": float(len(rows)),
        }
    return figures


def run(labels_dir: Path, home: Path) -> str:
    """Everything above; returns the Markdown table."""
    settings = get_settings(home=home)
    settings.home.mkdir(parents=True, exist_ok=True)
    lineage = Lineage.from_git(REPO)
    started = time.perf_counter()
    with open_warehouse(settings) as warehouse:
        loaded = load_labels(warehouse, labels_dir)
        ensure_predictions_table(warehouse)
    print(f"loaded {loaded.rows} label rows ({len(loaded.rejected)} rejected)", file=sys.stderr)
    run_dbt(settings, select=list(LABEL_MARTS))
    with open_warehouse(settings) as warehouse:
        frame = warehouse.query_df(f"SELECT * FROM {CORRECTIVE_CLASSIFIER.training_mart}")
        levin = warehouse.query_df("SELECT * FROM analytics.labelled_maintenance_commits")
    result = train_model(CORRECTIVE_CLASSIFIER, frame, settings, lineage=lineage, progress=_say)
    train_shas = set(frame.loc[frame["split"] == "train", "commit_sha"].dropna())
    regex = stored_regex_metrics(labels_dir)
    extras = extra_sets(settings, result, train_shas)
    client = configure_mlflow(settings)
    for name, value in regex.items():
        client.log_metric(result.run_id, f"stored_regex_{name}", value)
    for split, metrics in extras.items():
        for name, value in metrics.items():
            client.log_metric(result.run_id, f"{split}_{name}", value)
    client.log_param(result.run_id, "published_accuracy", PUBLISHED_CCP_ACCURACY)
    maintenance = evaluate_maintenance(levin, settings, lineage=lineage)
    print(f"done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return quality_table(result, regex, extras, maintenance)


def quality_table(
    result: TrainResult,
    regex: dict[str, float],
    extras: dict[str, dict],
    maintenance: MaintenanceResult,
) -> str:
    """Markdown tables of the figures (fractions shown as percentages)."""

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.1f}%"

    def row(name: str, m: dict[str, float] | None, note: str = "") -> str:
        m = m or {}
        cells = [pct(m.get(k)) for k in ("accuracy", "precision", "recall", "f1_score")]
        return f"| {name} | {' | '.join(cells)} | {note} |"

    n_test = result.n_test
    lines = [
        f"Corrective commits, paper test set (n={n_test}, Sampling == Random; "
        f"trained on {result.n_train} de-duplicated commits of random_batch_2020 + 2018 bugfix "
        f"files, no test sha/message). MLflow run `{result.run_id}`.",
        "",
        "| model | accuracy | precision | recall | F1 | note |",
        "|---|---|---|---|---|---|",
        row("**corrective-classifier** (TF-IDF + LR)", result.metrics),
        row("keyword baseline", result.baseline_metrics, "fix/bug/defect/fault/crash/error/fail"),
        row("stored regex `corrective_pred`", regex, "recomputed from the data"),
        row("Amit & Feitelson, published", {"accuracy": PUBLISHED_CCP_ACCURACY}, "regex model"),
        "| majority class (not corrective) | 75.4% | – | 0.0% | 0.0% | |",
    ]
    for split, m in sorted(extras.items()):
        lines.append(
            row(f"corrective-classifier on {split}", m, f"n={int(m['n'])}, not trained on")
        )
    lines += [
        "",
        f"Maintenance activity (corrective / perfective / adaptive), Levin & Yehudai "
        f"(n={maintenance.n_rows}, {maintenance.n_projects} projects). "
        f"MLflow run `{maintenance.run_id}`.",
        "",
        "| model | setting | accuracy | macro F1 | Cohen's κ |",
        "|---|---|---|---|---|",
        f"| TF-IDF + LR (message only) | leave-projects-out | {pct(maintenance.lopo['accuracy'])} "
        f"| {pct(maintenance.lopo['macro_f1'])} | {maintenance.lopo['kappa']:.2f} |",
        f"| TF-IDF + LR (message only) | stratified 85/15, seed 0 "
        f"| {pct(maintenance.holdout['accuracy'])} | {pct(maintenance.holdout['macro_f1'])} "
        f"| {maintenance.holdout['kappa']:.2f} |",
        f"| majority class | leave-projects-out "
        f"| {pct(maintenance.baseline_lopo_accuracy)} | – | – |",
        f"| Levin & Yehudai, published | 85/15 (keywords + code changes) | {pct(LEVIN_ACCURACY)} "
        "| – | ≈0.63 (not verified) |",
    ]
    return "\n".join(lines)


def _say(message: str) -> None:
    print(f"corrective-classifier: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels-dir", type=Path, default=None)
    parser.add_argument("--home", type=Path, default=None, help="platform home (default: temp)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    explicit = args.labels_dir
    if explicit is None and "DATAPLATFORM_LABELS_DIR" not in os.environ:
        explicit = SHARED_LABELS.resolve()
    labels_dir = resolve_labels_dir(explicit)
    if args.home is not None:
        table = run(labels_dir, args.home)
    else:
        with tempfile.TemporaryDirectory(prefix="dataplatform-quality-") as tmp:
            table = run(labels_dir, Path(tmp))
    print(table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
