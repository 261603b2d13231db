"""Our numpy PSI / KL equal Evidently 0.7's `psi` / `kl_div` on the same data and bins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataplatform.monitor.drift import kl_divergence, psi
from dataplatform.monitor.report import evidently_values

pytest.importorskip("evidently")


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Columns covering both of Evidently's binning paths, with shifts and new categories."""
    rng = np.random.default_rng(11)
    n_ref, n_cur = 5000, 3000
    reference = pd.DataFrame(
        {
            "lines_added": rng.lognormal(3, 1.5, n_ref).astype("int64"),  # many values: bins
            "hour_of_day": rng.integers(0, 24, n_ref),  # 24 values: bins (> 20)
            "day_of_week": rng.integers(1, 8, n_ref),  # 7 values: categories
            "has_issue_ref": rng.integers(0, 2, n_ref),
            "commit_lag_seconds": rng.normal(0, 3600, n_ref).astype("int64"),
            "predicted_proba": rng.beta(0.5, 2, n_ref),
        }
    )
    current = pd.DataFrame(
        {
            "lines_added": rng.lognormal(3.4, 1.5, n_cur).astype("int64"),
            "hour_of_day": rng.integers(4, 24, n_cur),
            "day_of_week": rng.integers(1, 9, n_cur),  # a value the reference never saw
            "has_issue_ref": (rng.random(n_cur) < 0.7).astype("int64"),
            "commit_lag_seconds": rng.normal(600, 5000, n_cur).astype("int64"),
            "predicted_proba": rng.beta(0.7, 2, n_cur),
        }
    )
    return reference, current


def test_psi_equals_evidentlys(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    columns = list(reference.columns)
    theirs = evidently_values(reference, current, columns, method="psi")
    ours = {c: psi(reference[c].to_numpy(), current[c].to_numpy()) for c in columns}
    assert set(theirs) == set(columns)
    for column in columns:
        assert ours[column] == pytest.approx(theirs[column], rel=1e-9, abs=1e-12), column
    assert max(ours.values()) > 0.2  # the data does drift: not a comparison of zeros


def test_kl_equals_evidentlys(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    columns = ["predicted_proba", "day_of_week", "lines_added"]
    theirs = evidently_values(reference, current, columns, method="kl_div")
    for column in columns:
        ours = kl_divergence(reference[column].to_numpy(), current[column].to_numpy())
        assert ours == pytest.approx(theirs[column], rel=1e-9, abs=1e-12), column
