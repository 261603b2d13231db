"""`dataplatform serve`: a Typer command function the main CLI mounts (`app.command()(serve)`)."""

from __future__ import annotations

from typing import Annotated

import typer

from dataplatform.config import Settings, SettingsError, get_settings


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Bind address [DATAPLATFORM_SERVE_HOST].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [DATAPLATFORM_SERVE_PORT].")] = None,
    reload_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between registry alias polls; 0 = off "
            "[DATAPLATFORM_SERVE_RELOAD_INTERVAL_S]."
        ),
    ] = None,
    canary_share: Annotated[
        float | None,
        typer.Option(
            help="Share of requests answered by `staging` [DATAPLATFORM_SERVE_CANARY_SHARE]."
        ),
    ] = None,
    shadow: Annotated[
        bool | None,
        typer.Option("--shadow/--no-shadow", help="Score with `staging` too (logged only)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the `production` model over HTTP (REST, Open Inference Protocol v2, /metrics)."""
    import uvicorn

    from dataplatform.serve.api.app import create_app
    from dataplatform.serve.settings import ServeSettings

    settings = ctx.obj if isinstance(ctx.obj, Settings) else None
    if settings is None:
        try:
            settings = get_settings()
        except SettingsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    overrides = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "reload_interval_s": reload_interval,
            "canary_share": canary_share,
            "shadow": shadow,
        }.items()
        if value is not None
    }
    serve_settings = ServeSettings(**overrides)  # type: ignore[arg-type]
    app = create_app(settings, serve_settings)
    uvicorn.run(
        app,
        host=serve_settings.host,
        port=serve_settings.port,
        log_level=log_level,
        access_log=False,  # per-request logs cost latency; /metrics has the counts
        timeout_graceful_shutdown=10,
    )


def main() -> None:
    """Stand-alone entry point (`python -m dataplatform.serve.cli`) until the CLI mounts it."""
    app = typer.Typer(add_completion=False)
    app.command()(serve)
    app()


if __name__ == "__main__":
    main()
