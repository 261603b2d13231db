"""PSI and KL: known values, properties, and the binning rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataplatform.monitor.drift import (
    binned_shares,
    choose_binning,
    feature_psi,
    kl_divergence,
    psi,
    sturges_edges,
)


def test_identical_distributions_have_zero_drift() -> None:
    values = np.arange(1000) % 37
    assert psi(values, values) == pytest.approx(0.0, abs=1e-12)
    assert kl_divergence(values, values) == pytest.approx(0.0, abs=1e-12)


def test_psi_by_hand_on_categories() -> None:
    ref = np.array([0] * 50 + [1] * 50)
    cur = np.array([0] * 80 + [1] * 20)
    expected = (0.5 - 0.8) * math.log(0.5 / 0.8) + (0.5 - 0.2) * math.log(0.5 / 0.2)
    assert psi(ref, cur) == pytest.approx(expected)
    kl = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    assert kl_divergence(ref, cur) == pytest.approx(kl)


def test_psi_is_symmetric_and_kl_is_not() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 4000), rng.normal(0.5, 1.5, 4000)
    assert psi(a, b) == pytest.approx(psi(b, a))
    assert kl_divergence(a, b) != pytest.approx(kl_divergence(b, a))


def test_bigger_shift_means_bigger_psi() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(0, 1, 5000)
    values = [psi(ref, rng.normal(shift, 1, 5000)) for shift in (0.0, 0.25, 0.5, 1.0)]
    assert values == sorted(values)
    assert values[0] < 0.05 < 0.2 < values[-1]


def test_many_distinct_values_get_sturges_bins_over_both_sides() -> None:
    ref, cur = np.arange(100), np.arange(50, 300)
    binning = choose_binning(ref, cur)
    assert binning.categories is None
    expected = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    np.testing.assert_array_equal(binning.edges, expected)
    np.testing.assert_array_equal(sturges_edges(ref, cur), expected)


def test_few_distinct_values_are_categories_of_either_side() -> None:
    binning = choose_binning(np.array([1, 2, 3] * 10), np.array([3, 4]))
    assert binning.edges is None
    assert list(binning.categories) == [1, 2, 3, 4]  # type: ignore[arg-type]


def test_empty_bins_get_a_small_share_not_zero() -> None:
    ref_shares, cur_shares = binned_shares(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 2]))
    assert (ref_shares > 0).all()
    assert (cur_shares > 0).all()
    assert math.isfinite(psi(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 2])))


def test_integer_fast_path_equals_the_generic_path() -> None:
    rng = np.random.default_rng(5)
    ref = rng.integers(-100, 5000, 3000)
    cur = rng.integers(-200, 9000, 20000)
    assert psi(ref, cur) == pytest.approx(psi(ref.astype(float), cur.astype(float)), rel=1e-12)


def test_nans_are_dropped_and_all_nan_is_an_error() -> None:
    assert psi(np.array([1.0, np.nan, 2.0] * 10), np.array([1.0, 2.0] * 10)) == pytest.approx(0)
    with pytest.raises(ValueError, match="non-null"):
        psi(np.array([np.nan]), np.array([1.0]))


def test_feature_psi_per_column_and_missing_columns() -> None:
    ref = {"a": np.arange(100), "b": np.zeros(100)}
    cur = {"a": np.arange(100), "b": np.ones(100)}
    out = feature_psi(ref, cur, ["a", "b"])
    assert out["a"] == pytest.approx(0.0, abs=1e-12)
    assert out["b"] > 1
    with pytest.raises(KeyError, match="missing"):
        feature_psi(ref, cur, ["c"])
