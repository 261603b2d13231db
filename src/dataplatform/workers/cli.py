"""`dataplatform worker ...`: queue sources and run pipeline workers.

Mount with ``app.add_typer(worker_app, name="worker")``; also runs alone as
``python -m dataplatform.workers`` (settings from the environment).
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dataplatform.config import Settings, SettingsError, get_settings
from dataplatform.ingest.errors import SourceError
from dataplatform.ingest.git import is_clone_url, mask_credentials
from dataplatform.ingest.sources import resolve_source
from dataplatform.workers.queue import WorkQueue
from dataplatform.workers.worker import DEFAULT_LEASE_SECONDS, DEFAULT_POLL_SECONDS, Worker

worker_app = typer.Typer(
    help="Scale-out ingestion: queue sources, run workers that ingest and load them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    if isinstance(ctx.obj, Settings):  # built by the main app's callback
        return ctx.obj
    try:
        ctx.obj = get_settings()
    except SettingsError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    return ctx.obj


def _postgres(settings: Settings) -> None:
    if settings.warehouse_backend != "postgres":
        err_console.print(
            "[red]error:[/red] workers coordinate through PostgreSQL: "
            "set DATAPLATFORM_WAREHOUSE_BACKEND=postgres"
        )
        raise typer.Exit(1)


def normalise_source(spec: str, settings: Settings) -> str:
    """The spec as workers anywhere can resolve it: absolute paths; URLs without credentials.

    Raises `SourceError` for a missing path or a URL with an embedded password (the queue is
    readable by operators: credentials belong in git's credential helper).
    """
    spec = spec.strip()
    if is_clone_url(spec):
        if mask_credentials(spec) != spec:
            raise SourceError(
                f"{mask_credentials(spec)}: embedded credentials are not queued; "
                "use a git credential helper"
            )
        resolve_source(spec, settings)
        return spec
    resolve_source(spec, settings)  # exists, is a repository top level or a file
    return str(Path(spec).expanduser().resolve())


@worker_app.command()
def enqueue(
    ctx: typer.Context,
    sources: Annotated[
        list[str], typer.Argument(help="Repository paths, clone URLs or dataset files.")
    ],
) -> None:
    """Queue SOURCES for the workers (a finished source is queued again: incremental)."""
    settings = _settings(ctx)
    _postgres(settings)
    try:
        specs = [normalise_source(s, settings) for s in sources]
    except SourceError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    queue = WorkQueue.connect(settings.postgres_conninfo())
    try:
        queue.ensure_schema()
        queued = queue.enqueue(specs)
        counts = queue.counts()
    finally:
        queue.close()
    console.print(
        f"queued {queued} of {len(specs)} source(s); queue: "
        + ", ".join(f"{n} {status}" for status, n in counts.items())
    )


@worker_app.command()
def work(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="Process at most one item, then exit.")] = False,
    forever: Annotated[
        bool, typer.Option(help="Keep polling when the queue is empty (a long-running service).")
    ] = False,
    lease_seconds: Annotated[
        float, typer.Option(min=1.0, help="Lease length; renewed every third of it.")
    ] = DEFAULT_LEASE_SECONDS,
    poll_seconds: Annotated[
        float, typer.Option(min=0.05, help="Wait between polls of an empty queue.")
    ] = DEFAULT_POLL_SECONDS,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Attempts per item before it is marked failed.")
    ] = 3,
) -> None:
    """Claim and process queued sources until the queue is drained (SIGTERM: finish the current
    item, then exit)."""
    settings = _settings(ctx)
    _postgres(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    worker = Worker(
        settings,
        lease_seconds=lease_seconds,
        poll_seconds=poll_seconds,
        max_attempts=max_attempts,
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_requested.set())
    stats = worker.run(once=once, forever=forever)
    console.print(
        f"worker {worker.worker_id}: {stats.items_done} done, {stats.items_failed} failed, "
        f"{stats.leases_lost} lease(s) lost, {stats.rows_inserted} new rows"
    )
    if stats.items_failed:
        raise typer.Exit(1)


@worker_app.command()
def status(ctx: typer.Context) -> None:
    """Show the queue: each source, its state, attempts and lease."""
    settings = _settings(ctx)
    _postgres(settings)
    queue = WorkQueue.connect(settings.postgres_conninfo())
    try:
        queue.ensure_schema()
        rows = queue.items()
    finally:
        queue.close()
    table = Table("id", "source", "status", "attempts", "lease owner", "new rows", "last error")
    for row in rows:
        table.add_row(
            str(row.item_id),
            row.source,
            row.status,
            str(row.attempts),
            row.lease_owner or "",
            "" if row.rows_inserted is None else str(row.rows_inserted),
            (row.last_error or "")[:80],
        )
    console.print(table)
