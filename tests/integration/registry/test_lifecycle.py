"""Model lifecycle against a real MLflow SQLite store and a real DuckDB warehouse.

The fixtures (saved models, MLflow store, warehouse, lifecycle) are in registry_world.py.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from registry_world import (
    NAME,
    OK,
    RecordingNotifier,
    production_versions,
    register,
)
from typer.testing import CliRunner

from dataplatform.config import Settings
from dataplatform.registry.cli import model_app
from dataplatform.registry.gates import Approval
from dataplatform.registry.history import holder_at, read_history, replay
from dataplatform.registry.lifecycle import ModelLifecycle, NothingToRollBack
from dataplatform.registry.semver import SemVer, assign_semver


# --- the design's rollback test -----------------------------------------------------------
def test_rollback_restores_previous_production_as_single_holder(
    lifecycle: ModelLifecycle,
    client: Any,
    settings: Settings,
    saved_models: dict[str, Path],
    notifier: RecordingNotifier,
) -> None:
    v1 = register(client, settings, saved_models["logistic"], f1=0.88)
    v2 = register(client, settings, saved_models["logistic"], f1=0.90)
    assert lifecycle.promote(NAME, v1, "production", actor="ci", approval=OK).status == "promoted"
    outcome = lifecycle.promote(NAME, v2, "production", actor="ci", approval=OK)
    assert outcome.status == "promoted"
    assert outcome.archived_version == v1
    assert outcome.label == "v1.1.0-production"

    result = lifecycle.rollback(NAME, reason="F1 dropped 12%", actor="oncall")

    assert (result.from_version, result.to_version) == (v2, v1)
    assert result.smoke_rows_scored == 3
    assert production_versions(client) == [v1]
    assert client.get_model_version(NAME, v2).tags["archived"] == "true"
    assert "archived" not in client.get_model_version(NAME, v1).tags
    events = read_history(lifecycle.warehouse, NAME)
    assert [(e.action, e.version) for e in events[-2:]] == [("archive", v2), ("rollback", v1)]
    assert replay(events)["production"] == v1
    assert "rolled back" in notifier.messages[-1]


def test_second_rollback_goes_further_back_not_to_the_bad_version(
    lifecycle: ModelLifecycle, client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    versions = [register(client, settings, saved_models["logistic"]) for _ in range(3)]
    for v in versions:
        lifecycle.promote(NAME, v, "production", actor="ci", approval=OK)
    assert lifecycle.rollback(NAME, reason="bad", actor="oncall").to_version == versions[1]
    assert lifecycle.rollback(NAME, reason="also bad", actor="oncall").to_version == versions[0]
    with pytest.raises(NothingToRollBack):
        lifecycle.rollback(NAME, reason="again", actor="oncall")
    assert production_versions(client) == [versions[0]]


def test_history_answers_which_version_was_production_at_a_time(
    lifecycle: ModelLifecycle, client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    clock = iter(datetime(2026, 3, d, 12, tzinfo=UTC) for d in range(1, 20))
    lifecycle.clock = lambda: next(clock)
    v1 = register(client, settings, saved_models["logistic"])
    v2 = register(client, settings, saved_models["logistic"])
    lifecycle.promote(NAME, v1, "production", actor="ci", approval=OK)  # 1 March (+gate tags)
    lifecycle.promote(NAME, v2, "production", actor="ci", approval=OK)
    events = lifecycle.history(NAME)
    promoted_v2_at = next(e.occurred_at for e in events if e.version == v2)
    assert holder_at(events, "production", promoted_v2_at - timedelta(seconds=1)) == v1
    assert holder_at(events, "production", promoted_v2_at) == v2
    assert holder_at(events, "production", datetime(2026, 2, 1, tzinfo=UTC)) is None


# --- gates ----------------------------------------------------------------------------------
def test_ten_bad_candidates_blocked_and_ten_good_promoted(
    lifecycle: ModelLifecycle, client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    logistic, wide = saved_models["logistic"], saved_models["wide"]
    bad: list[tuple[dict[str, Any], Path, str]] = [
        ({"f1": 0.79}, logistic, "f1_threshold"),
        ({"f1": 0.50}, logistic, "f1_threshold"),
        ({"f1": 0.85, "baseline": 0.85}, logistic, "beats_baseline"),
        ({"f1": 0.85, "baseline": 0.90}, logistic, "beats_baseline"),
        ({"data_ok": False}, logistic, "data_checks"),
        ({"data_ok": None}, logistic, "data_checks"),
        ({}, wide, "signature_compatible"),  # needs has_issue_ref, not served below
        ({"f1": 0.70, "baseline": 0.9, "data_ok": False}, logistic, "f1_threshold"),
        ({"f1": 0.81}, logistic, "no_regression"),  # production below holds 0.95
        ({"f1": 0.93}, logistic, "no_regression"),  # 0.93 < 0.95 - 0.01
    ]
    anchor = register(client, settings, logistic, f1=0.95)
    assert lifecycle.promote(NAME, anchor, "production", actor="ci", approval=OK).status == (
        "promoted"
    )
    serving = ["message_length", "files_changed", "lines_added"]  # no has_issue_ref served
    for kwargs, model, gate in bad:
        version = register(client, settings, model, **kwargs)
        out = lifecycle.promote(NAME, version, "staging", actor="ci", serving_columns=serving)
        assert out.status == "blocked", (kwargs, out.gate_results)
        assert gate in {r.gate for r in out.gate_results if not r.passed}
        assert (
            client.get_model_version(NAME, version).tags[f"gate.staging.{gate}"].startswith("fail")
        )
    assert "staging" not in lifecycle.current_holders(NAME)

    for i in range(10):
        version = register(client, settings, logistic, f1=0.95 + i * 0.004)
        out = lifecycle.promote(NAME, version, "staging", actor="ci", serving_columns=serving)
        assert out.status == "promoted", out.gate_results
        assert lifecycle.current_holders(NAME)["staging"] == version
        assert client.get_model_version(NAME, version).tags["gates.staging.passed"] == "true"

    events = lifecycle.history(NAME)
    assert sum(e.action == "blocked" for e in events) == 10
    assert sum(e.action == "promote" and e.to_alias == "staging" for e in events) == 10
    assert replay(events)["staging"] == lifecycle.current_holders(NAME)["staging"]


def test_production_without_approval_is_refused_and_recorded(
    lifecycle: ModelLifecycle, client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    version = register(client, settings, saved_models["logistic"])
    out = lifecycle.promote(NAME, version, "production", actor="ci")
    assert out.status == "blocked"
    assert [r.gate for r in out.gate_results if not r.passed] == ["approval"]
    assert "production" not in lifecycle.current_holders(NAME)
    assert lifecycle.history(NAME)[-1].action == "blocked"

    half = lifecycle.promote(NAME, version, "production", actor="ci", approval=Approval("bob", ""))
    assert half.status == "blocked"


def test_staging_then_production_moves_alias_and_archives_previous(
    lifecycle: ModelLifecycle, client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    v1 = register(client, settings, saved_models["logistic"])
    v2 = register(client, settings, saved_models["logistic"])
    lifecycle.promote(NAME, v1, "production", actor="ci", approval=OK)
    assert lifecycle.promote(NAME, v2, "staging", actor="ci").status == "promoted"
    out = lifecycle.promote(NAME, v2, "production", actor="ci", approval=OK)
    assert (out.from_alias, out.archived_version) == ("staging", v1)
    assert lifecycle.current_holders(NAME) == {"production": v2}
    assert replay(lifecycle.history(NAME)) == {"staging": None, "production": v2}
    again = lifecycle.promote(NAME, v2, "production", actor="ci", approval=OK)
    assert again.status == "already_held"
    labels = {row.version: row.label for row in lifecycle.list_versions(NAME)}
    assert labels == {v2: "v1.1.0-production", v1: "v1.0.0-archived"}


def test_eight_threads_promoting_at_once_leave_one_holder_and_matching_history(
    lifecycle: ModelLifecycle, client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    versions = [register(client, settings, saved_models["logistic"]) for _ in range(8)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            alias = "production" if i % 2 else "staging"
            lifecycle.promote(NAME, versions[i], alias, actor=f"t{i}", approval=OK)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    holders = lifecycle.current_holders(NAME)
    for alias in ("staging", "production"):
        owners = [v for v in versions if alias in client.get_model_version(NAME, v).aliases]
        assert owners == [holders[alias]]
    events = lifecycle.history(NAME)
    assert {a: v for a, v in replay(events).items() if v} == holders
    for alias in ("staging", "production"):
        last = [e for e in events if e.to_alias == alias and e.action == "promote"][-1]
        assert last.version == holders[alias]
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    assert len(set(times)) == len(times)


# --- semver on a real store -------------------------------------------------------------------
def test_assign_semver_major_minor_patch(
    client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    v1 = register(client, settings, saved_models["logistic"])
    v2 = register(client, settings, saved_models["logistic"])  # retrained
    run_of_v2 = client.get_model_version(NAME, v2).run_id
    v3 = register(client, settings, saved_models["logistic"], run_id=run_of_v2)  # threshold only
    v4 = register(client, settings, saved_models["tree"], family="DecisionTreeClassifier")
    v5 = register(client, settings, saved_models["wide"], family="DecisionTreeClassifier")
    # Tagging v5 first back-fills v1..v4 in order.
    assert assign_semver(client, NAME, v5) == SemVer(3, 0, 0)
    got = [client.get_model_version(NAME, v).tags["semver"] for v in (v1, v2, v3, v4, v5)]
    assert got == ["v1.0.0", "v1.1.0", "v1.1.1", "v2.0.0", "v3.0.0"]
    assert assign_semver(client, NAME, v3) == SemVer(1, 1, 1)  # idempotent


# --- CLI ------------------------------------------------------------------------------------
def test_cli_rollback_without_previous_version_exits_2(
    client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    runner = CliRunner()
    version = register(client, settings, saved_models["logistic"])

    nothing = runner.invoke(model_app, ["rollback", NAME, "--reason", "x"], obj=settings)
    assert nothing.exit_code == 2, nothing.output
    assert "nothing to roll back" in nothing.output

    promoted = runner.invoke(
        model_app,
        [
            "promote",
            NAME,
            version,
            "--to",
            "production",
            "--approve",
            "--approver",
            "alice",
            "--reason",
            "ok",
        ],
        obj=settings,
    )
    assert promoted.exit_code == 0, promoted.output
    assert "PASS approval" in promoted.output
    assert "v1.0.0-production" in promoted.output

    only_one = runner.invoke(model_app, ["rollback", NAME, "--reason", "x"], obj=settings)
    assert only_one.exit_code == 2, only_one.output
    assert "nothing to roll back to" in only_one.output
    assert production_versions(client) == [version]


def test_cli_promote_refusal_history_and_list(
    client: Any, settings: Settings, saved_models: dict[str, Path]
) -> None:
    runner = CliRunner()
    v1 = register(client, settings, saved_models["logistic"])
    v2 = register(client, settings, saved_models["logistic"], f1=0.6)

    # stdin of CliRunner is not a TTY: no prompt, the approval gate refuses.
    refused = runner.invoke(model_app, ["promote", NAME, v1, "--to", "production"], obj=settings)
    assert refused.exit_code == 2, refused.output
    assert "FAIL approval" in refused.output

    blocked = runner.invoke(model_app, ["promote", NAME, v2, "--to", "staging"], obj=settings)
    assert blocked.exit_code == 2
    assert "FAIL f1_threshold" in blocked.output

    ok = runner.invoke(model_app, ["promote", NAME, v1, "--to", "staging"], obj=settings)
    assert ok.exit_code == 0, ok.output
    assert "v1.0.0-staging" in ok.output

    hist = runner.invoke(model_app, ["history", NAME], obj=settings)
    assert hist.exit_code == 0
    assert hist.output.count("blocked") == 2
    assert "promote" in hist.output

    at = runner.invoke(model_app, ["history", NAME, "--at", "2000-01-01T00:00:00"], obj=settings)
    assert at.exit_code == 0
    assert "no version" in at.output

    listing = runner.invoke(model_app, ["list", NAME], obj=settings)
    assert listing.exit_code == 0
    assert "v1.0.0-staging" in listing.output

    bad_alias = runner.invoke(model_app, ["promote", NAME, v1, "--to", "prod"], obj=settings)
    assert bad_alias.exit_code == 1
