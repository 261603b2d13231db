"""Feature drift (PSI) and prediction drift (KL divergence), numpy only.

Binning follows Evidently 0.7 exactly (`evidently.legacy.calculations.stattests.utils
.get_binned_data`), so our numbers equal its `psi` / `kl_div` stat tests on the same data
(proven in tests/unit/monitor/test_drift_vs_evidently.py):

* a column whose reference has more than 20 distinct values is binned into equal-width bins over
  the combined reference + current range, their count given by Sturges' rule;
* otherwise every distinct value (of either side) is its own bin;
* an empty bin gets a tiny share (min non-zero share / 1e6 when that share is <= 1e-4, else
  1e-4) so the logarithms stay finite.

PSI = sum((ref - cur) * ln(ref / cur)); KL = sum(p * ln(p / q)) of the shares renormalised to 1
(as `scipy.stats.entropy` does). NaNs are dropped before binning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_CATEGORIES = 20  # more distinct reference values than this: equal-width bins
_DENSE_INT_RANGE = 1 << 20  # integer columns spanning less than this are counted with bincount

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Binning:
    """How one column is binned: `edges` (equal-width bins) or `categories` (one bin each)."""

    edges: FloatArray | None = None
    categories: npt.NDArray[np.generic] | None = None

    @property
    def size(self) -> int:
        """Number of bins."""
        if self.edges is not None:
            return len(self.edges) - 1
        return 0 if self.categories is None else len(self.categories)


def _clean(values: npt.ArrayLike) -> npt.NDArray[np.generic]:
    array = np.asarray(values)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if array.dtype.kind == "f":
        nan = np.isnan(array)
        if nan.any():  # copy only when there is something to drop
            array = array[~nan]
    if array.size == 0:
        raise ValueError("drift needs at least one non-null value on each side")
    return array


@dataclass(frozen=True, slots=True)
class _Dense:
    """Counts of every integer value in [lo, lo + len(counts)): one O(n) pass, no sort."""

    lo: int
    counts: npt.NDArray[np.int64]

    @property
    def values(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.counts) + self.lo


def _dense(values: npt.NDArray[np.generic]) -> _Dense | None:
    if values.dtype.kind not in "iu":
        return None
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= _DENSE_INT_RANGE:
        return None
    return _Dense(lo, np.bincount((values - lo).astype(np.intp, copy=False)))


def _unique(values: npt.NDArray[np.generic], dense: _Dense | None) -> npt.NDArray[np.generic]:
    return dense.values if dense is not None else np.unique(values)


def sturges_edges(
    reference: npt.NDArray[np.generic], current: npt.NDArray[np.generic]
) -> FloatArray:
    """`np.histogram_bin_edges(concat(reference, current), "sturges")` without the concat."""
    lo = float(min(reference.min(), current.min()))
    hi = float(max(reference.max(), current.max()))
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
        n_bins = 1
    else:
        n = reference.size + current.size
        width = (hi - lo) / (np.log2(n) + 1.0)
        n_bins = max(1, int(np.ceil((hi - lo) / width)))
    return np.linspace(lo, hi, n_bins + 1, endpoint=True)


def _choose(
    ref: npt.NDArray[np.generic],
    cur: npt.NDArray[np.generic],
    ref_dense: _Dense | None,
    cur_dense: _Dense | None,
) -> Binning:
    ref_values = _unique(ref, ref_dense)
    if ref.dtype.kind in "iuf" and len(ref_values) > MAX_CATEGORIES:
        return Binning(edges=sturges_edges(ref, cur))
    return Binning(categories=np.union1d(ref_values, _unique(cur, cur_dense)))


def choose_binning(reference: npt.ArrayLike, current: npt.ArrayLike) -> Binning:
    """Evidently's choice of bins for one column (see the module docstring)."""
    ref, cur = _clean(reference), _clean(current)
    return _choose(ref, cur, _dense(ref), _dense(cur))


