"""`decide` on hand-written histories: the k-of-n rule confirms levels and never flaps."""

from __future__ import annotations

import pytest

from dataplatform.monitor.policy import CheckResult, Severity, Window, decide, level


def w(**severities: Severity) -> Window:
    """A window whose checks have the given severities (check name = keyword)."""
    return Window(tuple(CheckResult(name, "performance", sev) for name, sev in severities.items()))


def test_all_ok_is_ok() -> None:
    d = decide([w(f1_drop="ok"), w(f1_drop="ok"), w(f1_drop="ok")], k=2, n=3)
    assert d.verdict == "ok"
    assert d.confirmed == {}
    assert d.pending == {}
    assert not d.rollback


def test_one_noisy_critical_window_does_not_act() -> None:
    d = decide([w(f1_drop="ok"), w(f1_drop="ok"), w(f1_drop="critical")], k=2, n=3)
    assert d.verdict == "ok"
    assert d.pending == {"f1_drop": "critical"}
    assert not d.rollback


def test_two_critical_windows_of_three_confirm_critical() -> None:
    d = decide([w(f1_drop="critical"), w(f1_drop="ok"), w(f1_drop="critical")], k=2, n=3)
    assert d.verdict == "critical"
    assert d.rollback
    assert d.confirmed == {"f1_drop": "critical"}
    assert "f1_drop: critical in 2 of the last 3 windows" in d.reasons


def test_critical_windows_count_as_alerts() -> None:
    # one critical + one alert: alert is confirmed (2 windows >= alert), critical is not.
    d = decide([w(f1_drop="alert"), w(f1_drop="ok"), w(f1_drop="critical")], k=2, n=3)
    assert d.verdict == "alert"
    assert d.pending == {"f1_drop": "critical"}
    assert not d.rollback


def test_only_the_last_n_windows_count() -> None:
    old = [w(f1_drop="critical"), w(f1_drop="critical")]
    d = decide([*old, w(f1_drop="ok"), w(f1_drop="ok"), w(f1_drop="ok")], k=2, n=3)
    assert d.verdict == "ok"
    assert d.windows == 3


def test_one_good_window_does_not_clear_a_confirmed_level() -> None:
    d = decide([w(x="alert"), w(x="alert"), w(x="ok")], k=2, n=3)
    assert d.verdict == "alert"  # no flapping back either


def test_checks_are_confirmed_independently() -> None:
    # two different checks each alerting once do not add up to a confirmed alert
    d = decide([w(a="alert", b="ok"), w(a="ok", b="alert"), w(a="ok", b="ok")], k=2, n=3)
    assert d.verdict == "ok"


def test_worst_confirmed_check_is_the_verdict() -> None:
    history = [w(psi="alert", err="critical"), w(psi="alert", err="critical")]
    d = decide(history, k=2, n=3)
    assert d.verdict == "critical"
    assert d.confirmed == {"psi": "alert", "err": "critical"}


def test_k_of_one_acts_on_the_first_window() -> None:
    assert decide([w(f1_drop="critical")], k=1, n=1).rollback


def test_short_history_needs_k_windows_all_the_same() -> None:
    assert decide([w(f1_drop="critical")], k=2, n=3).verdict == "ok"
    assert decide([], k=2, n=3).verdict == "ok"


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        decide([], k=4, n=3)
    with pytest.raises(ValueError, match="at least 1"):
        decide([], k=0, n=3)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "ok"), (0.05, "ok"), (0.0501, "alert"), (0.10, "alert"), (0.11, "critical")],
)
def test_level_is_strictly_above_thresholds(value: float | None, expected: str) -> None:
    assert level(value, 0.05, 0.10) == expected
