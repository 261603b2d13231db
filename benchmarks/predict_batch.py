"""Benchmark batch inference: commits scored and written per minute (target: 500,000/min).

    .venv/bin/python benchmarks/predict_batch.py [--rows 504532] [--batch-size 100000]

Everything happens in a temporary DATAPLATFORM_HOME (embedded profile: DuckDB + MLflow on
SQLite), removed at the end:

1. the shipped commit datasets (data/commits, 18,019 commits) go through the real feature code
   (`compute_features`), and the real `commit-classifier` pipeline is fitted on them, logged the
   way the trainer logs it (sklearn flavor, skops) and registered; `production` points at it;
2. `analytics.commit_features` is filled with those rows replicated until `--rows` is reached;
   each copy gets a distinct, realistic 40-hex commit_sha, so every row is a new commit;
3. `predict_batch` runs end to end (resolve alias, load the model, anti-join, score, write
   `analytics.commit_predictions`) and is timed; then it runs again and must add 0 rows.

The throughput printed is end to end: rows written / wall time of `predict_batch`, model load
included.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from dataplatform.adapters.warehouse import DuckDBWarehouse
    from dataplatform.config import Settings

TARGET_PER_MINUTE = 500_000
DATASETS = Path(__file__).resolve().parents[1] / "data" / "commits"
MODEL_NAME = "commit-classifier"


def _features(datasets: Path) -> pd.DataFrame:
    """Mart rows (pandas) of every shipped dataset, through the real feature code."""
    from dataplatform.contracts import CommitRecord
    from dataplatform.features import compute_features
    from dataplatform.ingest.datasets import iter_dataset

    records = [
        record
        for path in sorted(datasets.glob("*.jsonl.gz"))
        for record in iter_dataset(path)
        if isinstance(record, CommitRecord)
    ]
    if not records:
        sys.exit(f"no commit records under {datasets}")
    return compute_features(records)


def _register_model(settings: Settings, frame: pd.DataFrame) -> str:
    """Fit the real commit-classifier spec on `frame`, log it like the trainer, register it."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    import skops.io
    from mlflow.models import infer_signature

    from dataplatform.adapters.registry import configure_mlflow
    from dataplatform.train.specs import get_spec

    spec = get_spec(MODEL_NAME)
    client = configure_mlflow(settings)
    x = frame[spec.input_columns]
    y = frame[spec.target].astype("int64").to_numpy()
    estimator = spec.estimator_factory().fit(x, y)
    mlflow.set_experiment(settings.mlflow_experiment)
    with mlflow.start_run(run_name=f"{MODEL_NAME}-benchmark") as run:
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(estimator)) or None
        mlflow.sklearn.log_model(
            estimator,
            name="model",
            serialization_format="skops",
            skops_trusted_types=trusted,
            signature=infer_signature(x, np.asarray(estimator.predict(x), dtype="int64")),
            input_example=x.head(5),
        )
    details = mlflow.register_model(
        f"runs:/{run.info.run_id}/model",
        MODEL_NAME,
        tags={"training_mart": spec.training_mart, "semver": "v1.0.0"},
    )
    client.set_registered_model_alias(MODEL_NAME, "production", details.version)
    return str(details.version)


def _fill_mart(warehouse: DuckDBWarehouse, frame: pd.DataFrame, rows: int) -> int:
    """analytics.commit_features = `frame` replicated to `rows` rows with distinct commits."""
    con = warehouse.connection
    copies = -(-rows // len(frame))
    con.register("_base", frame)
    con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    other = [c for c in frame.columns if c not in ("commit_key", "repo", "commit_sha")]
    # Copy 0 keeps the real SHA; copy i gets the first 40 hex of sha256(sha || i).
    sha = (
        "CASE WHEN r.range = 0 THEN b.commit_sha "
        "ELSE substr(sha256(b.commit_sha || r.range), 1, 40) END"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE analytics.commit_features AS
        SELECT b.repo || ':' || {sha} AS commit_key, b.repo, {sha} AS commit_sha,
               {", ".join(f"b.{c}" for c in other)}
        FROM _base AS b CROSS JOIN range({copies}) AS r
        ORDER BY commit_key
        LIMIT {rows}
        """
    )
    con.unregister("_base")
    counts = con.execute(
        "SELECT count(*), count(DISTINCT commit_key) FROM analytics.commit_features"
    ).fetchone()
    total, distinct = counts if counts else (0, 0)
    if total != distinct:
        sys.exit(f"replicated mart has duplicate keys ({total} rows, {distinct} keys)")
    return int(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=504_532, help="mart rows to score (>= 500k)")
    parser.add_argument("--batch-size", type=int, default=100_000, help="rows per chunk")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="dataplatform-bench-predict-"))
    os.environ["DATAPLATFORM_HOME"] = str(home)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from dataplatform.adapters.warehouse import DuckDBWarehouse
        from dataplatform.config import get_settings
        from dataplatform.serve.batch import predict_batch

        settings = get_settings(home=home)
        t0 = time.perf_counter()
        frame = _features(args.datasets)
        version = _register_model(settings, frame)
        with DuckDBWarehouse(settings.warehouse_path) as warehouse:
            total = _fill_mart(warehouse, frame, args.rows)
            setup = time.perf_counter() - t0
            print(
                f"setup: {len(frame):,} real commits -> {total:,} mart rows, "
                f"{MODEL_NAME} version {version} registered ({setup:.1f}s)"
            )
            first = predict_batch(settings, warehouse, batch_size=args.batch_size)
            again = predict_batch(settings, warehouse, batch_size=args.batch_size)
            written = warehouse.query_df(
                "SELECT count(*) AS n FROM analytics.commit_predictions"
            ).iloc[0, 0]

        per_minute = first.rows_scored * 60.0 / first.seconds
        print(
            f"scored and wrote {first.rows_scored:,} commits in {first.seconds:.2f}s "
            f"({first.chunks} chunks of <= {args.batch_size:,}, model load included)"
        )
        print(f"throughput: {per_minute:,.0f} commits/minute")
        print(
            f"target:     {TARGET_PER_MINUTE:,} commits/minute -> "
            f"ratio {per_minute / TARGET_PER_MINUTE:.2f}x"
        )
        print(
            f"re-run:     {again.rows_scored} rows added, {again.rows_already_scored:,} already "
            f"scored ({again.seconds:.2f}s)"
        )
        ok = first.rows_scored == total and again.rows_scored == 0 and int(written) == total
        if not ok:
            sys.exit("FAILED: not every row was written exactly once")
        if per_minute < TARGET_PER_MINUTE:
            sys.exit("BELOW TARGET")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