def _bin_index(values: npt.NDArray[np.generic], edges: FloatArray) -> npt.NDArray[np.intp]:
    """Bin of each value in equal-width `edges`, exactly as `np.histogram` assigns it."""
    n_bins = len(edges) - 1
    lo, hi = edges[0], edges[-1]
    scaled = np.subtract(values, lo, dtype=np.float64)
    scaled *= n_bins / (hi - lo)
    index = scaled.astype(np.intp)
    np.minimum(index, n_bins - 1, out=index)  # values >= lo, so only the top needs clipping
    # numpy's corrections for values that rounding put one bin off: only values within a
    # hair of a bin edge can be affected, so check just those.
    fraction = scaled - index
    near = np.flatnonzero((fraction < 1e-6) | (fraction > 1 - 1e-6))
    if near.size:
        v, i = values[near], index[near]
        i = i - (v < edges[i])
        i = i + ((v >= edges[i + 1]) & (i != n_bins - 1))
        index[near] = i
    return index


def _counts(values: npt.NDArray[np.generic], binning: Binning, dense: _Dense | None) -> FloatArray:
    if binning.edges is not None:
        edges = binning.edges
        n_bins = len(edges) - 1
        if dense is not None:  # bin the distinct integers, weighted by how often each occurs
            present = np.flatnonzero(dense.counts)
            index = _bin_index((present + dense.lo).astype(np.float64), edges)
            weights = dense.counts[present].astype(np.float64)
            return np.bincount(index, weights=weights, minlength=n_bins).astype(np.float64)
        index = _bin_index(values, edges)
        return np.bincount(index, minlength=n_bins).astype(np.float64)
    categories = binning.categories
    assert categories is not None
    if dense is not None and categories.dtype.kind in "iu":
        positions = categories.astype(np.int64) - dense.lo
        inside = (positions >= 0) & (positions < len(dense.counts))
        out = np.zeros(len(categories), dtype=np.float64)
        out[inside] = dense.counts[positions[inside]]
        return out
    index = np.searchsorted(categories, values)
    return np.bincount(index, minlength=len(categories)).astype(np.float64)


def _fill_zeros(shares: FloatArray) -> FloatArray:
    nonzero = shares[shares != 0]
    if nonzero.size == 0:
        return shares
    smallest = float(nonzero.min())
    out = shares.copy()
    out[out == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return out


def binned_shares(
    reference: npt.ArrayLike, current: npt.ArrayLike, binning: Binning | None = None
) -> tuple[FloatArray, FloatArray]:
    """Share of reference and current values per bin, empty bins filled as Evidently does."""
    ref, cur = _clean(reference), _clean(current)
    ref_dense, cur_dense = _dense(ref), _dense(cur)
    binning = binning or _choose(ref, cur, ref_dense, cur_dense)
    ref_shares = _counts(ref, binning, ref_dense) / ref.size
    cur_shares = _counts(cur, binning, cur_dense) / cur.size
    return _fill_zeros(ref_shares), _fill_zeros(cur_shares)


def psi(reference: npt.ArrayLike, current: npt.ArrayLike, binning: Binning | None = None) -> float:
    """Population stability index of `current` against `reference` (0 = same distribution)."""
    ref, cur = binned_shares(reference, current, binning)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def kl_divergence(
    reference: npt.ArrayLike, current: npt.ArrayLike, binning: Binning | None = None
) -> float:
    """KL(reference || current) of the binned distributions, in nats."""
    ref, cur = binned_shares(reference, current, binning)
    p, q = ref / ref.sum(), cur / cur.sum()
    return float(np.sum(p * np.log(p / q)))


def feature_psi(
    reference: Mapping[str, npt.ArrayLike],
    current: Mapping[str, npt.ArrayLike],
    columns: Sequence[str],
) -> dict[str, float]:
    """PSI per column of `columns` (both mappings: column name -> values, e.g. DataFrames)."""
    missing = [c for c in columns if c not in reference or c not in current]
    if missing:
        raise KeyError(f"drift columns missing from the reference or current data: {missing}")
    return {c: psi(np.asarray(reference[c]), np.asarray(current[c])) for c in columns}
