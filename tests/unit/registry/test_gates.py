from __future__ import annotations

import json
from dataclasses import replace

import pytest

from dataplatform.registry.gates import (
    Approval,
    GateContext,
    all_passed,
    evaluate_gates,
    results_json,
)
from dataplatform.registry.thresholds import GateThresholds

T = GateThresholds()
GOOD = GateContext(
    model_name="commit-classifier",
    version="3",
    target_alias="staging",
    candidate_metrics={"f1_score": 0.9},
    baseline_f1=0.6,
    production_version="2",
    production_metrics={"f1_score": 0.905},
    signature_inputs={"message_length": "long", "files_changed": "long"},
    serving_columns=("message_length", "files_changed", "lines_added"),
    data_checks_passed=True,
)


def failed(ctx: GateContext, t: GateThresholds = T) -> list[str]:
    return [r.gate for r in evaluate_gates(ctx, t) if not r.passed]


def test_good_candidate_passes_every_staging_gate() -> None:
    results = evaluate_gates(GOOD, T)
    assert all_passed(results)
    assert [r.gate for r in results] == [
        "f1_threshold",
        "beats_baseline",
        "no_regression",
        "signature_compatible",
        "data_checks",
    ]
    assert json.loads(results_json(results))[0]["gate"] == "f1_threshold"


@pytest.mark.parametrize(
    ("change", "gate"),
    [
        ({"candidate_metrics": {"f1_score": 0.7999}}, "f1_threshold"),
        ({"candidate_metrics": {}}, "f1_threshold"),
        ({"baseline_f1": 0.9}, "beats_baseline"),
        ({"baseline_f1": None}, "beats_baseline"),
        ({"production_metrics": {"f1_score": 0.95}}, "no_regression"),
        ({"signature_inputs": {"message": "string"}}, "signature_compatible"),
        ({"signature_inputs": None}, "signature_compatible"),
        ({"serving_columns": None}, "signature_compatible"),
        ({"signature_inputs": {"message_length": "string"}}, "signature_compatible"),
        ({"data_checks_passed": False}, "data_checks"),
        ({"data_checks_passed": None}, "data_checks"),
    ],
)
def test_each_gate_blocks(change: dict[str, object], gate: str) -> None:
    assert gate in failed(replace(GOOD, **change))  # type: ignore[arg-type]


def test_regression_tolerance_and_no_production() -> None:
    assert failed(replace(GOOD, production_metrics={"f1_score": 0.91})) == []  # within 0.01
    assert failed(replace(GOOD, production_version=None, production_metrics=None)) == []
    assert failed(replace(GOOD, production_version="3")) == []


def test_production_needs_complete_approval() -> None:
    prod = replace(GOOD, target_alias="production")
    assert failed(prod) == ["approval"]
    assert failed(replace(prod, approval=Approval("alice", " "))) == ["approval"]
    assert failed(replace(prod, approval=Approval("alice", "reviewed"))) == []


def test_thresholds_drive_the_gates() -> None:
    lenient = GateThresholds(min_f1=0.5, must_beat_baseline=False)
    ctx = replace(
        GOOD, candidate_metrics={"f1_score": 0.55}, baseline_f1=0.9, production_version=None
    )
    assert failed(ctx, lenient) == []
    assert failed(ctx) == ["f1_threshold", "beats_baseline"]


def test_unknown_alias_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown target alias"):
        evaluate_gates(replace(GOOD, target_alias="prod"), T)
