"""The world of the security integration tests (helpers + fixtures, re-exported by conftest).

`secured` (module scope) is the shared world of the RLS tests:

* migrations applied by the superuser with encode/httpx -> department `web` and psf/requests ->
  department `platform` (300 real commits of each, loaded through the store + PostgresWarehouse
  as a pipeline_service login);
* dbt built as a dbt_service login (its tables are owned by dbt_service, as in production);
* one LOGIN role per group role; the department-scoped ones are members of `dept_web`.

Roles are cluster-wide: every login name carries a random suffix and is dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.warehouse import PostgresWarehouse
from dataplatform.config import Settings, get_settings
from dataplatform.contracts import BatchManifest, CommitRecord, Watermark
from dataplatform.ingest.datasets import iter_dataset
from dataplatform.security.migrate import migrate
from dataplatform.security.roles import create_login
from dataplatform.store.batches import write_batch
from dataplatform.store.loader import read_batch

DATASETS = Path(__file__).resolve().parents[3] / "data" / "commits"
DEPARTMENTS = {"encode/httpx": "web", "psf/requests": "platform"}
OWN_REPO, OTHER_REPO = "encode/httpx", "psf/requests"
COMMITS_PER_REPO = 300
PII_KEY = b"test-pii-key"
MARTS = ("+fct_commits", "+dim_repositories", "+commit_features")
PASSWORD = "Test-Only-Passw0rd-7f3c"  # pragma: allowlist secret


def read_commits(repo: str, limit: int) -> list[CommitRecord]:
    """The first `limit` well-formed commits of `repo`, read by the platform's dataset parser."""
    records = iter_dataset(DATASETS / (repo.replace("/", "__") + ".jsonl.gz"))
    return list(islice((r for r in records if isinstance(r, CommitRecord)), limit))


def make_batch(
    store: ObjectStore, commits: list[CommitRecord]
) -> tuple[BatchManifest, pa.Table, pa.Table]:
    """A real raw batch (Parquet + manifest in `store`) and its tables, as the loader reads it."""
    repo = commits[0].repo
    watermark = Watermark(
        repo=repo,
        source="dataset",
        head_sha=commits[0].commit_sha,
        committed_at_max=max(c.committed_at for c in commits),
    )
    manifest = write_batch(store, commits, [], watermark)
    assert manifest is not None
    data, quarantine = read_batch(store, manifest)
    return manifest, data, quarantine


def with_db(admin_dsn: str, dbname: str) -> str:
    return make_conninfo(admin_dsn, dbname=dbname)


def login_conninfo(admin_dsn: str, dbname: str, user: str, password: str = PASSWORD) -> str:
    return make_conninfo(admin_dsn, dbname=dbname, user=user, password=password)


@dataclass
class Cluster:
    """A fresh database plus the logins created in it (dropped by `close`)."""

    admin_dsn: str
    dbname: str
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    logins: list[str] = field(default_factory=list)

    @property
    def admin(self) -> str:
        return with_db(self.admin_dsn, self.dbname)

    def login(self, group: str, *, departments: tuple[str, ...] = ()) -> str:
        """Create a LOGIN member of `group`; returns its name."""
        name = f"{group}_{'_'.join(departments) or 'nodept'}_{self.suffix}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            create_login(conn, name, PASSWORD, group, departments=departments)
        self.logins.append(name)
        return name

    def conninfo(self, user: str, password: str = PASSWORD) -> str:
        return login_conninfo(self.admin_dsn, self.dbname, user, password)

    def settings(self, home: Path, user: str, password: str = PASSWORD, **extra: Any) -> Settings:
        fields = conninfo_to_dict(self.admin_dsn)
        return get_settings(
            home=home,
            warehouse_backend="postgres",
            postgres_host=fields.get("host", "127.0.0.1"),
            postgres_port=int(fields.get("port", 5432)),
            postgres_db=self.dbname,
            postgres_user=user,
            postgres_password=SecretStr(password),
            postgres_sslmode="disable",
            **extra,
        )

    def close(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.dbname)
                )
            )
            for name in self.logins:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def new_cluster(admin_dsn: str) -> Cluster:
    cluster = Cluster(admin_dsn, f"sec_{uuid.uuid4().hex[:12]}")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cluster.dbname)))
    return cluster


@pytest.fixture
def migrated(pg_admin_dsn: str) -> Iterator[Cluster]:
    """A fresh database with all migrations applied and the two-department mapping."""
    cluster = new_cluster(pg_admin_dsn)
    try:
        migrate(cluster.admin, repo_departments=DEPARTMENTS)
        yield cluster
    finally:
        cluster.close()


@dataclass
class Secured:
    """The module-wide world of the RLS tests."""

    cluster: Cluster
    users: dict[str, str]  # key -> login name
    rebuild: Callable[[], None]  # run dbt again as the dbt_service login


@pytest.fixture(scope="module")
def secured(pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    from dataplatform.transform.dbt_runner import run_dbt

    cluster = new_cluster(pg_admin_dsn)
    try:
        migrate(cluster.admin, repo_departments=DEPARTMENTS)
        users = {
            "analyst": cluster.login("data_analyst", departments=("web",)),
            "engineer": cluster.login("data_engineer", departments=("web",)),
            "admin": cluster.login("platform_admin", departments=("web",)),
            "analyst_nodept": cluster.login("data_analyst"),
            "pipeline": cluster.login("pipeline_service"),
            "mlflow": cluster.login("mlflow_service"),
            "dbt": cluster.login("dbt_service"),
        }
        store = ObjectStore.local(tmp_path_factory.mktemp("objects"))
        with PostgresWarehouse(cluster.conninfo(users["pipeline"])) as wh:
            for repo in DEPARTMENTS:
                wh.load_batch(*make_batch(store, read_commits(repo, COMMITS_PER_REPO)), PII_KEY)
        dbt_settings = cluster.settings(tmp_path_factory.mktemp("home"), users["dbt"])

        def rebuild() -> None:
            # Marts only: the predictions model's pre-hook runs CREATE SCHEMA, which needs
            # CREATE on the database (dbt_service has CREATE on its schemas only).
            run_dbt(dbt_settings, command="run", select=MARTS)

        rebuild()
        yield Secured(cluster, users, rebuild)
    finally:
        cluster.close()
