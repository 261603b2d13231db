"""The `dataplatform` command: one verb per stage, plus `run` for the whole pipeline.

Commands are thin: parse, build the settings once, call one function of `pipeline`, print a
readable summary. Exit codes: 0 ok, 1 failure, 2 a policy said no.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from dataplatform import report
from dataplatform.config import Settings, SettingsError, get_settings
from dataplatform.deploy.cli import deploy_app, smoke
from dataplatform.monitor.cli import make_monitor_command
from dataplatform.registry.cli import model_app
from dataplatform.security.cli import db_app, secrets_app
from dataplatform.serve.cli import serve
from dataplatform.workers.cli import worker_app

if TYPE_CHECKING:
    from types import ModuleType

    from dataplatform.monitor.runner import MonitorDeps

app = typer.Typer(
    name="dataplatform",
    help="Data & ML platform for git commit history: ingest → warehouse → dbt → train → registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(model_app, name="model", help="Model lifecycle: promote, rollback, history, list.")
app.add_typer(deploy_app, name="deploy", help="Deployment steps: change window, image tags.")
console = Console()
err_console = Console(stderr=True)

SourcesArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Repository paths, clone URLs (https://, git@, file://) or commit dataset files "
        "(.jsonl / .jsonl.gz). Default for `run`: the sample data shipped in data/commits.",
        show_default=False,
    ),
]


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    if not isinstance(settings, Settings):  # sub-commands invoked directly in tests
        settings = get_settings()
        ctx.obj = settings
    return settings


@app.callback()
def _main(
    ctx: typer.Context,
    profile: Annotated[
        str | None, typer.Option(help="Settings profile: dev | staging | prod.")
    ] = None,
    home: Annotated[
        Path | None, typer.Option(help="Home folder of the embedded defaults (DATAPLATFORM_HOME).")
    ] = None,
) -> None:
    overrides: dict[str, object] = {}
    if profile:
        overrides["profile"] = profile
    if home:
        overrides["home"] = home.resolve()
    try:
        ctx.obj = get_settings(**overrides)
    except SettingsError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def _pipeline() -> ModuleType:
    """The composition root, imported on first use: it pulls in every stage (scikit-learn,
    MLflow, dbt), seconds that `--help` and the commands that do not need it should not pay."""
    from dataplatform import pipeline

    return pipeline


def _monitor_deps(settings: Settings, model_name: str) -> MonitorDeps:
    deps: MonitorDeps = _pipeline().monitor_deps(settings, model_name)
    return deps


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@app.command()
def ingest(ctx: typer.Context, sources: SourcesArg = None) -> None:
    """Read commit history from SOURCES and land raw Parquet batches in the object store."""
    settings = _settings(ctx)
    pipeline = _pipeline()
    try:
        result = pipeline.ingest(settings, sources or [], console=console)
    except pipeline.PipelineError as exc:
        raise _fail(exc) from None
    report.print_ingest(console, result)


@app.command()
def load(ctx: typer.Context) -> None:
    """Load every raw batch not yet in the warehouse into `raw.commits` (idempotent)."""
    settings = _settings(ctx)
    pipeline = _pipeline()
    try:
        result = pipeline.load(settings, console=console)
    except pipeline.PipelineError as exc:
        raise _fail(exc) from None
    report.print_load(console, result)


@app.command()
def transform(ctx: typer.Context) -> None:
    """Build the dbt project (staging → intermediate → analytics marts) and run its tests."""
    settings = _settings(ctx)
    pipeline = _pipeline()
    try:
        result = pipeline.transform(settings, console=console)
    except pipeline.PipelineError as exc:
        raise _fail(exc) from None
    report.print_transform(console, result)


@app.command()
def train(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="Model spec to train.")] = "commit-classifier",
) -> None:
    """Train a model spec on the feature mart, log it to MLflow and register a version."""
    settings = _settings(ctx)
    pipeline = _pipeline()
    try:
        result = pipeline.train(settings, model, console=console)
    except pipeline.PipelineError as exc:
        raise _fail(exc) from None
    report.print_train(console, result)


@app.command("predict-batch")
def predict_batch(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="Registered model name.")] = "commit-classifier",
    alias: Annotated[str, typer.Option(help="Alias of the version that scores.")] = "production",
) -> None:
    """Score the commits the ALIAS version has not scored yet into analytics.commit_predictions."""
    settings = _settings(ctx)
    pipeline = _pipeline()
    try:
        result = pipeline.predict(settings, model, alias, console=console)
    except pipeline.NoModelToScore as exc:
        err_console.print(f"[yellow]nothing to do:[/yellow] {exc}")
        raise typer.Exit(2) from None
    except pipeline.PipelineError as exc:
        raise _fail(exc) from None
    report.print_scoring(console, result)


@app.command()
def run(ctx: typer.Context, sources: SourcesArg = None) -> None:
    """Run the whole pipeline: ingest → load → transform → train → register, then summarise."""
    settings = _settings(ctx)
    pipeline = _pipeline()
    try:
        result = pipeline.run(settings, sources or [], console=console)
    except pipeline.PipelineError as exc:
        raise _fail(exc) from None
    report.print_run(console, result, settings)


@app.command("load-labels")
def load_labels(
    ctx: typer.Context,
    labels_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of labelled commit CSVs (default: DATAPLATFORM_LABELS_DIR)."),
    ] = None,
) -> None:
    """Load human-labelled commits (CSV) into raw.commit_labels (idempotent per file)."""
    settings = _settings(ctx)
    pipeline = _pipeline()
    try:
        result = pipeline.load_labels_stage(settings, labels_dir)
    except pipeline.PipelineError as exc:
        raise _fail(exc) from None
    console.print(
        f"{result.rows_written:,} labelled rows written from {len(result.files)} file(s) in "
        f"{result.labels_dir} ({len(result.rejected)} rows rejected with a reason)"
    )


app.command("monitor")(make_monitor_command(_monitor_deps))
app.command("serve")(serve)
app.command("smoke")(smoke)
app.add_typer(db_app, name="db", help="Database migrations, roles and the security audit.")
app.add_typer(secrets_app, name="secrets", help="Secret rotation status and rotation.")
app.add_typer(worker_app, name="worker", help="Scale-out ingestion workers (PostgreSQL).")


def main() -> None:
    """Console-script entry point."""
    app()
