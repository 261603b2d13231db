"""Settings: profiles, embedded defaults, placeholder refusal, secrets kept out of messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataplatform.config import DEV_PLACEHOLDER, SettingsError, get_settings, usable_cores

STRONG = "s3cr3t-Value-that-is-not-a-placeholder"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DATAPLATFORM_"):
            monkeypatch.delenv(name)


def test_dev_defaults_live_under_home(tmp_path: Path) -> None:
    s = get_settings(home=tmp_path)
    assert s.profile == "dev"
    assert s.warehouse_backend == "duckdb"
    assert s.warehouse_path == tmp_path / "warehouse.duckdb"
    assert s.object_store == str(tmp_path / "objects")
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert s.artifact_uri == (tmp_path / "mlartifacts").as_uri()
    assert s.git_cache == tmp_path / "git-cache"


def test_env_prefix_and_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path))
    monkeypatch.setenv("DATAPLATFORM_WAREHOUSE_BACKEND", "postgres")
    monkeypatch.setenv("DATAPLATFORM_POSTGRES_PORT", "6543")
    s = get_settings()
    assert s.home == tmp_path
    assert s.warehouse_backend == "postgres"
    assert s.postgres_port == 6543


def test_an_mlflow_server_proxies_artifacts(tmp_path: Path) -> None:
    s = get_settings(home=tmp_path, mlflow_tracking_uri="http://127.0.0.1:5000")
    assert s.artifact_uri == "mlflow-artifacts:/"


@pytest.mark.parametrize("profile", ["staging", "prod"])
def test_placeholder_secrets_are_refused_outside_dev(profile: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        get_settings(home=tmp_path, profile=profile)
    message = str(err.value)
    assert "DATAPLATFORM_PII_HASH_KEY" in message
    assert "DATAPLATFORM_ADMIN_TOKEN" in message
    assert DEV_PLACEHOLDER not in message


def test_staging_starts_with_real_secrets(tmp_path: Path) -> None:
    s = get_settings(
        home=tmp_path,
        profile="staging",
        warehouse_backend="postgres",
        pii_hash_key=STRONG,
        admin_token=STRONG,
        postgres_password=STRONG,
    )
    assert s.profile == "staging"
    assert STRONG not in repr(s)
    assert STRONG not in str(s.model_dump())


def test_postgres_password_placeholder_refused_only_when_postgres_is_used(tmp_path: Path) -> None:
    common = {"home": tmp_path, "profile": "staging", "pii_hash_key": STRONG, "admin_token": STRONG}
    get_settings(**common)  # duckdb: no database password needed
    weak = "changeme"  # pragma: allowlist secret
    with pytest.raises(SettingsError, match="DATAPLATFORM_POSTGRES_PASSWORD"):
        get_settings(**common, warehouse_backend="postgres", postgres_password=weak)


def test_prod_on_postgres_requires_verify_full(tmp_path: Path) -> None:
    common = {
        "home": tmp_path,
        "profile": "prod",
        "warehouse_backend": "postgres",
        "pii_hash_key": STRONG,
        "admin_token": STRONG,
        "postgres_password": STRONG,
    }
    with pytest.raises(SettingsError, match="verify-full"):
        get_settings(**common, postgres_sslmode="require")
    assert get_settings(**common, postgres_sslmode="verify-full").postgres_sslmode == "verify-full"


def test_secrets_come_from_a_mounted_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "dataplatform_pii_hash_key").write_text(STRONG)
    (secrets / "dataplatform_admin_token").write_text(STRONG + "-admin")
    monkeypatch.setenv("DATAPLATFORM_SECRETS_DIR", str(secrets))
    s = get_settings(home=tmp_path, profile="staging")
    assert s.pii_hash_key.get_secret_value() == STRONG
    assert s.admin_token.get_secret_value() == STRONG + "-admin"


def test_invalid_values_name_the_field_not_the_value(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        get_settings(home=tmp_path, postgres_port="not-a-port", postgres_password=STRONG)
    assert "postgres_port" in str(err.value)
    assert STRONG not in str(err.value)


def test_conninfo_quotes_the_password(tmp_path: Path) -> None:
    quoted = "it's a 'secret'"  # pragma: allowlist secret
    s = get_settings(home=tmp_path, postgres_password=quoted)
    assert "password='it\\'s a \\'secret\\''" in s.postgres_conninfo()  # pragma: allowlist secret
    assert "%27" in s.postgres_sqlalchemy_url()


def test_each_stage_logs_in_as_its_own_postgres_login(tmp_path: Path) -> None:
    settings = get_settings(
        home=tmp_path,
        warehouse_backend="postgres",
        postgres_user="pipeline_login",
        postgres_password=STRONG,
        postgres_dbt_user="dbt_login",
        postgres_dbt_password=STRONG + "-dbt",
        postgres_ml_user="ml_login",
        postgres_ml_password=STRONG + "-ml",
    )
    assert settings.for_stage("ingest") is settings
    dbt, ml = settings.for_stage("transform"), settings.for_stage("ml")
    assert (dbt.postgres_user, dbt.postgres_password.get_secret_value()) == (
        "dbt_login",
        STRONG + "-dbt",
    )
    assert (ml.postgres_user, ml.postgres_password.get_secret_value()) == (
        "ml_login",
        STRONG + "-ml",
    )
    assert "user='ml_login'" in ml.postgres_conninfo()
    assert settings.postgres_user == "pipeline_login"  # the original is left alone


def test_stages_share_the_one_login_when_no_stage_login_is_set(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path, warehouse_backend="postgres")
    assert settings.for_stage("transform") is settings
    assert settings.for_stage("ml") is settings
    duck = get_settings(home=tmp_path, postgres_ml_user="ml_login")
    assert duck.for_stage("ml") is duck  # DuckDB has no logins


def test_a_stage_login_without_its_password_is_refused_outside_dev(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="DATAPLATFORM_POSTGRES_ML_PASSWORD"):
        get_settings(
            profile="staging",
            home=tmp_path,
            warehouse_backend="postgres",
            postgres_password=STRONG,
            postgres_ml_user="ml_login",
            pii_hash_key=STRONG,
            admin_token=STRONG,
        )


def test_usable_cores_follow_the_cgroup_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == 8  # no quota: the affinity
    cpu_max.write_text("150000 100000\n")
    assert usable_cores(cpu_max) == 2  # 1.5 CPUs: two cores busy part of the time
    cpu_max.write_text("50000 100000\n")
    assert usable_cores(cpu_max) == 1
    assert usable_cores(tmp_path / "missing") == 8
    cpu_max.write_text("garbage")
    assert usable_cores(cpu_max) == 8
