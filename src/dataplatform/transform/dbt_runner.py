"""Run the dbt project (`dbt/`) in-process with dbt's programmatic API (`dbtRunner`).

`run_dbt` picks the dbt target from `settings.warehouse_backend`, hands the connection details
to `dbt/profiles.yml` through `DATAPLATFORM_DBT_*` environment variables set only for the
duration of the call, and writes dbt's `target/` and `logs/` under `settings.home/dbt/` so that
the repository tree stays clean. dbt's console output is silenced; failures come back as a
`TransformError` naming the failing nodes, with the PostgreSQL password scrubbed.

DuckDB: dbt-duckdb opens the warehouse file itself. Close your own DuckDB connection to that
file before calling `run_dbt` (a handle with another configuration in this process, or another
process holding the write lock, makes dbt fail) and reopen it afterwards; `run_dbt` closes
dbt-duckdb's handle when it returns.

Not thread-safe: dbt keeps process-global state and the environment variables are global.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dataplatform.config import Settings

DbtCommand = Literal["build", "run", "test", "compile", "seed"]
_COMMANDS: frozenset[str] = frozenset({"build", "run", "test", "compile", "seed"})

# Statuses of dbt's RunResult (RunStatus / TestStatus values).
_FAILED = frozenset({"error", "fail", "runtime error"})
_ENV_PREFIX = "DATAPLATFORM_DBT_"
_REDACTED = "***"


class TransformError(RuntimeError):
    """dbt failed: the message names each failing node and its error (secrets scrubbed)."""

    def __init__(self, message: str, failures: Sequence[NodeStatus] = ()) -> None:
        super().__init__(message)
        self.failures: tuple[NodeStatus, ...] = tuple(failures)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """How one dbt node (model, test, seed, ...) ended."""

    unique_id: str  # e.g. "model.dataplatform.fct_commits"
    name: str
    resource_type: str  # "model", "test", "seed", ...
    status: str  # "success", "pass", "fail", "warn", "error", "skipped", ...
    message: str | None
    failures: int | None  # rows returned by a failing/warning test
    execution_time_s: float


@dataclass(frozen=True, slots=True)
class DbtResult:
    """Outcome of a successful `run_dbt` call."""

    command: str
    target: str
    models_built: int
    tests_passed: int
    tests_failed: int
    tests_warned: int
    nodes: tuple[NodeStatus, ...]
    elapsed_s: float
    target_path: Path
    log_path: Path
    skipped: int = field(default=0)

    def summary(self) -> str:
        """One readable line, e.g. for a CLI."""
        return (
            f"dbt {self.command} ({self.target}): {self.models_built} models, "
            f"{self.tests_passed} tests passed, {self.tests_warned} warned, "
            f"{self.tests_failed} failed in {self.elapsed_s:.1f}s (logs: {self.log_path})"
        )


ProgressCallback = Callable[[NodeStatus], None]


def run_dbt(
    settings: Settings,
    *,
    command: DbtCommand = "build",
    select: str | Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> DbtResult:
    """Run `dbt <command>` on the warehouse of `settings` and return what it did.

    `select` is a dbt selection (one string or several; tests run only when all their parents
    are selected). `progress` is called once per finished
    node. Raises `TransformError` when dbt cannot start or any node errors or fails.
    """
    if command not in _COMMANDS:
        raise ValueError(f"unsupported dbt command {command!r}; use one of {sorted(_COMMANDS)}")
    from dbt.cli.main import dbtRunner  # heavy import: only when a run is asked for

    target = settings.warehouse_backend
    work_dir = settings.home / "dbt"
    target_path = work_dir / f"target-{target}"  # one per backend: partial parsing stays valid
    log_path = work_dir / "logs"
    args = [
        command,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target",
        target,
        "--target-path",
        str(target_path),
        "--log-path",
        str(log_path),
        "--log-level",
        "none",  # no console output; failures are returned in TransformError
        "--log-level-file",
        "info",
        "--no-use-colors",
        "--no-use-colors-file",
        "--no-send-anonymous-usage-stats",  # no network at run time
    ]
    selection = [select] if isinstance(select, str) else list(select or [])
    if selection:
        # "cautious": only tests whose parents are all selected, so that a partial build does not
        # run relationship tests against models it did not build
        args += ["--select", *selection, "--indirect-selection", "cautious"]

    secrets = _secrets(settings)
    callbacks = [_progress_callback(progress)] if progress else []
    started = time.perf_counter()
    try:
        with _temporary_env(dbt_env(settings)):
            outcome = dbtRunner(callbacks=callbacks).invoke(args)
    finally:
        if target == "duckdb":
            _release_duckdb()
    elapsed = time.perf_counter() - started

    if outcome.exception is not None:
        raise TransformError(
            _scrub(f"dbt {command} could not run: {outcome.exception} (logs: {log_path})", secrets)
        ) from None
    nodes = tuple(_node_status(r, secrets) for r in _results(outcome.result))
    failures = [n for n in nodes if n.status in _FAILED]
    if failures or not outcome.success:
        raise TransformError(_failure_message(command, target, failures, log_path), failures)
    return DbtResult(
        command=command,
        target=target,
        models_built=sum(1 for n in nodes if n.resource_type == "model" and n.status == "success"),
        tests_passed=sum(1 for n in nodes if n.resource_type == "test" and n.status == "pass"),
        tests_failed=sum(1 for n in nodes if n.resource_type == "test" and n.status in _FAILED),
        tests_warned=sum(1 for n in nodes if n.resource_type == "test" and n.status == "warn"),
        nodes=nodes,
        elapsed_s=elapsed,
        target_path=target_path,
        log_path=log_path,
        skipped=sum(1 for n in nodes if n.status == "skipped"),
    )


def dbt_env(settings: Settings) -> dict[str, str]:
    """The `DATAPLATFORM_DBT_*` variables `dbt/profiles.yml` reads (holds the PG password)."""
    env = {
        "DATAPLATFORM_DBT_TARGET": settings.warehouse_backend,
        "DATAPLATFORM_DBT_DUCKDB_PATH": str(settings.warehouse_path),
    }
    if settings.warehouse_backend == "postgres":
        env |= {
            "DATAPLATFORM_DBT_PG_HOST": settings.postgres_host,
            "DATAPLATFORM_DBT_PG_PORT": str(settings.postgres_port),
            "DATAPLATFORM_DBT_PG_DBNAME": settings.postgres_db,
            "DATAPLATFORM_DBT_PG_USER": settings.postgres_user,
            "DATAPLATFORM_DBT_PG_PASSWORD": settings.postgres_password.get_secret_value(),
            "DATAPLATFORM_DBT_PG_SSLMODE": settings.postgres_sslmode,
            "DATAPLATFORM_DBT_PG_SSLROOTCERT": str(settings.postgres_sslrootcert or ""),
        }
    return env


@contextmanager
def _temporary_env(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` (and drop other stale DATAPLATFORM_DBT_* vars), restore everything after."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith(_ENV_PREFIX)]:
            del os.environ[key]
        os.environ.update(saved)


def _release_duckdb() -> None:
    """Close the database dbt-duckdb keeps open after a run, so the file can be reopened.

    dbt-duckdb caches its DuckDB instance in a class attribute until the process exits; while it
    is open, this process cannot connect to the file with another configuration (read_only, ...).
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing was opened
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        if environment is not None:
            environment.close()
        DuckDBConnectionManager.close_all_connections()


