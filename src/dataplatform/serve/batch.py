"""Batch inference: score the commits a registered model version has not scored yet.

`predict_batch` resolves the version holding an alias (``production`` by default), loads it once,
reads from its training mart only the rows that version has not scored (anti-join against
``analytics.commit_predictions`` on commit_key + model_name + model_version), scores them in
chunks and appends them. Each chunk is written in ONE transaction with
``ON CONFLICT (commit_key, model_name, model_version) DO NOTHING``: an interrupted run keeps the
chunks it committed, and a re-run adds only what is missing (0 rows when nothing is).

Every run, even one that scores nothing, also appends one row to
``analytics.commit_prediction_batches``: which version held the alias when, so analysts (and the
dbt model ``commit_predictions_latest``) can tell the current production version after a rollback.

The serve stage does not import the train stage: the mart and the input columns come from the
registered version itself (its ``training_mart`` tag and MLflow input signature).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dataplatform.adapters.registry import configure_mlflow

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from dataplatform.adapters.warehouse import Warehouse
    from dataplatform.config import Settings

Progress = Callable[[str], None]

DEFAULT_MODEL_NAME = "commit-classifier"
DEFAULT_ALIAS = "production"
DEFAULT_BATCH_SIZE = 100_000
DEFAULT_SOURCE_TABLE = "analytics.commit_features"
PREDICTIONS_TABLE = "analytics.commit_predictions"
BATCHES_TABLE = "analytics.commit_prediction_batches"
SEMVER_TAG = "semver"  # written by the registry stage's lifecycle (same tag name)
TRAINING_MART_TAG = "training_mart"  # written at registration from the spec
KEY_COLUMN = "commit_key"
ID_COLUMNS: tuple[str, ...] = (KEY_COLUMN, "repo", "commit_sha")

PREDICTION_COLUMNS: tuple[str, ...] = (
    "commit_key",
    "repo",
    "commit_sha",
    "model_name",
    "model_version",
    "semver",
    "alias",
    "predicted_class",
    "probability",
    "scored_at",
    "batch_id",
)

# Portable DDL (DuckDB and PostgreSQL). `probability` is NULL only for models without
# predict_proba; `semver` is NULL for a version the lifecycle never tagged.
PREDICTIONS_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS analytics",
    f"""
    CREATE TABLE IF NOT EXISTS {PREDICTIONS_TABLE} (
        commit_key      TEXT NOT NULL,
        repo            TEXT NOT NULL,
        commit_sha      TEXT NOT NULL,
        model_name      TEXT NOT NULL,
        model_version   INTEGER NOT NULL,
        semver          TEXT,
        alias           TEXT NOT NULL,
        predicted_class INTEGER NOT NULL,
        probability     DOUBLE PRECISION,
        scored_at       TIMESTAMPTZ NOT NULL,
        batch_id        TEXT NOT NULL,
        PRIMARY KEY (commit_key, model_name, model_version)
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {BATCHES_TABLE} (
        batch_id            TEXT PRIMARY KEY,
        model_name          TEXT NOT NULL,
        model_version       INTEGER NOT NULL,
        semver              TEXT,
        alias               TEXT NOT NULL,
        source_table        TEXT NOT NULL,
        rows_scored         BIGINT NOT NULL,
        rows_already_scored BIGINT NOT NULL,
        rows_invalid        BIGINT NOT NULL,
        started_at          TIMESTAMPTZ NOT NULL,
        finished_at         TIMESTAMPTZ NOT NULL
    )
    """,
)

# Columns staged per chunk; the run's constants (model, batch, time) are bound as parameters.
_STAGE_SCHEMA = pa.schema(
    [
        ("commit_key", pa.string()),
        ("repo", pa.string()),
        ("commit_sha", pa.string()),
        ("predicted_class", pa.int32()),
        ("probability", pa.float64()),
    ]
)
_STAGE_VIEW = "_stage_predictions"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BatchInferenceError(RuntimeError):
    """Batch scoring could not run (missing mart, unusable model); nothing was written."""


class NoModelForAlias(BatchInferenceError):
    """No version of the model holds the alias (or the model is not registered)."""

    def __init__(self, model_name: str, alias: str) -> None:
        super().__init__(
            f"no version of {model_name!r} holds the alias {alias!r}; promote one first "
            f"(dataplatform model promote {model_name} VERSION --to {alias})"
        )
        self.model_name = model_name
        self.alias = alias


@dataclass(frozen=True, slots=True)
class BatchScoreResult:
    """What one `predict_batch` run did."""

    batch_id: str
    model_name: str
    model_version: int
    semver: str | None
    alias: str
    source_table: str
    rows_scored: int  # rows added to analytics.commit_predictions by this run
    rows_already_scored: int  # mart rows this version had scored before (or concurrently)
    rows_invalid: int  # mart rows skipped: an input was NULL (tried again next run)
    chunks: int
    seconds: float
    scored_at: datetime  # start of the run (UTC)

    @property
    def label(self) -> str:
        """`v1.2.0-production`, or `version 3-production` when the version has no semver."""
        return f"{self.semver or f'version {self.model_version}'}-{self.alias}"

    @property
    def commits_per_minute(self) -> float:
        """Throughput of this run (rows written per minute of wall time)."""
        return self.rows_scored * 60.0 / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ResolvedVersion:
    """The registered version an alias points at, with what scoring needs from its metadata."""

    model_name: str
    version: int
    alias: str
    semver: str | None
    training_mart: str | None

    @property
    def model_uri(self) -> str:
        """`models:/<name>/<version>`: pinned, so a concurrent alias move cannot swap models."""
        return f"models:/{self.model_name}/{self.version}"


# --- pure pieces ---------------------------------------------------------------------------
def quote_identifier(name: str) -> str:
    """`name` double-quoted; only plain SQL identifiers (letters, digits, _) are accepted."""
    if not _IDENT.match(name):
        raise BatchInferenceError(f"not a plain SQL identifier: {name!r}")
    return f'"{name}"'


def qualified_table(name: str) -> str:
    """`schema.table` quoted for SQL; anything else is refused (it is interpolated in SQL)."""
    parts = name.split(".")
    if len(parts) != 2:
        raise BatchInferenceError(f"table must be schema.table, got {name!r}")
    return ".".join(quote_identifier(p) for p in parts)


def selected_columns(input_columns: Sequence[str]) -> list[str]:
    """Key/id columns followed by the model's inputs, without duplicates, in order."""
    return list(dict.fromkeys([*ID_COLUMNS, *input_columns]))


def unscored_rows_sql(
    source_table: str,
    input_columns: Sequence[str],
    *,
    after_key: bool,
    predictions_table: str = PREDICTIONS_TABLE,
) -> str:
    """Next page of mart rows the version has not scored, in commit_key order (keyset paging).

    Parameters, in order: [last commit_key of the previous page, when `after_key`],
    model_name, model_version, page size.
    """
    cols = ", ".join(f"f.{quote_identifier(c)}" for c in selected_columns(input_columns))
    after = "f.commit_key > ? AND " if after_key else ""
    return (
        f"SELECT {cols} FROM {qualified_table(source_table)} AS f "
        f"WHERE {after}NOT EXISTS (SELECT 1 FROM {qualified_table(predictions_table)} AS p "
        "WHERE p.commit_key = f.commit_key AND p.model_name = ? AND p.model_version = ?) "
        "ORDER BY f.commit_key LIMIT ?"
    )


def scored_counts_sql(source_table: str, predictions_table: str = PREDICTIONS_TABLE) -> str:
    """Mart rows and how many of them the version scored. Parameters: model_name, version."""
    return (
        "SELECT count(*) AS total_rows, count(p.commit_key) AS scored_rows "
        f"FROM {qualified_table(source_table)} AS f "
        f"LEFT JOIN {qualified_table(predictions_table)} AS p "
        "ON p.commit_key = f.commit_key AND p.model_name = ? AND p.model_version = ?"
    )


def insert_predictions_sql(stage: str, placeholder: str = "?") -> str:
    """INSERT of staged rows into the predictions table, duplicates skipped.

    Parameters: model_name, model_version, semver, alias, scored_at, batch_id (`placeholder` is
    ``?`` for DuckDB, ``%s`` for psycopg).
    """
    cols = ", ".join(PREDICTION_COLUMNS)
    p = placeholder
    return (
        f"INSERT INTO {PREDICTIONS_TABLE} ({cols}) "
        f"SELECT commit_key, repo, commit_sha, CAST({p} AS TEXT), CAST({p} AS INTEGER), "
        f"CAST({p} AS TEXT), CAST({p} AS TEXT), predicted_class, probability, "
        f"CAST({p} AS TIMESTAMPTZ), CAST({p} AS TEXT) FROM {stage} "
        "ON CONFLICT (commit_key, model_name, model_version) DO NOTHING"
    )


def positive_class_index(classes: Sequence[Any]) -> int:
    """Column of predict_proba holding the positive class (1/True) of a binary classifier."""
    values = list(classes)
    if len(values) != 2:
        raise BatchInferenceError(f"not a binary classifier: classes {values}")
    for i, value in enumerate(values):
        if value is True or (not isinstance(value, str) and value == 1):
            return i
    return 1  # sklearn sorts classes_: without a 1/True, the larger one is the positive class


def make_batch_id(at: datetime) -> str:
    """`predict-20250101T120000Z-1a2b3c4d`: sortable by time, unique per run."""
    return f"predict-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def split_invalid(frame: pd.DataFrame, input_columns: Sequence[str]) -> tuple[Any, Any]:
    """(rows usable for scoring, rows with a NULL id or input), both in input order."""
    bad = frame[selected_columns(input_columns)].isna().any(axis=1)
    return frame.loc[~bad], frame.loc[bad]


def prediction_table(
    frame: pd.DataFrame, predicted_class: np.ndarray, probability: np.ndarray | None
) -> pa.Table:
    """Staged chunk: id columns of `frame` with the model's class (0/1) and probability."""
    n = len(frame)
    proba = (
        pa.nulls(n, pa.float64()) if probability is None else pa.array(probability, pa.float64())
    )
    return pa.table(
        [
            pa.array(frame["commit_key"].astype(str).to_numpy(), pa.string()),
            pa.array(frame["repo"].astype(str).to_numpy(), pa.string()),
            pa.array(frame["commit_sha"].astype(str).to_numpy(), pa.string()),
            pa.array(predicted_class.astype("int32"), pa.int32()),
            proba,
        ],
        schema=_STAGE_SCHEMA,
    )


# --- scoring -------------------------------------------------------------------------------
class Scorer:
    """A loaded model: class (0/1) and probability of the positive class for a frame."""

    def __init__(self, model: Any, input_columns: Sequence[str], *, sklearn: bool) -> None:
        self.model = model
        self.input_columns = list(input_columns)
        self._positive: int | None = None
        if sklearn and hasattr(model, "predict_proba"):
            self._positive = positive_class_index(getattr(model, "classes_", [0, 1]))

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """(predicted class as int64, probability of the positive class or None)."""
        import numpy as np

        x = frame[self.input_columns]
        predicted = np.asarray(self.model.predict(x))
        if predicted.ndim > 1:  # some pyfunc models answer with a one-column frame
            predicted = predicted[:, 0]
        classes = predicted.astype("int64")
        if self._positive is None:
            return classes, None
        proba = np.asarray(self.model.predict_proba(x), dtype="float64")[:, self._positive]
        return classes, proba


def resolve_alias(client: Any, model_name: str, alias: str) -> ResolvedVersion:
    """The version holding `alias`; `NoModelForAlias` when none does or the model is unknown."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        # MLflow says INVALID_PARAMETER_VALUE for an unset alias, RESOURCE_DOES_NOT_EXIST for
        # an unknown model; anything else (store down, ...) is not ours to reinterpret.
        if exc.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            raise NoModelForAlias(model_name, alias) from exc
        raise
    tags = dict(mv.tags or {})
    return ResolvedVersion(
        model_name=model_name,
        version=int(mv.version),
        alias=alias,
        semver=tags.get(SEMVER_TAG) or None,
        training_mart=tags.get(TRAINING_MART_TAG) or None,
    )


def load_scorer(model_uri: str) -> Scorer:
    """Load `model_uri` once: sklearn flavor (probabilities) when logged, else pyfunc."""
    import mlflow

    info = mlflow.models.get_model_info(model_uri)
    columns = _signature_columns(info.signature)
    if not columns:
        raise BatchInferenceError(f"{model_uri} has no named input signature to select columns")
    if "sklearn" in (info.flavors or {}):
        import mlflow.sklearn

        return Scorer(mlflow.sklearn.load_model(model_uri), columns, sklearn=True)
    return Scorer(mlflow.pyfunc.load_model(model_uri), columns, sklearn=False)


def _signature_columns(signature: Any) -> list[str]:
    if signature is None or signature.inputs is None:
        return []
    names = [spec.get("name") for spec in signature.inputs.to_dict()]
    return [str(n) for n in names] if all(names) else []


# --- warehouse I/O -------------------------------------------------------------------------
def ensure_predictions_table(warehouse: Warehouse) -> None:
    """Create analytics.commit_predictions and analytics.commit_prediction_batches if missing.

    The pipeline calls this before dbt so that the `predictions` dbt models build (empty) before
    any production model exists.
    """
    warehouse.ensure_ddl(PREDICTIONS_DDL, (PREDICTIONS_TABLE, BATCHES_TABLE))


def _table_exists(warehouse: Warehouse, table: str) -> bool:
    schema, name = table.split(".")
    found = warehouse.query_df(
        "SELECT count(*) AS n FROM information_schema.tables "
        "WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    )
    return int(found.iloc[0, 0]) > 0


def write_predictions(
    warehouse: Warehouse,
    staged: pa.Table,
    *,
    model_name: str,
    model_version: int,
    semver: str | None,
    alias: str,
    scored_at: datetime,
    batch_id: str,
) -> int:
    """Insert `staged` rows in one transaction, skipping existing keys; rows actually added."""
    params = [model_name, model_version, semver, alias, scored_at, batch_id]
    if staged.num_rows == 0:
        return 0
    if warehouse.backend == "duckdb":
        return _write_duckdb(_raw_connection(warehouse), staged, params)
    if warehouse.backend == "postgres":
        return _write_postgres(_raw_connection(warehouse), staged, params)
    raise BatchInferenceError(f"unsupported warehouse backend {warehouse.backend!r}")


def _raw_connection(warehouse: Warehouse) -> Any:
    connection = getattr(warehouse, "connection", None)
    if connection is None:
        raise BatchInferenceError(f"{type(warehouse).__name__} exposes no .connection")
    return connection


def _write_duckdb(con: Any, staged: pa.Table, params: list[Any]) -> int:
    con.begin()
    try:
        con.register(_STAGE_VIEW, staged)
        row = con.execute(insert_predictions_sql(_STAGE_VIEW), params).fetchone()
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister(_STAGE_VIEW)
    return int(row[0]) if row else 0


_PG_STAGE_DDL = f"""
    CREATE TEMP TABLE {_STAGE_VIEW} (
        commit_key TEXT, repo TEXT, commit_sha TEXT, predicted_class INTEGER,
        probability DOUBLE PRECISION
    ) ON COMMIT DROP
"""


def _write_postgres(conn: Any, staged: pa.Table, params: list[Any]) -> int:
    columns = ", ".join(_STAGE_SCHEMA.names)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_PG_STAGE_DDL)
        with cur.copy(f"COPY {_STAGE_VIEW} ({columns}) FROM STDIN") as copy:
            for row in zip(
                *(staged.column(c).to_pylist() for c in _STAGE_SCHEMA.names), strict=True
            ):
                copy.write_row(row)
        cur.execute(insert_predictions_sql(_STAGE_VIEW, "%s"), params)
        return max(int(cur.rowcount), 0)


def _record_batch(warehouse: Warehouse, result: BatchScoreResult, finished_at: datetime) -> None:
    """Record the run, unless it scored nothing and the alias still points where it did:
    a re-run with nothing new must leave every table unchanged."""
    if result.rows_scored == 0:
        last = warehouse.query_df(
            f"SELECT model_version FROM {BATCHES_TABLE} WHERE model_name = ? AND alias = ? "
            "ORDER BY finished_at DESC LIMIT 1",
            [result.model_name, result.alias],
        )
        if not last.empty and int(last.iloc[0, 0]) == result.model_version:
            return
    warehouse.execute(
        f"INSERT INTO {BATCHES_TABLE} (batch_id, model_name, model_version, semver, alias, "
        "source_table, rows_scored, rows_already_scored, rows_invalid, started_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.batch_id,
            result.model_name,
            result.model_version,
            result.semver,
            result.alias,
            result.source_table,
            result.rows_scored,
            result.rows_already_scored,
            result.rows_invalid,
            result.scored_at,
            finished_at,
        ],
    )


# --- entry point ---------------------------------------------------------------------------
def predict_batch(
    settings: Settings,
    warehouse: Warehouse,
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    alias: str = DEFAULT_ALIAS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    source_table: str | None = None,
    progress: Progress | None = None,
) -> BatchScoreResult:
    """Score the mart rows the version holding `alias` has not scored; append them.

    `source_table` defaults to the version's `training_mart` tag, else analytics.commit_features;
    it must have commit_key, repo, commit_sha and the model's input columns. Raises
    `NoModelForAlias` when no version holds `alias`, `BatchInferenceError` when the mart is
    missing or the model unusable (nothing written in either case).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    scored_at = datetime.now(UTC)
    batch_id = make_batch_id(scored_at)

    client = configure_mlflow(settings)
    resolved = resolve_alias(client, model_name, alias)
    source = source_table or resolved.training_mart or DEFAULT_SOURCE_TABLE
    qualified_table(source)  # refuse odd names before any I/O
    if not _table_exists(warehouse, source):
        raise BatchInferenceError(f"{source} does not exist; build the marts (dbt) first")
    ensure_predictions_table(warehouse)
    label = resolved.semver or f"version {resolved.version}"
    say(f"loading {model_name} {label} ({alias})")
    scorer = load_scorer(resolved.model_uri)

    counts = warehouse.query_df(scored_counts_sql(source), [model_name, resolved.version]).iloc[0]
    total_rows, already = int(counts["total_rows"]), int(counts["scored_rows"])
    say(f"{source}: {total_rows:,} rows, {already:,} already scored by {label}")

    scored = invalid = chunks = 0
    last_key: str | None = None
    while True:
        sql = unscored_rows_sql(source, scorer.input_columns, after_key=last_key is not None)
        params: list[Any] = [] if last_key is None else [last_key]
        page = warehouse.query_df(sql, [*params, model_name, resolved.version, batch_size])
        if page.empty:
            break
        last_key = str(page[KEY_COLUMN].iloc[-1])
        usable, bad = split_invalid(page, scorer.input_columns)
        invalid += len(bad)
        if len(bad):
            sample = ", ".join(map(str, bad[KEY_COLUMN].head(3)))
            say(f"skipped {len(bad)} row(s) with NULL inputs (e.g. {sample})")
        if len(usable):
            predicted, proba = scorer.score(usable)
            inserted = write_predictions(
                warehouse,
                prediction_table(usable, predicted, proba),
                model_name=model_name,
                model_version=resolved.version,
                semver=resolved.semver,
                alias=alias,
                scored_at=scored_at,
                batch_id=batch_id,
            )
            scored += inserted
            already += len(usable) - inserted  # written meanwhile by a concurrent run
            chunks += 1
            say(f"chunk {chunks}: {inserted:,} rows written ({scored:,} so far)")
        if len(page) < batch_size:
            break

    result = BatchScoreResult(
        batch_id=batch_id,
        model_name=model_name,
        model_version=resolved.version,
        semver=resolved.semver,
        alias=alias,
        source_table=source,
        rows_scored=scored,
        rows_already_scored=already,
        rows_invalid=invalid,
        chunks=chunks,
        seconds=round(time.perf_counter() - started, 3),
        scored_at=scored_at,
    )
    _record_batch(warehouse, result, datetime.now(UTC))
    say(
        f"{PREDICTIONS_TABLE}: {scored:,} rows added by {result.label} "
        f"({already:,} already scored, {invalid:,} skipped) in {result.seconds:.1f}s"
    )
    return result
