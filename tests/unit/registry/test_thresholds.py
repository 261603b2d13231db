from __future__ import annotations

from pathlib import Path

import pytest

from dataplatform.registry.thresholds import ThresholdsError, load_thresholds, parse_thresholds


def test_repo_file_loads_with_the_documented_values() -> None:
    t = load_thresholds()
    cc = t.for_model("commit-classifier")
    assert cc.gates.min_f1 == 0.80
    assert cc.gates.serving_columns
    assert "message_length" in cc.gates.serving_columns
    m = cc.monitoring
    assert (m.f1_drop_alert, m.f1_drop_critical, m.psi_alert, m.kl_alert) == (0.05, 0.10, 0.2, 0.1)
    assert (m.latency_p95_ms, m.error_rate_alert, m.error_rate_critical) == (500, 0.01, 0.05)
    other = t.for_model("corrective-classifier")
    assert other.gates.min_f1 == 0.70  # its own gate
    assert other.monitoring == m  # inherited from defaults
    assert t.for_model("unknown-model") == t.defaults


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"defaults": {"gates": {"min_f1": 1.5}}}, "defaults.gates.min_f1"),
        ({"defaults": {"gates": {"min_fl": 0.8}}}, "defaults.gates.min_fl: Extra inputs"),
        ({"models": {"m": {"monitoring": {"psi_alert": -1}}}}, "models.m.monitoring.psi_alert"),
        ({"defaults": {"monitoring": {"f1_drop_alert": 0.2}}}, "must be below f1_drop_critical"),
        ({"defaults": {"monitoring": {"error_rate_critical": 0.005}}}, "error_rate_alert"),
        ({"defaults": {"gates": {"serving_columns": ["a", "a"]}}}, "repeats a"),
        ({"version": 2}, "version"),
        ({"models": ["m"]}, "models: expected a mapping"),
        (["not", "a", "mapping"], "expected a mapping at the top level"),
    ],
)
def test_invalid_documents_name_the_bad_key(doc: object, message: str) -> None:
    with pytest.raises(ThresholdsError, match=r"invalid thresholds|expected") as err:
        parse_thresholds(doc, source="t.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("t.yaml: ")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ThresholdsError, match="cannot read"):
        load_thresholds(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("defaults: [unclosed\n")
    with pytest.raises(ThresholdsError, match="not valid YAML"):
        load_thresholds(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_thresholds(empty).defaults.gates.min_f1 == 0.80
