"""`dataplatform model ...`: promote, rollback, history, list (a Typer sub-app).

Mount with `app.add_typer(model_app, name="model")`. Settings come from `ctx.obj` (a `Settings`,
or an object/dict carrying one as `settings`) or, when absent, from `get_settings()`.
Exit codes: 0 ok, 1 failure, 2 a policy said no (gate failed, approval missing, nothing to roll
back).
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from dataplatform.config import Settings, SettingsError, get_settings
from dataplatform.registry.gates import ALIASES, PRODUCTION, Approval
from dataplatform.registry.history import HistoryEvent, replay
from dataplatform.registry.lifecycle import (
    LifecycleError,
    ModelLifecycle,
    PolicyRefused,
    open_lifecycle,
)
from dataplatform.registry.semver import version_label
from dataplatform.registry.thresholds import ThresholdsError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_POLICY = 2

model_app = typer.Typer(
    name="model",
    help="Model lifecycle: promote through gates, roll back, history, versions.",
    no_args_is_help=True,
    add_completion=False,
)


@model_app.callback()
def _model_options(
    ctx: typer.Context,
    thresholds: Annotated[
        Path | None,
        typer.Option(
            "--thresholds",
            envvar="DATAPLATFORM_THRESHOLDS_PATH",
            help="Threshold file (default: config/thresholds.yaml).",
        ),
    ] = None,
) -> None:
    """Model lifecycle commands."""
    ctx.meta["dataplatform.thresholds_path"] = thresholds


def _settings(ctx: typer.Context) -> Settings:
    obj: Any = ctx.obj
    if isinstance(obj, Settings):
        return obj
    if isinstance(obj, dict) and isinstance(obj.get("settings"), Settings):
        return obj["settings"]
    if isinstance(getattr(obj, "settings", None), Settings):
        return obj.settings
    return get_settings()


def _actor(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _run(ctx: typer.Context, action: Any) -> Any:
    """Open the lifecycle, run `action(lifecycle)`, map errors to exit codes."""
    try:
        settings = _settings(ctx)
        with open_lifecycle(
            settings,
            thresholds_path=ctx.meta.get("dataplatform.thresholds_path")
            or settings.thresholds_path,
        ) as lifecycle:
            return action(lifecycle)
    except PolicyRefused as exc:
        raise _fail(f"refused: {exc}", EXIT_POLICY) from None
    except (LifecycleError, ThresholdsError, SettingsError) as exc:
        raise _fail(f"error: {exc}", EXIT_FAILURE) from None
    except typer.Exit:
        raise
    except Exception as exc:  # the CLI's last line of defence: one readable line, exit 1
        raise _fail(f"error: {type(exc).__name__}: {exc}", EXIT_FAILURE) from None


def _approval(to: str, approve: bool, approver: str | None, reason: str | None) -> Approval | None:
    """Approval from flags; an interactive prompt only when stdin is a terminal."""
    if to != PRODUCTION:
        return None
    if approve:
        return Approval(approver or "", reason or "")
    if not sys.stdin.isatty():
        return None  # a job never blocks on input(): the approval gate fails instead
    if not typer.confirm("Promote to production?", default=False):
        return None
    who = approver or typer.prompt("Approver", default=_actor(None))
    why = reason or typer.prompt("Reason")
    return Approval(who, why)


@model_app.command()
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Registered version number.")],
    to: Annotated[str, typer.Option("--to", help="Target alias: staging | production.")],
    approve: Annotated[
        bool, typer.Option("--approve", help="Approve a production promotion.")
    ] = False,
    approver: Annotated[str | None, typer.Option("--approver", help="Who approves.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why.")] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Recorded actor (default: $USER).")
    ] = None,
) -> None:
    """Promote VERSION of NAME to an alias if every gate passes (exit 2 when a gate says no)."""
    if to not in ALIASES:
        raise _fail(f"error: --to must be one of {', '.join(ALIASES)}", EXIT_FAILURE)
    approval = _approval(to, approve, approver, reason)
    outcome = _run(
        ctx,
        lambda lc: lc.promote(
            name, version, to, actor=_actor(actor), approval=approval, reason=reason
        ),
    )
    for result in outcome.gate_results:
        typer.echo(f"  {result.line()}")
    if outcome.status == "blocked":
        raise _fail(
            f"refused: {name} version {version} ({outcome.semver}) not promoted to {to}: "
            "a gate failed (recorded in the history)",
            EXIT_POLICY,
        )
    if outcome.status == "already_held":
        typer.echo(f"{name} version {version} already holds {to} ({outcome.label})")
        return
    extra = f"; archived version {outcome.archived_version}" if outcome.archived_version else ""
    typer.echo(f"promoted {name} version {version} -> {outcome.label}{extra}")
    if outcome.notification is not None and not outcome.notification.delivered:
        typer.echo(f"warning: notification not delivered ({outcome.notification.error})", err=True)


@model_app.command()
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why production is rolled back.")],
    actor: Annotated[
        str | None, typer.Option("--actor", help="Recorded actor (default: $USER).")
    ] = None,
) -> None:
    """Move production back to the version that held it before (exit 2 if there is none)."""
    outcome = _run(ctx, lambda lc: lc.rollback(name, reason=reason, actor=_actor(actor)))
    typer.echo(
        f"rolled back {name}: version {outcome.from_version} ({outcome.from_semver}) archived; "
        f"production is version {outcome.to_version} "
        f"({version_label(outcome.to_semver, PRODUCTION)}); smoke test scored "
        f"{outcome.smoke_rows_scored} rows"
    )
    if outcome.notification is not None and not outcome.notification.delivered:
        typer.echo(f"warning: notification not delivered ({outcome.notification.error})", err=True)


@model_app.command()
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="ISO time: which version held production then (UTC if no offset)."
        ),
    ] = None,
) -> None:
    """Print the promotion history of NAME, or which version was production at --at."""
    when: datetime | None = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise _fail(f"error: --at {at!r} is not an ISO 8601 time", EXIT_FAILURE) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    events: list[HistoryEvent] = _run(ctx, lambda lc: lc.history(name))
    if when is not None:
        version = replay(events, when).get(PRODUCTION)
        if version is None:
            typer.echo(f"no version of {name} held production at {when.isoformat()}")
            return
        semver = next(
            (e.semver for e in reversed(events) if e.version == version and e.semver), None
        )
        typer.echo(
            f"production at {when.isoformat()}: {name} version {version} "
            f"({version_label(semver, PRODUCTION)})"
        )
        return
    if not events:
        typer.echo(f"no promotion history for {name}")
        return
    for e in events:
        to_part = e.to_alias or ("archived" if e.action == "archive" else "-")
        move = f"{e.from_alias or '-'} -> {to_part}"
        typer.echo(
            f"{e.occurred_at.isoformat()}  {e.action:<8}  v{e.version:<4} {e.semver or '':<9} "
            f"{move:<24} {e.actor:<12} {e.reason or ''}"
        )


@model_app.command("list")
def list_versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Registered model name.")],
) -> None:
    """List the versions of NAME with labels like v2.3.1-production."""

    def rows(lc: ModelLifecycle) -> list[Any]:
        return lc.list_versions(name)

    for row in _run(ctx, rows):
        created = row.created_at.isoformat(timespec="seconds") if row.created_at else ""
        typer.echo(
            f"version {row.version:<4} {row.label:<24} run {row.run_id or '-':<34} {created}"
        )
