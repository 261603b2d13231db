"""One settings object for the whole platform.

`Settings` is built once by an entry point (`get_settings()`) and passed down; nothing here does
work at import. Profiles:

* ``dev`` (default): embedded — DuckDB file, local object-store folder, MLflow on SQLite with local
  artifacts, all under ``DATAPLATFORM_HOME``.
* ``staging`` / ``prod``: servers (PostgreSQL, S3, MLflow server); placeholder secrets are refused.

Secrets are ``SecretStr``: they come from ``DATAPLATFORM_*`` env vars or from files in a mounted
folder (``DATAPLATFORM_SECRETS_DIR``, one file per secret named like the env var), and never
appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Profile = Literal["dev", "staging", "prod"]
# Which PostgreSQL login a pipeline stage uses (least privilege, design 3.3):
#   ingest    raw layer: ingest, load, labels, ingest-batch quality, queue   (pipeline_service)
#   transform dbt                                                            (dbt_service)
#   ml        reads analytics: train, batch scoring, monitoring, registry    (ml_service)
Stage = Literal["ingest", "transform", "ml"]
WarehouseBackend = Literal["duckdb", "postgres"]
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

# Values that mark a secret as "not set for real". Refused outside the dev profile.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "changethis", "password", "secret", "dev-only-not-a-secret"}
)
DEV_PLACEHOLDER = "dev-only-not-a-secret"

SECRET_FIELDS = (
    "pii_hash_key",
    "postgres_password",
    "postgres_dbt_password",
    "postgres_ml_password",
    "s3_secret_access_key",
    "admin_token",
    "slack_webhook_url",
)


class SettingsError(ValueError):
    """Settings are invalid; the message names fields, never secret values."""


class Settings(BaseSettings):
    """Every knob of the platform. Derived paths live under `home` unless set explicitly."""

    model_config = SettingsConfigDict(
        env_prefix="DATAPLATFORM_",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    profile: Profile = "dev"
    home: Path = Field(default_factory=lambda: Path.cwd() / ".dataplatform")

    # --- warehouse -------------------------------------------------------------------------
    warehouse_backend: WarehouseBackend = "duckdb"
    duckdb_path: Path | None = None
    postgres_host: str = "localhost"
    postgres_port: int = 5432
    postgres_db: str = "dataplatform"
    postgres_user: str = "pipeline_service"
    postgres_password: SecretStr = SecretStr(DEV_PLACEHOLDER)
    postgres_sslmode: SslMode = "prefer"  # the prod profile requires verify-full (design 3.2)
    postgres_sslrootcert: Path | None = None
    # Per-stage logins (see `Stage`); unset, a stage logs in as postgres_user. In production
    # postgres_user is a pipeline_service login, which cannot read analytics.
    postgres_dbt_user: str | None = None
    postgres_dbt_password: SecretStr | None = None
    postgres_ml_user: str | None = None
    postgres_ml_password: SecretStr | None = None

    # --- object store ----------------------------------------------------------------------
    # A local folder (default: <home>/objects) or an s3://bucket/prefix URI.
    object_store_uri: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr = SecretStr(DEV_PLACEHOLDER)

    # --- MLflow ----------------------------------------------------------------------------
    mlflow_tracking_uri: str | None = None
    mlflow_artifact_uri: str | None = None
    mlflow_experiment: str = "commit-classifier"

    # --- ingestion -------------------------------------------------------------------------
    git_cache_dir: Path | None = None
    ingest_batch_rows: int = Field(default=50_000, ge=1)
    # git processes that read one repository's history (0 = one per core, at most 4): with
    # more than one, `git rev-list` hands the commits to that many `git diff-tree` processes.
    ingest_git_workers: int = Field(default=0, ge=0, le=64)

    # --- security --------------------------------------------------------------------------
    # Key of the keyed hash (HMAC-SHA256) that pseudonymises e-mails before they leave `raw`.
    pii_hash_key: SecretStr = SecretStr(DEV_PLACEHOLDER)
    admin_token: SecretStr = SecretStr(DEV_PLACEHOLDER)
    slack_webhook_url: SecretStr | None = None
    # Row-level security: repository (owner/name) -> department; unmapped repos are visible to
    # no department (fail closed). Env: DATAPLATFORM_REPO_DEPARTMENTS='{"encode/httpx": "web"}'.
    repo_departments: dict[str, str] = Field(default_factory=dict)
    # Bootstrap admin for `db migrate` / `secrets rotate` only (unset: postgres_user/_password).
    postgres_admin_user: str | None = None
    postgres_admin_password: SecretStr | None = None
    rotation_policy_path: Path = Field(
        default_factory=lambda: (
            Path(__file__).resolve().parents[2] / "config" / "rotation-policy.yaml"
        )
    )
    rotation_state_path: Path | None = None  # default: <home>/secrets/rotation-state.json

    # --- monitoring ------------------------------------------------------------------------
    # Recent window the monitor checks: the latest N commits of the feature mart (by
    # committed_at), optionally only those of the last N days.
    monitor_window_rows: int = Field(default=2_000, ge=50)
    monitor_window_days: int | None = Field(default=None, ge=1)
    # k-of-n rule: a level (alert, critical) holds when k of the last n monitor windows of the
    # same model version reached it; one noisy window never flips the verdict.
    monitor_confirm_windows: int = Field(default=2, ge=1)
    monitor_history_windows: int = Field(default=3, ge=1)

    # --- paths of project files ------------------------------------------------------------
    # Folder of human-labelled commit CSVs (not shipped: licences); enables corrective-classifier.
    labels_dir: Path | None = None
    # The one threshold file of gates and monitors (None: config/thresholds.yaml of the project).
    thresholds_path: Path | None = None
    dbt_project_dir: Path = Field(
        default_factory=lambda: Path(__file__).resolve().parents[2] / "dbt"
    )

    @model_validator(mode="after")
    def _refuse_placeholders_outside_dev(self) -> Settings:
        if self.profile == "dev":
            return self
        if (
            self.profile == "prod"
            and self.warehouse_backend == "postgres"
            and self.postgres_sslmode != "verify-full"
        ):
            raise ValueError("profile 'prod' requires postgres_sslmode=verify-full (design 3.2)")
        weak = [name for name in self._required_secrets() if _is_placeholder(getattr(self, name))]
        if weak:
            raise ValueError(
                f"profile {self.profile!r} refuses placeholder secrets; set "
                + ", ".join(f"DATAPLATFORM_{n.upper()}" for n in weak)
                + " (env var or a file in DATAPLATFORM_SECRETS_DIR)"
            )
        return self

    def _required_secrets(self) -> list[str]:
        names = ["pii_hash_key", "admin_token"]
        if self.warehouse_backend == "postgres":
            names.append("postgres_password")
            if self.postgres_dbt_user:
                names.append("postgres_dbt_password")
            if self.postgres_ml_user:
                names.append("postgres_ml_password")
        if self.object_store_uri and self.object_store_uri.startswith("s3://"):
            names.append("s3_secret_access_key")
        return names

    # --- derived locations -----------------------------------------------------------------
    @property
    def warehouse_path(self) -> Path:
        """DuckDB file used by the `duckdb` backend."""
        return self.duckdb_path or self.home / "warehouse.duckdb"

    @property
    def object_store(self) -> str:
        """Object store root: an s3:// URI or an absolute local folder."""
        return self.object_store_uri or str(self.home / "objects")

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI (SQLite under `home` by default)."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_uri(self) -> str:
        """Default artifact root for new MLflow experiments."""
        if self.mlflow_artifact_uri:
            return self.mlflow_artifact_uri
        if self.tracking_uri.startswith(("http://", "https://")):
            return "mlflow-artifacts:/"  # proxied by the tracking server (--serve-artifacts)
        return (self.home / "mlartifacts").as_uri()

    @property
    def git_cache(self) -> Path:
        """Where clone URLs are cloned and fetched incrementally."""
        return self.git_cache_dir or self.home / "git-cache"

    @property
    def git_workers(self) -> int:
        """`ingest_git_workers`, with 0 resolved to the cores this process may use (1 to 4)."""
        if self.ingest_git_workers:
            return self.ingest_git_workers
        return max(1, min(usable_cores(), 4))

    @property
    def reports_dir(self) -> Path:
        """Folder for HTML reports and other human-facing outputs."""
        return self.home / "reports"

    def postgres_conninfo(self, *, user: str | None = None, password: str | None = None) -> str:
        """libpq connection string; contains the password, so never log it."""
        pw = password if password is not None else self.postgres_password.get_secret_value()
        parts = {
            "host": self.postgres_host,
            "port": str(self.postgres_port),
            "dbname": self.postgres_db,
            "user": user or self.postgres_user,
            "password": pw,
            "sslmode": self.postgres_sslmode,
        }
        if self.postgres_sslrootcert:
            parts["sslrootcert"] = str(self.postgres_sslrootcert)
        return " ".join(f"{k}='{_libpq_quote(v)}'" for k, v in parts.items() if v)

    def for_stage(self, stage: Stage) -> Settings:
        """These settings logged in as `stage`'s PostgreSQL login (themselves if it has none)."""
        user, password = {
            "ingest": (None, None),
            "transform": (self.postgres_dbt_user, self.postgres_dbt_password),
            "ml": (self.postgres_ml_user, self.postgres_ml_password),
        }[stage]
        if self.warehouse_backend != "postgres" or not user:
            return self
        return self.model_copy(
            update={"postgres_user": user, "postgres_password": password or SecretStr("")}
        )

    def postgres_sqlalchemy_url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver); contains the password, so never log it."""
        pw = quote(self.postgres_password.get_secret_value(), safe="")
        return (
            f"postgresql+psycopg://{quote(self.postgres_user, safe='')}:{pw}@"
            f"{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"
            f"?sslmode={self.postgres_sslmode}"
        )


def _is_placeholder(value: SecretStr | None) -> bool:
    return value is None or value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS


def _libpq_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def get_settings(**overrides: object) -> Settings:
    """Build the settings from env vars, mounted secret files and `overrides`.

    Raises `SettingsError` with a message that names fields but never echoes secret values.
    """
    secrets_dir = os.environ.get("DATAPLATFORM_SECRETS_DIR")
    kwargs: dict[str, object] = dict(overrides)
    if secrets_dir:
        kwargs["_secrets_dir"] = secrets_dir
    try:
        return Settings(**kwargs)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"{loc}: {err['msg']}")
    return "invalid settings: " + "; ".join(lines)


def usable_cores(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota.

    In a container ``os.cpu_count()`` is the node's count; a pod limited to one CPU that
    started a git process per node core would only be throttled.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))  # ceil
    except (OSError, ValueError):
        pass  # no cgroup v2 limit readable here
    return cores
