"""Promotion gates: pure checks over a `GateContext`, one `GateResult` per gate.

Before `staging`: F1 at or above the threshold, strictly better than the rule baseline, no
regression against current production beyond the tolerance, input signature served by the
serving schema, training-set data checks passed. Before `production`: the same plus an approval.
A missing input (metric, signature, data-check result) fails its gate with a reason saying so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from dataplatform.registry.thresholds import GateThresholds

STAGING = "staging"
PRODUCTION = "production"
ALIASES = (STAGING, PRODUCTION)

# Signature types a serving layer that feeds integer features can satisfy.
_NUMERIC_TYPES = frozenset({"integer", "long", "float", "double"})


@dataclass(frozen=True, slots=True)
class Approval:
    """A human's go for production: who and why."""

    approver: str
    reason: str


@dataclass(frozen=True, slots=True)
class GateContext:
    """Everything the gates look at for one candidate version and one target alias."""

    model_name: str
    version: str
    target_alias: str
    candidate_metrics: Mapping[str, float]
    baseline_f1: float | None = None
    production_version: str | None = None
    production_metrics: Mapping[str, float] | None = None
    # Input columns of the candidate's signature: name -> MLflow type (None: no signature).
    signature_inputs: Mapping[str, str] | None = None
    serving_columns: Sequence[str] | None = None
    data_checks_passed: bool | None = None
    approval: Approval | None = None


@dataclass(frozen=True, slots=True)
class GateResult:
    """Outcome of one gate, with a sentence a person can read."""

    gate: str
    passed: bool
    detail: str

    def line(self) -> str:
        """`PASS f1_threshold: f1_score 0.91 >= 0.80`."""
        return f"{'PASS' if self.passed else 'FAIL'} {self.gate}: {self.detail}"


def evaluate_gates(ctx: GateContext, thresholds: GateThresholds) -> list[GateResult]:
    """Run every gate for `ctx.target_alias`; the approval gate only for `production`."""
    if ctx.target_alias not in ALIASES:
        raise ValueError(f"unknown target alias {ctx.target_alias!r}; expected one of {ALIASES}")
    f1 = ctx.candidate_metrics.get(thresholds.f1_metric)
    results = [
        _f1_gate(f1, thresholds),
        _baseline_gate(f1, ctx.baseline_f1, thresholds),
        _regression_gate(f1, ctx, thresholds),
        _signature_gate(ctx.signature_inputs, ctx.serving_columns),
        _data_checks_gate(ctx.data_checks_passed, thresholds),
    ]
    if ctx.target_alias == PRODUCTION:
        results.append(_approval_gate(ctx.approval))
    return results


def all_passed(results: Sequence[GateResult]) -> bool:
    """True when every gate passed (and there was at least one)."""
    return bool(results) and all(r.passed for r in results)


def results_json(results: Sequence[GateResult]) -> str:
    """Gate results as the JSON array stored in the promotion history."""
    return json.dumps([asdict(r) for r in results], sort_keys=True)


def _f1_gate(f1: float | None, t: GateThresholds) -> GateResult:
    if f1 is None:
        return GateResult("f1_threshold", False, f"metric {t.f1_metric!r} not logged by the run")
    ok = f1 >= t.min_f1
    return GateResult(
        "f1_threshold", ok, f"{t.f1_metric} {f1:.4f} {'>=' if ok else '<'} {t.min_f1}"
    )


def _baseline_gate(f1: float | None, baseline: float | None, t: GateThresholds) -> GateResult:
    if not t.must_beat_baseline:
        return GateResult("beats_baseline", True, "not required by the threshold file")
    if baseline is None:
        return GateResult(
            "beats_baseline", False, f"metric {t.baseline_metric!r} not logged by the run"
        )
    if f1 is None:
        return GateResult("beats_baseline", False, "candidate F1 unknown")
    ok = f1 > baseline
    return GateResult(
        "beats_baseline",
        ok,
        f"F1 {f1:.4f} {'>' if ok else 'not >'} rule baseline {baseline:.4f}",
    )


def _regression_gate(f1: float | None, ctx: GateContext, t: GateThresholds) -> GateResult:
    if ctx.production_version is None:
        return GateResult("no_regression", True, "no production version to compare with")
    if ctx.production_version == ctx.version:
        return GateResult("no_regression", True, "candidate is the production version")
    prod_f1 = (ctx.production_metrics or {}).get(t.f1_metric)
    if prod_f1 is None:
        return GateResult(
            "no_regression",
            True,
            f"production version {ctx.production_version} has no {t.f1_metric!r}; nothing to "
            "regress against",
        )
    if f1 is None:
        return GateResult("no_regression", False, "candidate F1 unknown")
    floor = prod_f1 - t.max_f1_regression
    ok = f1 >= floor
    return GateResult(
        "no_regression",
        ok,
        f"F1 {f1:.4f} vs production v{ctx.production_version} {prod_f1:.4f} "
        f"(tolerance {t.max_f1_regression}, floor {floor:.4f})",
    )


# Serving passes these as text (the commit message, e-mails redacted as in the marts).
_TEXT_COLUMNS = frozenset({"message"})
_TEXT_TYPES = frozenset({"string", "str"})


def _signature_gate(
    inputs: Mapping[str, str] | None, serving_columns: Sequence[str] | None
) -> GateResult:
    if inputs is None:
        return GateResult("signature_compatible", False, "model has no input signature")
    if not serving_columns:
        return GateResult(
            "signature_compatible",
            False,
            "no serving schema known (set gates.serving_columns or tag feature_columns)",
        )
    served = set(serving_columns)
    missing = sorted(set(inputs) - served)
    bad_types = sorted(
        c
        for c, typ in inputs.items()
        if c in served and typ not in (_TEXT_TYPES if c in _TEXT_COLUMNS else _NUMERIC_TYPES)
    )
    if missing or bad_types:
        parts = []
        if missing:
            parts.append(f"serving does not provide {', '.join(missing)}")
        if bad_types:
            parts.append("non-numeric inputs " + ", ".join(f"{c}:{inputs[c]}" for c in bad_types))
        return GateResult("signature_compatible", False, "; ".join(parts))
    unused = len(served) - len(inputs)
    note = f" ({unused} served columns unused)" if unused else ""
    return GateResult(
        "signature_compatible", True, f"{len(inputs)} inputs all provided by serving{note}"
    )


def _data_checks_gate(passed: bool | None, t: GateThresholds) -> GateResult:
    if passed is None:
        return GateResult(
            "data_checks", False, f"no {t.data_checks_tag!r} tag or metric on the training run"
        )
    return GateResult(
        "data_checks",
        passed,
        "training-set checks passed" if passed else "training-set checks failed",
    )


def _approval_gate(approval: Approval | None) -> GateResult:
    if approval is None:
        return GateResult(
            "approval",
            False,
            "production needs an approval: --approve --approver NAME --reason TEXT",
        )
    if not approval.approver.strip() or not approval.reason.strip():
        return GateResult("approval", False, "approval needs both an approver and a reason")
    return GateResult("approval", True, f"approved by {approval.approver}: {approval.reason}")
