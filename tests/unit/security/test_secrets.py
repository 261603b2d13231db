"""Rotation policy (design 3.1), status arithmetic, the ledger and atomic secret files."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dataplatform.config import get_settings
from dataplatform.security.secrets import (
    NoticeState,
    RotationConfigError,
    RotationLedger,
    RotationPolicy,
    SecretSpec,
    atomic_write_text,
    generate_password,
    load_rotation_config,
    parse_rotation_config,
    secret_status,
    statuses,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_shipped_policy_is_the_design_table() -> None:
    config = load_rotation_config(get_settings().rotation_policy_path)
    table = {
        name: (p.rotate_every.days, p.notify_before.days if p.notify_before else None)
        for name, p in config.policies.items()
    }
    assert table == {
        "database_password": (90, 7),
        "api_key": (180, 14),
        "tls_certificate": (365, 30),
        "service_account": (60, 7),
        "jwt_signing_key": (30, None),
    }
    spec = config.secrets["postgres_password"]
    assert spec.secret_type == "database_password"  # pragma: allowlist secret
    assert config.secrets["postgres_password"].key == "DATAPLATFORM_POSTGRES_PASSWORD"


DB = RotationPolicy("database_password", timedelta(days=90), timedelta(days=7), "cron")
JWT = RotationPolicy("jwt_signing_key", timedelta(days=30), None, "auto")
SPEC = SecretSpec("postgres_password", "database_password", "K", None, None)


@pytest.mark.parametrize(
    ("age_days", "state"),
    [
        (0, NoticeState.OK),
        (82, NoticeState.OK),
        (83, NoticeState.NOTICE),  # 7 days before day 90
        (89, NoticeState.NOTICE),
        (90, NoticeState.OVERDUE),
        (400, NoticeState.OVERDUE),
    ],
)
def test_status_states_of_a_database_password(age_days: int, state: NoticeState) -> None:
    status = secret_status(SPEC, DB, NOW - timedelta(days=age_days), NOW)
    assert status.state is state
    assert status.age_days == age_days
    assert status.due_at == NOW - timedelta(days=age_days) + timedelta(days=90)
    assert status.notify_from == status.due_at - timedelta(days=7)


def test_jwt_keys_have_no_notice_window() -> None:
    assert secret_status(SPEC, JWT, NOW - timedelta(days=29), NOW).state is NoticeState.OK
    assert secret_status(SPEC, JWT, NOW - timedelta(days=30), NOW).state is NoticeState.OVERDUE
    assert secret_status(SPEC, JWT, NOW, NOW).notify_from is None


def test_never_rotated_is_unknown_and_needs_action() -> None:
    status = secret_status(SPEC, DB, None, NOW)
    assert status.state is NoticeState.UNKNOWN
    assert status.needs_action
    assert status.due_at is None


@pytest.mark.parametrize(
    "document",
    [
        None,
        {"policies": []},
        {"policies": {"x": {"rotate_every_days": 0}}},
        {"policies": {"x": {"rotate_every_days": "90"}}},
        {"policies": {"x": {"rotate_every_days": 7, "notify_days_before": 7}}},
        {"policies": {"x": {"rotate_every_days": 7}}, "secrets": {"s": {"type": "y", "key": "K"}}},
        {"policies": {"x": {"rotate_every_days": 7}}, "secrets": {"s": {"type": "x"}}},
    ],
)
def test_malformed_policy_is_refused(document: object) -> None:
    with pytest.raises(RotationConfigError):
        parse_rotation_config(document)


def test_ledger_round_trip_and_status(tmp_path: Path) -> None:
    ledger = RotationLedger(tmp_path / "state" / "rotation-state.json")
    assert ledger.read() == {}
    ledger.record("postgres_password", NOW - timedelta(days=85))
    ledger.record("admin_token", NOW)
    assert ledger.read()["postgres_password"] == NOW - timedelta(days=85)
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    config = load_rotation_config(get_settings().rotation_policy_path)
    by_name = {s.name: s.state for s in statuses(config, ledger, NOW)}
    assert by_name["postgres_password"] is NoticeState.NOTICE
    assert by_name["admin_token"] is NoticeState.OK
    assert by_name["ingress_tls"] is NoticeState.UNKNOWN
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.record("x", datetime(2026, 1, 1))


def test_atomic_write_replaces_whole_file_with_private_mode(tmp_path: Path) -> None:
    target = tmp_path / "DATAPLATFORM_POSTGRES_PASSWORD"
    target.write_text("old")
    target.chmod(0o644)
    atomic_write_text(target, "new-value")
    assert target.read_text() == "new-value"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_generated_passwords_are_long_and_distinct() -> None:
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) == 43 for p in passwords)
