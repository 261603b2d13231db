"""`dataplatform monitor`: one monitor run with a readable verdict; exit 0 ok, 2 alert/critical.

The monitor stage imports no other stage, so the command is built around a `Wiring` function
the composition root supplies (thresholds from the threshold file, the lifecycle's rollback)::

    from dataplatform.monitor.cli import make_monitor_command
    app.command("monitor")(make_monitor_command(monitor_deps))

where ``monitor_deps(settings, model_name) -> MonitorDeps`` comes from the composition root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from dataplatform.config import Settings, SettingsError, get_settings

if TYPE_CHECKING:  # the runner (pandas, Evidently) is imported when the command runs
    from dataplatform.monitor.runner import MonitorDeps, MonitorOutcome

Wiring = Callable[[Settings, str], "MonitorDeps"]
_STYLE = {"ok": "green", "alert": "yellow", "critical": "bold red"}


def print_outcome(console: Console, outcome: MonitorOutcome, *, verbose: bool = False) -> None:
    """The verdict first, then what drove it, then where the details are."""
    m, d = outcome.model, outcome.decision
    label = f"{m.name} version {m.version}" + (f" ({m.semver})" if m.semver else "")
    style = _STYLE[d.verdict]
    console.print(
        f"[{style}]{d.verdict.upper()}[/{style}] {label}: {outcome.window_rows} recent commits, "
        f"rule {d.k} of the last {d.n} windows ({d.windows} seen)"
    )
    shown = [
        c
        for c in outcome.checks
        if verbose or c.severity != "ok" or c.kind in ("performance", "api")
    ]
    hidden = len(outcome.checks) - len(shown)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("level", "check", "value", "threshold", "detail"):
        table.add_column(col, overflow="fold")
    for c in shown:
        table.add_row(
            f"[{_STYLE[c.severity]}]{c.severity}[/{_STYLE[c.severity]}]",
            c.name,
            "n/a" if c.value is None else f"{c.value:.4g}",
            "" if c.threshold is None else f"{c.threshold:g}",
            c.detail,
        )
    console.print(table)
    if hidden:
        console.print(f"{hidden} more checks ok (quality per column, PSI per feature; --verbose)")
    for reason in d.reasons:
        console.print(f"confirmed: {reason}")
    for name, sev in d.pending.items():
        console.print(f"watching: {name} is {sev} in this window, not yet confirmed")
    if outcome.incident is not None:
        inc = outcome.incident
        console.print(
            f"[bold red]incident {inc.incident_id}[/bold red]: {inc.summary}; action "
            f"{inc.action} ({inc.action_status})"
            + (f", production now version {inc.rolled_back_to}" if inc.rolled_back_to else "")
            + (f"; error: {inc.error}" if inc.error else "")
        )
    if outcome.detected_at and outcome.rolled_back_at:
        seconds = (outcome.rolled_back_at - outcome.detected_at).total_seconds()
        console.print(f"detection → registry rollback: {seconds:.2f} s")
    if outcome.report_path:
        console.print(f"drift report: {outcome.report_path}")
    if outcome.mlflow_run_id:
        console.print(f"MLflow run: {outcome.mlflow_run_id}")


def make_monitor_command(wire: Wiring) -> Callable[..., None]:
    """The Typer command function, closed over the composition root's `wire`."""

    def monitor(
        ctx: typer.Context,
        model: Annotated[str, typer.Option(help="Registered model to watch.")] = (
            "commit-classifier"
        ),
        auto_rollback: Annotated[
            bool,
            typer.Option(
                "--auto-rollback/--no-auto-rollback",
                help="On a confirmed critical, roll production back to the previous version.",
            ),
        ] = False,
        api_url: Annotated[
            str | None,
            typer.Option(help="Base URL of the running API; its /metrics gives the error rate."),
        ] = None,
        metrics_file: Annotated[
            Path | None,
            typer.Option(help="A saved /metrics snapshot to use instead of --api-url."),
        ] = None,
        report: Annotated[
            bool, typer.Option("--report/--no-report", help="Write the Evidently HTML report.")
        ] = True,
        verbose: Annotated[bool, typer.Option(help="Show every check.")] = False,
    ) -> None:
        """Check data quality, drift and performance of the production model; exit 2 on alert."""
        console = Console()
        settings = ctx.obj if isinstance(ctx.obj, Settings) else None
        try:
            # The ML login: the monitor reads analytics and may roll back (least privilege).
            settings = (settings or get_settings()).for_stage("ml")
        except SettingsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        from dataplatform.monitor.runner import MonitorError, run_monitor

        metrics_text = metrics_file.read_text(encoding="utf-8") if metrics_file else None
        try:
            outcome = run_monitor(
                settings,
                model,
                wire(settings, model),
                auto_rollback=auto_rollback,
                api_url=api_url,
                metrics_text=metrics_text,
                html_report=report,
            )
        except MonitorError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        print_outcome(console, outcome, verbose=verbose)
        raise typer.Exit(outcome.exit_code)

    return monitor