def _secrets(settings: Settings) -> list[str]:
    password = settings.postgres_password.get_secret_value()
    return [password] if password else []


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return text


def _results(result: object) -> list[Any]:
    # RunExecutionResult for build/run/test/compile/seed; anything else carries no node results.
    return list(getattr(result, "results", None) or [])


def _node_status(result: Any, secrets: Sequence[str]) -> NodeStatus:
    node = result.node
    message = result.message
    return NodeStatus(
        unique_id=node.unique_id,
        name=node.name,
        resource_type=str(node.resource_type),
        status=str(result.status),
        message=_scrub(str(message), secrets) if message is not None else None,
        failures=result.failures,
        execution_time_s=float(result.execution_time or 0.0),
    )


def _progress_callback(progress: ProgressCallback) -> Callable[[Any], None]:
    def on_event(event: Any) -> None:
        if event.info.name != "NodeFinished":
            return
        info = event.data.node_info
        run_result = event.data.run_result
        progress(
            NodeStatus(
                unique_id=info.unique_id,
                name=info.node_name,
                resource_type=info.resource_type,
                status=run_result.status or info.node_status,
                message=None,  # details come with the result / TransformError, scrubbed
                failures=run_result.num_failures or None,
                execution_time_s=float(run_result.execution_time or 0.0),
            )
        )

    return on_event


def _failure_message(
    command: str, target: str, failures: Sequence[NodeStatus], log_path: Path
) -> str:
    if not failures:
        return f"dbt {command} ({target}) failed without a failing node (logs: {log_path})"
    lines = [f"dbt {command} ({target}): {len(failures)} node(s) failed (logs: {log_path})"]
    for node in failures:
        detail = " ".join((node.message or "").split())  # one line per node
        rows = f", {node.failures} failing row(s)" if node.failures else ""
        lines.append(f"  {node.resource_type} {node.name} [{node.status}{rows}]: {detail}")
    return "\n".join(lines)
