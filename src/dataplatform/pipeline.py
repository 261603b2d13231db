"""The composition root: the only module that knows the order of the stages.

ingest → store (raw Parquet batches) → load (warehouse `raw`, plus human labels) → transform
(dbt) → data-quality checks → train → registry (semver, staging gates) → batch scoring → the
CCP summary; `monitor_deps` wires the registry's thresholds and rollback into the monitor. Each
function takes the one `Settings` object, does its stage's I/O through the adapters, and returns
a plain result the CLI turns into a summary.

On PostgreSQL each stage logs in as its own least-privilege login (`Settings.for_stage`):
ingest, load and labels as the pipeline login (raw only), dbt as the dbt login, training,
scoring, monitoring and the registry as the ML login (analytics, every department).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.registry import configure_mlflow, mlflow_ui_command
from dataplatform.adapters.warehouse import Warehouse, open_warehouse
from dataplatform.config import Settings
from dataplatform.contracts import BatchManifest, CommitRecord, QuarantinedRecord, Watermark
from dataplatform.ingest.errors import SourceError
from dataplatform.ingest.sources import Source, resolve_source
from dataplatform.labels import (
    LabelLoadResult,
    LabelsError,
    RepositoryMonthCcp,
    load_labels,
    repository_monthly_ccp,
    resolve_labels_dir,
)
from dataplatform.labels.ccp import CcpUnavailable
from dataplatform.monitor.quality import QualityReport, check_feature_mart, check_ingest_batches
from dataplatform.monitor.runner import MonitorDeps
from dataplatform.monitor.store import ensure_tables as ensure_monitoring_tables
from dataplatform.monitor.store import write_checks
from dataplatform.registry.lifecycle import PromotionOutcome, RollbackOutcome, open_lifecycle
from dataplatform.registry.register import RegisteredVersion, find_version, register_model
from dataplatform.registry.semver import assign_semver
from dataplatform.registry.thresholds import load_thresholds
from dataplatform.serve.batch import (
    BatchInferenceError,
    BatchScoreResult,
    NoModelForAlias,
    ensure_predictions_table,
    predict_batch,
)
from dataplatform.store.batches import BatchWriter, latest_watermarks
from dataplatform.store.loader import ChecksumMismatchError, LiveLoader, LoadSummary, load_pending
from dataplatform.train.lineage import Lineage
from dataplatform.train.specs import MODEL_SPECS
from dataplatform.train.split import SplitError
from dataplatform.train.trainer import TrainingDataError, train_model, training_dataset_version
from dataplatform.transform.dbt_runner import DbtResult, TransformError, run_dbt

# Sample data shipped with the repository: the default sources of `run`.
PROJECT_DIR = Path(__file__).resolve().parents[2]
SAMPLE_DATA_DIR = PROJECT_DIR / "data" / "commits"
HEADLINE_METRICS = ("f1_score", "accuracy", "precision", "recall")
UNKNOWN_REPO = "unknown/unknown"  # partition for quarantined lines that name no repository


class PipelineError(RuntimeError):
    """A stage failed; the message says which and why (never with secret values)."""


class NoModelToScore(PipelineError):
    """No version holds the alias that batch scoring asked for."""


# --- results ---------------------------------------------------------------------------------
@dataclass
class SourceIngest:
    """What one source produced in one ingest."""

    source: str
    kind: str
    rows: int = 0
    quarantined: int = 0
    batches: list[BatchManifest] = field(default_factory=list)
    repos: list[str] = field(default_factory=list)


@dataclass
class IngestResult:
    sources: list[SourceIngest]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sources)

    @property
    def quarantined(self) -> int:
        return sum(s.quarantined for s in self.sources)


@dataclass
class LoadResult:
    summary: LoadSummary
    row_counts: dict[str, int]
    seconds: float


@dataclass
class TrainOutcome:
    """A trained (or reused) model version with its test metrics and what the gates said."""

    spec_name: str
    registered: RegisteredVersion
    run_id: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    per_repo_f1: dict[str, float]
    baseline_per_repo_f1: dict[str, float]
    n_test: int
    cutoff: str
    dataset_version: str
    seconds: float
    reused: bool = False  # same data and code as an existing version: nothing retrained
    semver: str = ""
    staging: PromotionOutcome | None = None


@dataclass
class RunResult:
    ingest: IngestResult
    load: LoadResult
    transform: DbtResult
    models: list[TrainOutcome]
    row_counts: dict[str, int]
    mlflow_ui: str
    seconds: float
    labels: LabelLoadResult | None = None
    scorings: list[BatchScoreResult] = field(default_factory=list)
    quality: list[QualityReport] = field(default_factory=list)
    ccp: list[RepositoryMonthCcp] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- progress --------------------------------------------------------------------------------
@contextmanager
def _progress(console: Console | None) -> Iterator[Progress]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=console is None,
    )
    with progress:
        yield progress


# --- stages ----------------------------------------------------------------------------------
def default_sources() -> list[str]:
    """The sample commit datasets shipped in data/commits."""
    return sorted(str(p) for p in SAMPLE_DATA_DIR.glob("*.jsonl*"))


def ingest(
    settings: Settings,
    specs: Sequence[str],
    *,
    console: Console | None = None,
    live: LiveLoader | None = None,
) -> IngestResult:
    """Read each source incrementally and write one raw batch per repository to the store
    (with `live`, loading each batch into the warehouse while it is written)."""
    started = time.perf_counter()
    if not specs:
        raise PipelineError("ingest needs at least one source (path, clone URL or dataset file)")
    store = ObjectStore.from_settings(settings)
    try:
        sources = [resolve_source(spec, settings) for spec in specs]
    except SourceError as exc:
        raise PipelineError(str(exc)) from None
    known = latest_watermarks(store)
    results = []
    with _progress(console) as progress:
        for source in sources:
            task = progress.add_task(f"ingest {source.name}", total=None)
            try:
                results.append(_ingest_source(settings, store, source, known, progress, task, live))
            except SourceError as exc:
                raise PipelineError(f"ingest of {source.name} failed: {exc}") from None
            progress.remove_task(task)
    return IngestResult(results, time.perf_counter() - started)


def _ingest_source(
    settings: Settings,
    store: ObjectStore,
    source: Source,
    known: dict[tuple[str, str], Watermark],
    progress: Progress,
    task: Any,
    live: LiveLoader | None = None,
) -> SourceIngest:
    previous = {repo: wm for (src, repo), wm in known.items() if src == source.name}
    writers: dict[str, BatchWriter] = {}
    outcome = SourceIngest(source=source.name, kind=source.kind)

    def writer_for(repo: str) -> BatchWriter:
        if repo not in writers:
            writers[repo] = BatchWriter(
                store,
                repo=repo,
                source=source.name,
                batch_rows=settings.ingest_batch_rows,
                spool_dir=settings.home / "tmp",
                sink=live.sink() if live is not None else None,
            )
        return writers[repo]

    (settings.home / "tmp").mkdir(parents=True, exist_ok=True)
    try:
        for n, record in enumerate(source.iter_records(previous), start=1):
            if isinstance(record, CommitRecord):
                writer_for(record.repo).add(record)
                outcome.rows += 1
            else:
                writer_for(_quarantine_repo(record, writers)).add(record)
                outcome.quarantined += 1
            if n % 1000 == 0:
                progress.update(task, completed=n)
        watermarks = source.watermarks()
        for repo, writer in writers.items():
            mark = watermarks.get(repo) or Watermark(repo=repo, source=source.name, head_sha=None)
            manifest = writer.close(mark)
            if manifest is not None:
                outcome.batches.append(manifest)
                outcome.repos.append(repo)
    finally:
        for writer in writers.values():
            writer.abort()
    return outcome


def _quarantine_repo(record: QuarantinedRecord, writers: dict[str, BatchWriter]) -> str:
    """Where a quarantined record goes: its own repo, else the source's only repo so far."""
    if record.repo and "/" in record.repo:
        return record.repo
    if len(writers) == 1:
        return next(iter(writers))
    return UNKNOWN_REPO


