"""Shared fixtures: a throwaway PostgreSQL for tests marked `postgres`.

`pg_admin_dsn` (session) is the superuser conninfo: DATAPLATFORM_TEST_PG_DSN when set, else a
cluster started with scripts/pg.sh in a temp folder and stopped at the end of the session.
`pg_db` (function) is a fresh empty database, dropped after the test.
Stage-specific fixtures live in the conftest.py of each test subfolder.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PG_SCRIPT = REPO_ROOT / "scripts" / "pg.sh"


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated so the marker works whatever the rootdir.
    config.addinivalue_line("markers", "postgres: needs the throwaway PostgreSQL (pg_db fixture)")


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """Superuser conninfo of a test PostgreSQL (env DATAPLATFORM_TEST_PG_DSN or started here)."""
    dsn = os.environ.get("DATAPLATFORM_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    # Under /tmp (not pytest's private tmp) so that the `postgres` OS user can reach it as root.
    parent = Path(tempfile.mkdtemp(prefix="dataplatform-pg-"))
    parent.chmod(0o755)  # the cluster folder inside is private to its owner (pg.sh does that)
    cluster_dir = parent / "cluster"
    started = subprocess.run(
        ["bash", str(PG_SCRIPT), "start", str(cluster_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", str(cluster_dir)], check=False)
        parent.rmdir()
        pytest.fail(f"scripts/pg.sh start failed:\n{started.stderr}", pytrace=False)
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", str(cluster_dir)], check=False)
        parent.rmdir()


def _conninfo_fields(dsn: str) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    return dict(conninfo_to_dict(dsn))


@pytest.fixture
def pg_db(pg_admin_dsn: str) -> Iterator[dict[str, Any]]:
    """A fresh empty database: dict with host, port, dbname, user, password, conninfo."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    dbname = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    fields = _conninfo_fields(pg_admin_dsn)
    conninfo = make_conninfo(pg_admin_dsn, dbname=dbname)
    yield {
        "host": fields.get("host", "127.0.0.1"),
        "port": int(fields.get("port", 5432)),
        "dbname": dbname,
        "user": fields.get("user", "postgres"),
        "password": fields.get("password", ""),
        "conninfo": conninfo,
    }
    with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
        # FORCE: a test that leaked a connection must not make the drop fail.
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


# --- real commits as feature-mart rows (train, registry and monitor tests) ------------------
SHIPPED_COMMITS = REPO_ROOT / "data" / "commits"


def _feature_frame(*names: str) -> Any:
    """Mart rows (features + label) of shipped datasets, read with the real dataset parser."""
    from dataclasses import asdict

    import pandas as pd

    from dataplatform.contracts import CommitRecord
    from dataplatform.features import compute_features
    from dataplatform.ingest.datasets import iter_dataset

    rows = [
        asdict(record)
        for name in names
        for record in iter_dataset(SHIPPED_COMMITS / f"{name}.jsonl.gz")
        if isinstance(record, CommitRecord)
    ]
    return compute_features(pd.DataFrame(rows))


@pytest.fixture(scope="session")
def merge_feature_frame() -> Any:
    """Mart rows of flask + requests (12,020 real commits, ~28 % merges)."""
    return _feature_frame("pallets__flask", "psf__requests")


@pytest.fixture(scope="session")
def flask_feature_frame() -> Any:
    """Mart rows of flask (real commits, merges included)."""
    return _feature_frame("pallets__flask")


# Labelled data sets: $DATAPLATFORM_LABELS_DIR, else ../shared/datasets/labels beside the repo.
# The data has no licence for redistribution, so it is never in the repository; tests that need
# it skip only when that folder is absent.
LABELS_DIR = Path(
    os.environ.get("DATAPLATFORM_LABELS_DIR") or REPO_ROOT / ".." / "shared" / "datasets" / "labels"
).resolve()


@pytest.fixture(scope="session")
def labels_dir() -> Path:
    if not LABELS_DIR.is_dir():
        pytest.skip(f"labelled data sets not available at {LABELS_DIR}")
    return LABELS_DIR
