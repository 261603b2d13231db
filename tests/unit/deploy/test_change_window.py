"""The production change window, with fixed clocks (design 2.2: Tue/Thu 10:00-14:00 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from typer.testing import CliRunner

from dataplatform.deploy.change_window import (
    ChangeWindow,
    in_change_window,
    parse_windows,
)
from dataplatform.deploy.cli import deploy_app

# 2026-02-03 is a Tuesday.
TUE = datetime(2026, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        (TUE.replace(hour=9, minute=59, second=59), False),
        (TUE.replace(hour=10, minute=0), True),
        (TUE.replace(hour=13, minute=59, second=59), True),
        (TUE.replace(hour=14, minute=0), False),
        (TUE.replace(hour=12) + timedelta(days=1), False),  # Wednesday
        (TUE.replace(hour=10) + timedelta(days=2), True),  # Thursday
        (TUE.replace(hour=12) + timedelta(days=5), False),  # Sunday
    ],
)
def test_default_window_boundaries(when: datetime, inside: bool) -> None:
    assert in_change_window(when) is inside


def test_other_timezones_are_converted_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    assert in_change_window(datetime(2026, 2, 3, 11, 0, tzinfo=cet))  # 10:00 UTC
    assert not in_change_window(datetime(2026, 2, 3, 10, 30, tzinfo=cet))  # 09:30 UTC


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        in_change_window(datetime(2026, 2, 3, 11, 0))


def test_configurable_windows() -> None:
    windows = parse_windows("mon 08:00-09:30; sat,sun 20:00-22:00")
    assert windows[0] == ChangeWindow(frozenset({1}), time(8, 0), time(9, 30))
    monday = TUE - timedelta(days=1)
    assert in_change_window(monday.replace(hour=9, minute=29), windows)
    assert not in_change_window(monday.replace(hour=9, minute=30), windows)
    assert not in_change_window(TUE.replace(hour=11), windows)


@pytest.mark.parametrize("spec", ["", "funday 10:00-12:00", "tue 14:00-10:00", "tue 10-12"])
def test_bad_window_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_windows(spec)


runner = CliRunner()


@pytest.mark.parametrize(
    ("at", "code"),
    [
        ("2026-02-03T10:00:00Z", 0),
        ("2026-02-03T09:59:00+00:00", 2),
        ("2026-02-04T12:00:00", 2),
        ("2026-02-05T13:59:00", 0),
        ("2026-02-08T12:00:00Z", 2),
    ],
)
def test_check_window_exit_codes(at: str, code: int) -> None:
    result = runner.invoke(deploy_app, ["check-window", "--at", at])
    assert result.exit_code == code, result.output


def test_check_window_reads_windows_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_CHANGE_WINDOWS", "wed 12:00-13:00")
    inside = runner.invoke(deploy_app, ["check-window", "--at", "2026-02-04T12:30:00Z"])
    outside = runner.invoke(deploy_app, ["check-window", "--at", "2026-02-03T11:00:00Z"])
    assert inside.exit_code == 0
    assert outside.exit_code == 2


def test_check_window_bad_input_is_exit_1() -> None:
    assert runner.invoke(deploy_app, ["check-window", "--at", "yesterday"]).exit_code == 1