def load(
    settings: Settings, *, console: Console | None = None, live: LiveLoader | None = None
) -> LoadResult:
    """Load every raw batch the warehouse has not seen yet (atomic per batch, idempotent).

    With `live` (the ingest loaded its batches live), its open warehouse connection is used
    and what it loaded counts as this stage's work.
    """
    started = time.perf_counter()
    store = ObjectStore.from_settings(settings)
    pii_key = settings.pii_hash_key.get_secret_value().encode()
    with ExitStack() as stack:
        warehouse = live.warehouse if live is not None else stack.enter_context(_open(settings))
        progress = stack.enter_context(_progress(console))
        warehouse.ensure_raw_schema()
        task = progress.add_task("load batches into raw.commits", total=None)

        def on_batch(done: int, total: int, *_: object) -> None:
            progress.update(task, completed=done, total=total)

        try:
            summary = load_pending(store, warehouse, pii_key, progress=on_batch)
        except ChecksumMismatchError as exc:
            raise PipelineError(str(exc)) from None
        counts = warehouse.table_row_counts(("raw",))
    if live is not None:  # what was loaded during ingest counts as this stage's work
        summary = live.summary(after=summary)
    return LoadResult(summary, counts, time.perf_counter() - started)


def transform(settings: Settings, *, console: Console | None = None) -> DbtResult:
    """Build and test the dbt project on the configured warehouse."""
    with _open(settings.for_stage("ml")) as warehouse:
        # dbt reads the predictions tables as a source before any model has scored.
        ensure_predictions_table(warehouse)
    with _progress(console) as progress:
        progress.add_task("dbt build (staging → intermediate → marts, with tests)", total=None)
        try:
            return run_dbt(settings.for_stage("transform"))
        except TransformError as exc:
            raise PipelineError(str(exc)) from None


