"""The whole pipeline with the staging profile against real servers: PostgreSQL warehouse
(migrated, one least-privilege login per stage), SeaweedFS S3 for raw batches, an MLflow
tracking server (PostgreSQL backend, S3 artifacts)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backend_servers import MlflowServer, S3Server
from psycopg import sql
from pydantic import SecretStr

from dataplatform import pipeline
from dataplatform.config import Settings, get_settings
from dataplatform.security.migrate import migrate
from dataplatform.security.roles import create_login

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[3] / "data" / "commits"
SOURCES = [str(DATA / "encode__httpx.jsonl.gz"), str(DATA / "psf__requests.jsonl.gz")]
REPOS = {"encode/httpx", "psf/requests"}
GROUPS = ("pipeline_service", "dbt_service", "ml_service")


def staging_settings(
    tmp_path: Path, pg_db: dict[str, Any], s3: S3Server, mlflow_server: MlflowServer
) -> Settings:
    """Staging profile: every backend a server, every secret real (placeholders are refused)."""
    return get_settings(
        profile="staging",
        home=tmp_path / "home",
        warehouse_backend="postgres",
        postgres_host=pg_db["host"],
        postgres_port=pg_db["port"],
        postgres_db=pg_db["dbname"],
        postgres_user=pg_db["user"],
        postgres_password=pg_db["password"],
        postgres_sslmode="prefer",  # the throwaway cluster has no TLS; prod requires verify-full
        object_store_uri=f"s3://{s3.bucket}/staging-{tmp_path.name}",
        s3_endpoint_url=s3.endpoint_url,
        s3_access_key_id=s3.access_key_id,
        s3_secret_access_key=s3.secret_access_key,
        mlflow_tracking_uri=mlflow_server.tracking_uri,
        # Proxied artifacts: the server writes them to S3; clients need no S3 keys.
        mlflow_artifact_uri=f"mlflow-artifacts:/staging-{tmp_path.name}",
        mlflow_experiment=f"staging-{tmp_path.name}",
        pii_hash_key=secrets.token_hex(32),
        admin_token=secrets.token_hex(32),
    )


def test_staging_profile_runs_end_to_end_on_servers(
    tmp_path: Path,
    pg_db: dict[str, Any],
    s3_server: S3Server,
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    monkeypatch.setenv("DATAPLATFORM_DBT_REQUIRE_RLS", "true")
    # As in production: a migrated database, and each stage logged in as its own
    # least-privilege login (ingest/load: pipeline_service, dbt: dbt_service, models: ml_service).
    migrate(pg_db["conninfo"], repo_departments={repo: "web" for repo in REPOS})
    logins = {group: f"{group}_{tmp_path.name[-12:]}_{secrets.token_hex(3)}" for group in GROUPS}
    password = secrets.token_urlsafe(24)
    try:
        with psycopg.connect(pg_db["conninfo"], autocommit=True) as conn:
            for group, name in logins.items():
                create_login(conn, name, password, group)
        settings = staging_settings(tmp_path, pg_db, s3_server, mlflow_server).model_copy(
            update={
                "postgres_user": logins["pipeline_service"],
                "postgres_password": SecretStr(password),
                "postgres_dbt_user": logins["dbt_service"],
                "postgres_dbt_password": SecretStr(password),
                "postgres_ml_user": logins["ml_service"],
                "postgres_ml_password": SecretStr(password),
            }
        )
        _run_twice_and_check(settings, pg_db, s3_server, mlflow_server, tmp_path)
    finally:
        with psycopg.connect(pg_db["conninfo"], autocommit=True) as conn:
            for name in logins.values():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _run_twice_and_check(
    settings: Settings,
    pg_db: dict[str, Any],
    s3_server: S3Server,
    mlflow_server: MlflowServer,
    tmp_path: Path,
) -> None:
    prefix = f"staging-{tmp_path.name}/raw/"

    first = pipeline.run(settings, SOURCES)

    # Raw batches (Parquet + manifests) landed in S3 under the configured prefix.
    keys = s3_server.keys(prefix)
    manifests = [k for k in keys if k.startswith(prefix + "manifests/")]
    assert len(manifests) == len(first.ingest.sources) == 2
    assert {k.split("/")[3] for k in keys if "/raw/commits/" in k} == {
        "repo=encode__httpx",
        "repo=psf__requests",
    }
    # Rows in PostgreSQL, dbt marts built there.
    with psycopg.connect(pg_db["conninfo"]) as conn:
        raw_rows = conn.execute("SELECT count(*), count(DISTINCT repo) FROM raw.commits").fetchone()
        features = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_merge_commit) "
            "FROM analytics.commit_features"
        ).fetchone()
        plaintext = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'analytics' "
            "AND column_name IN ('author_email', 'committer_email')"
        ).fetchone()
    assert raw_rows is not None
    assert raw_rows[0] == first.ingest.rows == first.load.summary.rows_inserted > 1000
    assert raw_rows[1] == 2
    assert features is not None
    assert features[0] == raw_rows[0]
    assert features[1] > 0  # psf/requests has merges: both labels present
    assert plaintext == (0,)
    assert first.transform.target == "postgres"
    assert first.transform.models_built > 0
    assert first.transform.tests_failed == 0

    # A model version registered on the server, its artifacts in S3 behind the proxy.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    registered = first.models[0].registered
    version = client.get_model_version(registered.name, str(registered.version))
    assert version.run_id == first.models[0].run_id
    run_uri = client.get_run(first.models[0].run_id).info.artifact_uri
    assert run_uri.startswith("mlflow-artifacts:/")
    # MLflow 3 stores the model as a "logged model" (models:/m-...) next to the run.
    model_id = version.model_id or version.source.removeprefix("models:/")
    artifact_keys = s3_server.keys("mlartifacts/")
    assert any(model_id in k and k.endswith("/MLmodel") for k in artifact_keys), artifact_keys
    # ... and it loads back through the server and predicts.
    import mlflow.pyfunc
    import pandas as pd

    os.environ.setdefault("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{registered.name}/{registered.version}")
    with psycopg.connect(pg_db["conninfo"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM analytics.commit_features ORDER BY commit_key LIMIT 5")
        sample = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description or []])
    assert len(model.predict(sample)) == 5

    # Again: nothing new anywhere.
    second = pipeline.run(settings, SOURCES)
    assert second.ingest.rows == 0
    assert second.load.summary.rows_inserted == 0
    assert second.load.summary.batches_loaded == 0
    assert s3_server.keys(prefix) == keys
    assert second.models[0].reused
    assert second.models[0].registered.version == registered.version
    assert second.row_counts["raw.commits"] == raw_rows[0]
