"""`dataplatform deploy ...`: the CI/CD pipeline's steps (mounted by the lead in cli.py).

Exit codes: 0 ok, 1 failure (bad input), 2 a policy said no (outside the change window).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from dataplatform.deploy.change_window import DEFAULT_WINDOWS, in_change_window, parse_windows
from dataplatform.deploy.gitops import GitOpsError, set_image, values_path

deploy_app = typer.Typer(
    name="deploy",
    help="Deployment steps for CI/CD: change window, GitOps image bump.",
    no_args_is_help=True,
    add_completion=False,
)

WINDOWS_ENV = "DATAPLATFORM_CHANGE_WINDOWS"


@deploy_app.command("check-window")
def check_window(
    at: Annotated[
        str | None,
        typer.Option(help="ISO time to check (default: now). Naive times are taken as UTC."),
    ] = None,
    windows: Annotated[
        str | None,
        typer.Option(
            help="Windows in UTC, e.g. 'tue,thu 10:00-14:00; sat 08:00-09:00' "
            f"(default: ${WINDOWS_ENV}, else Tue/Thu 10:00-14:00).",
        ),
    ] = None,
) -> None:
    """Exit 0 inside a production change window, 2 outside it."""
    spec = windows or os.environ.get(WINDOWS_ENV)
    try:
        allowed = parse_windows(spec) if spec else DEFAULT_WINDOWS
        now = datetime.now(UTC) if at is None else datetime.fromisoformat(at)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    stamp = now.astimezone(UTC).strftime("%a %Y-%m-%d %H:%M UTC")
    if in_change_window(now, allowed):
        typer.echo(f"inside the change window ({stamp}): deployment allowed")
        return
    typer.echo(f"outside the change window ({stamp}): deployment refused", err=True)
    raise typer.Exit(2)


@deploy_app.command("set-image")
def set_image_command(
    env: Annotated[str, typer.Option("--env", help="Environment: dev | staging | prod.")],
    tag: Annotated[str, typer.Option("--tag", help="Image tag to deploy (the git SHA).")],
    gitops_dir: Annotated[
        Path, typer.Option("--gitops-dir", help="Root of the GitOps tree (holds environments/).")
    ] = Path("gitops"),
) -> None:
    """Write the image tag into gitops/environments/ENV/values.yaml, keeping comments."""
    try:
        path = values_path(gitops_dir, env)
        previous = set_image(path, tag)
    except GitOpsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{path}: imageTag {previous or '(unset)'} -> {tag}")


def smoke(
    url: Annotated[str, typer.Option(help="Base URL of the deployed API.")],
    model: Annotated[str, typer.Option(help="Model to ask for one prediction.")] = (
        "commit-classifier"
    ),
    attempts: Annotated[int, typer.Option(min=1, help="Tries per check.")] = 5,
    backoff: Annotated[float, typer.Option(min=0.0, help="First wait between tries (s).")] = 2.0,
) -> None:
    """Smoke-test a deployment: /health, /api/v1/status and one prediction, with retries.

    Exit 0 when every check passed, 1 when the API answered wrongly, 3 when it was unreachable.
    """
    from dataplatform.deploy.smoke import run_smoke

    result = run_smoke(url, model=model, attempts=attempts, backoff_s=backoff)
    for check in result.checks:
        mark = "ok  " if check.passed else "FAIL"
        typer.echo(f"{mark} {check.name:8} {check.detail} (attempts: {check.attempts})")
    typer.echo(f"smoke test of {url}: {'passed' if result.passed else 'failed'}")
    raise typer.Exit(result.exit_code)