def train(
    settings: Settings,
    spec_name: str,
    *,
    console: Console | None = None,
    reuse_unchanged: bool = False,
    promote_to_staging: bool = True,
) -> TrainOutcome:
    """Train `spec_name` on its feature mart, log to MLflow, register a version with its
    semantic version, and offer it to the `staging` gates.

    With `reuse_unchanged`, a version trained on the same rows by the same code is reused
    instead of retrained, so re-running the pipeline changes nothing.
    """
    started = time.perf_counter()
    settings = settings.for_stage("ml")
    spec = MODEL_SPECS.get(spec_name)
    if spec is None:
        raise PipelineError(f"unknown model {spec_name!r}; known: {', '.join(sorted(MODEL_SPECS))}")
    with _open(settings) as warehouse:
        frame = warehouse.query_df(f"SELECT * FROM {spec.training_mart}")
    if frame.empty:
        raise PipelineError(f"{spec.training_mart} is empty: run ingest, load and transform first")
    lineage = Lineage.from_git(PROJECT_DIR)
    client = configure_mlflow(settings)
    if reuse_unchanged:
        same = {
            "dataset_version": training_dataset_version(spec, frame),
            "git_commit": lineage.git_commit,
        }
        existing = find_version(settings, spec.name, same)
        if existing is not None:
            outcome = _outcome_from_run(client, spec.name, existing, time.perf_counter() - started)
            outcome.semver = str(assign_semver(client, spec.name, str(existing.version)))
            return outcome
    with _progress(console) as progress:
        task = progress.add_task(f"train {spec.name} on {len(frame):,} rows", total=None)
        try:
            result = train_model(
                spec,
                frame,
                settings,
                lineage=lineage,
                progress=lambda msg: progress.update(task, description=f"{spec.name}: {msg}"),
            )
        except (TrainingDataError, SplitError) as exc:
            raise PipelineError(f"training {spec.name} failed: {exc}") from None
        progress.update(task, description=f"register {spec.name}")
        registered = register_model(settings, result, spec)
        semver = str(assign_semver(client, spec.name, str(registered.version)))
    outcome = TrainOutcome(
        spec_name=spec.name,
        registered=registered,
        run_id=result.run_id,
        metrics=result.metrics,
        baseline_metrics=result.baseline_metrics,
        per_repo_f1=result.per_repo_f1,
        baseline_per_repo_f1=result.baseline_per_repo_f1,
        n_test=result.n_test,
        cutoff=result.cutoff,
        dataset_version=result.dataset_version,
        seconds=time.perf_counter() - started,
        semver=semver,
    )
    if promote_to_staging:
        with open_lifecycle(settings, thresholds_path=settings.thresholds_path) as lifecycle:
            outcome.staging = lifecycle.promote(
                spec.name,
                str(registered.version),
                "staging",
                actor="pipeline",
                reason="automatic after training",
            )
    return outcome


