"""Readable summaries of pipeline results for the terminal (rich)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from dataplatform.config import Settings

if TYPE_CHECKING:
    from dataplatform.labels import RepositoryMonthCcp
    from dataplatform.pipeline import IngestResult, LoadResult, RunResult, TrainOutcome
    from dataplatform.serve.batch import BatchScoreResult
    from dataplatform.transform.dbt_runner import DbtResult

METRICS = ("f1_score", "accuracy", "precision", "recall")


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}"


def print_ingest(console: Console, result: IngestResult) -> None:
    """Rows and quarantined records per source, and the batches written."""
    table = Table(title="Ingest", title_justify="left")
    for col in ("source", "kind", "rows", "quarantined", "batches"):
        table.add_column(
            col, justify="right" if col in {"rows", "quarantined", "batches"} else "left"
        )
    for s in result.sources:
        table.add_row(s.source, s.kind, f"{s.rows:,}", f"{s.quarantined:,}", str(len(s.batches)))
    console.print(table)
    console.print(
        f"ingested {result.rows:,} new rows, quarantined {result.quarantined:,} "
        f"in {result.seconds:.1f}s"
    )


def print_load(console: Console, result: LoadResult) -> None:
    """Batches and rows loaded into the warehouse."""
    s = result.summary
    console.print(
        f"loaded {s.batches_loaded} batch(es) ({s.batches_skipped} already loaded): "
        f"{s.rows_inserted:,} rows inserted, {s.rows_already_present:,} already present, "
        f"{s.quarantined:,} quarantined — in {result.seconds:.1f}s"
    )


def print_transform(console: Console, result: DbtResult) -> None:
    """dbt models built and tests passed."""
    console.print(result.summary())


def _metrics_table(r: TrainOutcome) -> Table:
    table = Table(
        title=f"{r.spec_name}: test set of {r.n_test:,} commits (split: {r.cutoff})",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("rule baseline", justify="right")
    for name in METRICS:
        table.add_row(name, _fmt(r.metrics.get(name)), _fmt(r.baseline_metrics.get(name)))
    for repo in sorted(set(r.per_repo_f1) | set(r.baseline_per_repo_f1)):
        table.add_row(
            f"f1 {repo}", _fmt(r.per_repo_f1.get(repo)), _fmt(r.baseline_per_repo_f1.get(repo))
        )
    return table


def print_train(console: Console, outcome: TrainOutcome) -> None:
    """Model version, metrics next to the rule baseline, where to look further."""
    console.print(_metrics_table(outcome))
    if any(math.isnan(v) for v in outcome.per_repo_f1.values()):
        console.print("[dim]f1 n/a: no positive commit in that repository's test window[/dim]")
    reg = outcome.registered
    state = (
        "unchanged data and code: reusing"
        if outcome.reused
        else ("registered" if reg.created else "already registered")
    )
    console.print(
        f"{state} [bold]{reg.name}[/bold] version {reg.version} ({outcome.semver}) "
        f"— run {outcome.run_id}, dataset {outcome.dataset_version[:12]}"
    )
    if outcome.staging is not None:
        st = outcome.staging
        gates = "; ".join(g.line() for g in st.gate_results)
        console.print(f"staging gates: {st.status} ({st.label}) — {gates}")


def print_scoring(console: Console, result: BatchScoreResult) -> None:
    """Rows scored by a batch run and the version that scored them."""
    console.print(
        f"[bold]predict[/bold]    {result.rows_scored:,} commits scored by {result.model_name} "
        f"version {result.model_version} ({result.label}), {result.rows_already_scored:,} "
        f"already scored — batch {result.batch_id} into analytics.commit_predictions"
    )


def print_ccp(console: Console, rows: list[RepositoryMonthCcp], months: int = 6) -> None:
    """Corrective commit probability per repository: the latest `months` scored months."""
    table = Table(
        title="corrective commit probability (share of non-merge commits that fix bugs)",
        title_justify="left",
    )
    for col in ("repository", "month", "commits", "corrective", "CCP"):
        table.add_column(col, justify="left" if col in {"repository", "month"} else "right")
    by_repo: dict[str, list[RepositoryMonthCcp]] = {}
    for row in rows:
        by_repo.setdefault(row.repo, []).append(row)
    for repo, repo_rows in sorted(by_repo.items()):
        for row in sorted(repo_rows, key=lambda r: r.month)[-months:]:
            table.add_row(
                repo,
                f"{row.month:%Y-%m}",
                f"{row.scored_commit_count:,}",
                f"{row.corrective_commit_count:,}",
                _fmt(row.ccp),
            )
    console.print(table)


def print_run(console: Console, result: RunResult, settings: Settings) -> None:
    """The end-of-run summary a person reads."""
    console.rule("[bold]data-platform run summary")
    ing, load = result.ingest, result.load.summary
    console.print(
        f"[bold]ingest[/bold]     {ing.rows:,} rows ingested, {ing.quarantined:,} quarantined "
        f"from {len(ing.sources)} source(s)"
    )
    console.print(
        f"[bold]load[/bold]       {load.rows_inserted:,} rows loaded into raw.commits "
        f"({load.rows_already_present:,} already there, {load.batches_loaded} batch(es))"
    )
    t = result.transform
    console.print(
        f"[bold]transform[/bold]  {t.models_built} dbt models built, {t.tests_passed} tests "
        f"passed, {t.tests_failed} failed"
    )
    if result.quality:
        alerts = [r for r in result.quality if r.severity != "ok"]
        console.print(
            f"[bold]quality[/bold]    {len(result.quality)} dataset(s) checked (null rates, schema "
            f"violations; alert above 1 %): "
            + (
                "all ok"
                if not alerts
                else "[red]" + ", ".join(r.dataset for r in alerts) + "[/red]"
            )
        )
    counts = Table(title="warehouse tables", title_justify="left")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for name in sorted(result.row_counts):
        counts.add_row(name, f"{result.row_counts[name]:,}")
    console.print(counts)
    if result.labels is not None:
        lab = result.labels
        console.print(
            f"[bold]labels[/bold]     {lab.rows_written:,} labelled rows written to "
            f"raw.commit_labels from {len(lab.files)} file(s) in {lab.labels_dir}"
        )
    for model in result.models:
        print_train(console, model)
    for scoring in result.scorings:
        print_scoring(console, scoring)
    if result.ccp:
        print_ccp(console, result.ccp)
    for note in result.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    console.print(f"finished in {result.seconds:.1f}s; results under {settings.home}")
    console.print(f"open the MLflow UI on these results:\n  [bold]{result.mlflow_ui}[/bold]")
