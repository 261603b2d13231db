"""`dataplatform db ...` and `dataplatform secrets ...` (two Typer sub-apps).

Mount with ``app.add_typer(db_app, name="db")`` and ``app.add_typer(secrets_app, name="secrets")``.
Settings come from ``ctx.obj`` (a `Settings`) or `get_settings()`. Exit codes: 0 ok, 1 failure,
2 a policy said no (catalog audit findings, secrets overdue with ``--check``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dataplatform.config import Settings, SettingsError, get_settings

EXIT_FAILURE = 1
EXIT_POLICY = 2

db_app = typer.Typer(
    name="db",
    help="Database schema: migrations, row-level security audit.",
    no_args_is_help=True,
    add_completion=False,
)
secrets_app = typer.Typer(
    name="secrets",
    help="Secrets rotation: status against the policy, rotate database passwords.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    if isinstance(ctx.obj, Settings):
        return ctx.obj
    try:
        ctx.obj = get_settings()
    except SettingsError as exc:
        raise _fail(exc) from None
    return ctx.obj


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
    return typer.Exit(EXIT_FAILURE)


def _admin_conninfo(settings: Settings) -> str:
    password = settings.postgres_admin_password or settings.postgres_password
    return settings.postgres_conninfo(
        user=settings.postgres_admin_user or settings.postgres_user,
        password=password.get_secret_value(),
    )


def _require_postgres(settings: Settings) -> None:
    if settings.warehouse_backend != "postgres":
        raise _fail(
            RuntimeError("this command needs warehouse_backend=postgres (DuckDB has no roles)")
        )


# --- db --------------------------------------------------------------------------------------
@db_app.command("migrate")
def migrate_command(
    ctx: typer.Context,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Migrations folder (default: sql/migrations).")
    ] = None,
) -> None:
    """Apply pending migrations (as the bootstrap admin) and sync repo → department mapping."""
    import psycopg

    from dataplatform.security.migrate import MigrationError, migrate
    from dataplatform.security.rls import DepartmentConfigError

    settings = _settings(ctx)
    _require_postgres(settings)
    try:
        result = migrate(
            _admin_conninfo(settings),
            directory=directory,
            repo_departments=settings.repo_departments,
        )
    except (MigrationError, DepartmentConfigError, psycopg.Error) as exc:
        raise _fail(exc) from None
    for migration in result.applied:
        console.print(f"applied {migration.path.name}  sha256 {migration.checksum[:12]}")
    console.print(
        f"{len(result.applied)} applied, {result.already_applied} already applied; "
        f"{result.departments} repositories mapped to departments"
    )


@db_app.command("create-login")
def create_login_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the new LOGIN role.")],
    group: Annotated[
        str,
        typer.Option(help="Group role: pipeline_service, dbt_service, ml_service, data_analyst, …"),
    ],
    password_file: Annotated[
        Path,
        typer.Option(
            help="Secret file of the password: read if it exists, else a random password is "
            "written there (mode 600). Never printed."
        ),
    ],
    department: Annotated[
        list[str] | None, typer.Option(help="Department whose rows the login may read.")
    ] = None,
) -> None:
    """Create a LOGIN role in a group role (as the bootstrap admin); audited."""
    import secrets

    import psycopg

    from dataplatform.security.audit import insert_event
    from dataplatform.security.roles import create_login

    settings = _settings(ctx)
    _require_postgres(settings)
    if password_file.exists():
        password = password_file.read_text(encoding="utf-8").strip()
        if len(password) < 16:
            raise _fail(ValueError(f"{password_file}: a password needs at least 16 characters"))
    else:
        password = secrets.token_urlsafe(32)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password)
    departments = tuple(department or ())
    try:
        with (
            psycopg.connect(_admin_conninfo(settings), autocommit=True) as conn,
            conn.transaction(),
        ):
            create_login(conn, name, password, group, departments=departments)
            insert_event(
                conn,
                "db.create_login",
                name,
                details={"group": group, "departments": list(departments)},
            )
    except (ValueError, psycopg.Error) as exc:
        raise _fail(exc) from None
    console.print(f"created login {name} in {group}; password in {password_file}")


@db_app.command("audit")
def audit_command(ctx: typer.Context) -> None:
    """Catalog audit of row-level security; exit 2 when anything breaks the contract."""
    import psycopg

    from dataplatform.security.rls import audit_catalog

    settings = _settings(ctx)
    _require_postgres(settings)
    try:
        with psycopg.connect(_admin_conninfo(settings)) as conn:
            findings = audit_catalog(conn)
    except psycopg.Error as exc:
        raise _fail(exc) from None
    for finding in findings:
        console.print(str(finding), highlight=False)
    if findings:
        raise typer.Exit(EXIT_POLICY)
    console.print("row-level security audit: no findings")


# --- secrets ---------------------------------------------------------------------------------
@secrets_app.command("status")
def status_command(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 2 when a secret is overdue or never rotated.")
    ] = False,
) -> None:
    """Age, due date and notice state of every secret of the rotation policy."""
    from dataplatform.security.secrets import (
        RotationConfigError,
        RotationLedger,
        load_rotation_config,
        statuses,
    )

    settings = _settings(ctx)
    try:
        config = load_rotation_config(settings.rotation_policy_path)
        rows = statuses(config, RotationLedger.from_settings(settings), datetime.now(UTC))
    except RotationConfigError as exc:
        raise _fail(exc) from None
    header = ("secret", "type", "last rotated", "age (days)", "due", "notice from", "state")
    lines = [header] + [
        (
            row.name,
            row.secret_type,
            _day(row.last_rotated_at),
            "-" if row.age_days is None else str(row.age_days),
            _day(row.due_at),
            _day(row.notify_from),
            row.state.value,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:  # plain columns: readable in CronJob logs and greppable
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    if check and any(r.needs_action for r in rows):
        raise typer.Exit(EXIT_POLICY)


def _day(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d")


@secrets_app.command("rotate")
def rotate_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret of the policy, e.g. postgres_password.")],
    role: Annotated[
        str | None, typer.Option(help="LOGIN role (default: policy's, else postgres_user).")
    ] = None,
    target: Annotated[
        str,
        typer.Option(help="auto (Kubernetes when in a cluster, else file) | file | kubernetes."),
    ] = "auto",
    secrets_dir: Annotated[
        Path | None,
        typer.Option(
            "--secrets-dir",
            envvar="DATAPLATFORM_SECRETS_DIR",
            help="Mounted-secrets folder of the file target.",
        ),
    ] = None,
) -> None:
    """Rotate a database password: ALTER ROLE, write the target, verify new/old logins."""
    from dataplatform.security.rotation import (
        FileSecretTarget,
        KubernetesSecretTarget,
        RotationError,
        SecretTarget,
        rotate_database_password,
    )
    from dataplatform.security.secrets import (
        RotationConfigError,
        RotationLedger,
        load_rotation_config,
    )

    settings = _settings(ctx)
    _require_postgres(settings)
    try:
        spec, _policy = load_rotation_config(settings.rotation_policy_path).policy_of(name)
    except (RotationConfigError, KeyError) as exc:
        raise _fail(exc) from None
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    kind = ("kubernetes" if in_cluster else "file") if target == "auto" else target
    secret_target: SecretTarget
    try:
        if kind == "kubernetes":
            if not spec.kubernetes_secret:
                raise RotationError(f"{name} has no kubernetes_secret in the rotation policy")
            secret_target = KubernetesSecretTarget.in_cluster(spec.kubernetes_secret, spec.key)
        elif kind == "file":
            if secrets_dir is None:
                raise RotationError("file target needs --secrets-dir or DATAPLATFORM_SECRETS_DIR")
            secret_target = FileSecretTarget(secrets_dir, spec.key)
        else:
            raise RotationError(f"unknown target {target!r}; use auto, file or kubernetes")
        result = rotate_database_password(
            settings, spec, secret_target, ledger=RotationLedger.from_settings(settings), role=role
        )
    except Exception as exc:  # psycopg, OS and API errors: messages never hold the value
        raise _fail(exc) from None
    console.print(
        f"rotated {result.secret} (role {result.role}) at {result.rotated_at.isoformat()}; "
        f"new secret in {result.target}; new password logs in, old one refused: "
        f"{'n/a' if result.old_password_refused is None else 'yes'}",
        highlight=False,
    )


@secrets_app.command("record")
def record_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret rotated by hand (e.g. admin_token).")],
) -> None:
    """Record that a secret was rotated by hand now (manual policies such as API keys)."""
    from dataplatform.security.secrets import (
        RotationConfigError,
        RotationLedger,
        load_rotation_config,
    )

    settings = _settings(ctx)
    try:
        load_rotation_config(settings.rotation_policy_path).policy_of(name)
        RotationLedger.from_settings(settings).record(name, datetime.now(UTC))
    except (RotationConfigError, KeyError) as exc:
        raise _fail(exc) from None
    console.print(f"recorded rotation of {name}")