def _outcome_from_run(
    client: Any, name: str, version: RegisteredVersion, seconds: float
) -> TrainOutcome:
    """Rebuild a `TrainOutcome` of an existing version from its MLflow run."""
    run = client.get_run(version.run_id)
    metrics, params = run.data.metrics, run.data.params
    prefix, base_prefix = "f1_score__repo__", "baseline_f1_score__repo__"
    return TrainOutcome(
        spec_name=name,
        registered=version,
        run_id=version.run_id,
        metrics={k: metrics[k] for k in HEADLINE_METRICS if k in metrics},
        baseline_metrics={
            k: metrics[f"baseline_{k}"] for k in HEADLINE_METRICS if f"baseline_{k}" in metrics
        },
        per_repo_f1={
            k.removeprefix(prefix).replace("__", "/", 1): v
            for k, v in metrics.items()
            if k.startswith(prefix)
        },
        baseline_per_repo_f1={
            k.removeprefix(base_prefix).replace("__", "/", 1): v
            for k, v in metrics.items()
            if k.startswith(base_prefix)
        },
        n_test=int(params.get("n_test", 0)),
        cutoff=params.get("split_cutoff", "?"),
        dataset_version=version.tags.get("dataset_version", ""),
        seconds=seconds,
        reused=True,
    )


def predict(
    settings: Settings,
    model_name: str = "commit-classifier",
    alias: str = "production",
    *,
    console: Console | None = None,
) -> BatchScoreResult:
    """Score every commit the `alias` version of `model_name` has not scored yet."""
    settings = settings.for_stage("ml")
    with _open(settings) as warehouse, _progress(console) as progress:
        task = progress.add_task(f"batch scoring with {model_name}@{alias}", total=None)
        try:
            spec = MODEL_SPECS.get(model_name)
            return predict_batch(
                settings,
                warehouse,
                model_name=model_name,
                alias=alias,
                source_table=spec.score_from if spec else None,
                progress=lambda msg: progress.update(task, description=msg),
            )
        except NoModelForAlias as exc:
            raise NoModelToScore(str(exc)) from None
        except BatchInferenceError as exc:
            raise PipelineError(str(exc)) from None


def check_quality(
    settings: Settings, batch_ids: Sequence[str], *, feature_mart: bool
) -> list[QualityReport]:
    """Data quality of new raw batches and (when it changed) the feature mart, stored in
    `monitoring.checks` under a run id of its own. Nothing new → nothing checked or written.

    Raw batches are checked as the pipeline login, the feature mart as the ML login: neither
    may read the other's schema."""
    now = datetime.now(UTC)
    run_id = f"quality-{now:%Y%m%dT%H%M%S%fZ}"
    reports: list[QualityReport] = []
    if batch_ids:
        with _open(settings) as warehouse:
            reports.extend(
                _write_quality(warehouse, run_id, now, check_ingest_batches(warehouse, batch_ids))
            )
    if feature_mart:
        with _open(settings.for_stage("ml")) as warehouse:
            reports.extend(_write_quality(warehouse, run_id, now, [check_feature_mart(warehouse)]))
    return reports


