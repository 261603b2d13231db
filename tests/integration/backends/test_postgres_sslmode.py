"""`postgres_sslmode` reaches libpq (warehouse, workers) and dbt; prod insists on verify-full."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
import pytest

from dataplatform.adapters.warehouse import PostgresWarehouse
from dataplatform.config import SettingsError, get_settings
from dataplatform.transform.dbt_runner import dbt_env

pytestmark = pytest.mark.postgres


def _settings(pg_db: dict[str, Any], sslmode: str, profile: str = "staging") -> Any:
    return get_settings(
        profile=profile,
        warehouse_backend="postgres",
        postgres_host=pg_db["host"],
        postgres_port=pg_db["port"],
        postgres_db=pg_db["dbname"],
        postgres_user=pg_db["user"],
        postgres_password=pg_db["password"],
        postgres_sslmode=sslmode,
        pii_hash_key=secrets.token_hex(16),
        admin_token=secrets.token_hex(16),
    )


def test_sslmode_is_enforced_by_libpq(pg_db: dict[str, Any]) -> None:
    # The throwaway cluster speaks no TLS: `require` must refuse it, `disable` connect.
    with pytest.raises(psycopg.OperationalError, match=r"(?i)ssl"):
        PostgresWarehouse(_settings(pg_db, "require").postgres_conninfo())
    with PostgresWarehouse(_settings(pg_db, "disable").postgres_conninfo()) as warehouse:
        warehouse.ensure_raw_schema()
        assert warehouse.query_df("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[
            "ssl"
        ].tolist() == [False]


def test_dbt_gets_the_same_sslmode(pg_db: dict[str, Any]) -> None:
    assert dbt_env(_settings(pg_db, "verify-full"))["DATAPLATFORM_DBT_PG_SSLMODE"] == "verify-full"


def test_prod_refuses_anything_but_verify_full(pg_db: dict[str, Any]) -> None:
    with pytest.raises(SettingsError, match="verify-full"):
        _settings(pg_db, "require", profile="prod")
    settings = _settings(pg_db, "verify-full", profile="prod")
    assert "sslmode='verify-full'" in settings.postgres_conninfo()
    # Unreachable without TLS: verify-full never falls back to a plaintext connection.
    with pytest.raises(psycopg.OperationalError):
        PostgresWarehouse(settings.postgres_conninfo())