def _write_quality(
    warehouse: Warehouse, run_id: str, now: datetime, reports: list[QualityReport]
) -> list[QualityReport]:
    """Store `reports` as checks of `run_id`; returns them."""
    if reports:
        ensure_monitoring_tables(warehouse)
        checks = [c for r in reports for c in r.checks(prefix=f"quality:{r.dataset}")]
        write_checks(warehouse, run_id, checks, checked_at=now)
    return reports


def monitor_deps(settings: Settings, model_name: str) -> MonitorDeps:
    """What the monitor needs from the registry: thresholds, the promotion floor, rollback."""
    thresholds = load_thresholds(settings.thresholds_path).for_model(model_name)

    def rollback(name: str, reason: str) -> RollbackOutcome:
        with open_lifecycle(settings, thresholds_path=settings.thresholds_path) as lifecycle:
            return lifecycle.rollback(name, reason=reason, actor="monitor", automatic=True)

    return MonitorDeps(
        thresholds=thresholds.monitoring, f1_floor=thresholds.gates.min_f1, rollback=rollback
    )


def load_labels_stage(settings: Settings, labels_dir: Path | None = None) -> LabelLoadResult:
    """Load the human-labelled commit CSVs of `labels_dir` (or settings) into raw.commit_labels."""
    try:
        folder = resolve_labels_dir(labels_dir, settings)
        with _open(settings) as warehouse:
            return load_labels(warehouse, folder)
    except LabelsError as exc:
        raise PipelineError(str(exc)) from None


def run(settings: Settings, specs: Sequence[str], *, console: Console | None = None) -> RunResult:
    """The whole pipeline on `specs` (default: the shipped sample data).

    Trains `commit-classifier` always and `corrective-classifier` when labels are configured;
    batch-scores with every model that has a production version; summarises the corrective
    commit probability (CCP) per repository and month once one has scored.
    """
    started = time.perf_counter()
    with _open(settings) as warehouse:  # load each new batch while it is ingested (DuckDB)
        live = LiveLoader(
            ObjectStore.from_settings(settings),
            warehouse,
            settings.pii_hash_key.get_secret_value().encode(),
        )
        try:
            live.load_pending_first()
        except ChecksumMismatchError as exc:
            raise PipelineError(str(exc)) from None
        ingested = ingest(settings, list(specs) or default_sources(), console=console, live=live)
        loaded = load(settings, console=console, live=live)
    labels = load_labels_stage(settings) if settings.labels_dir else None
    built = transform(settings, console=console)
    new_batches = [m.batch_id for src in ingested.sources for m in src.batches]
    quality = check_quality(settings, new_batches, feature_mart=loaded.summary.rows_inserted > 0)
    models = [train(settings, "commit-classifier", console=console, reuse_unchanged=True)]
    if labels is not None:
        models.append(
            train(settings, "corrective-classifier", console=console, reuse_unchanged=True)
        )
    notes: list[str] = []
    scorings = []
    for model in models:
        try:
            scorings.append(predict(settings, model.spec_name, "production", console=console))
        except NoModelToScore:
            notes.append(
                f"no production version of {model.spec_name} yet, so no batch scoring: promote "
                f"one with `dataplatform model promote {model.spec_name} "
                f"{model.registered.version} --to production --approve --approver NAME "
                "--reason TEXT`"
            )
    with _open(settings) as warehouse:
        counts = warehouse.table_row_counts(("raw",))
    with _open(settings.for_stage("ml")) as warehouse:
        counts |= warehouse.table_row_counts(("analytics",))
        try:
            ccp = repository_monthly_ccp(warehouse)
        except CcpUnavailable:
            ccp = []
    return RunResult(
        ingest=ingested,
        load=loaded,
        transform=built,
        models=models,
        row_counts=counts,
        mlflow_ui=mlflow_ui_command(settings),
        seconds=time.perf_counter() - started,
        labels=labels,
        scorings=scorings,
        quality=quality,
        ccp=ccp,
        notes=notes,
    )


@contextmanager
def _open(settings: Settings) -> Iterator[Warehouse]:
    settings.home.mkdir(parents=True, exist_ok=True)
    warehouse = open_warehouse(settings)
    try:
        yield warehouse
    finally:
        warehouse.close()
