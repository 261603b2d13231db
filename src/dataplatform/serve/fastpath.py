"""`predict_proba` of a fitted linear pipeline as plain numpy, verified against sklearn at load.

sklearn spends ~0.8 ms per `predict_proba` call on input checks (array validation, tags, feature
names) whatever the row count; the commit classifier's arithmetic on one row takes microseconds.
For the pipeline shapes the trainer builds (element-wise numpy ufunc, `StandardScaler`, binary
`LogisticRegression`) `compile_proba` returns a function doing the same operations in the same
order on the fitted attributes. It is used only after it reproduced `estimator.predict_proba` on
probe rows (`verified_proba`); any other estimator is scored by sklearn as before. Inputs are the
serve stage's own feature matrices (finite, right width), already checked request by request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit

log = logging.getLogger(__name__)

Proba = Callable[[np.ndarray], np.ndarray]
_STEP = Callable[[np.ndarray], np.ndarray]


def compile_proba(estimator: Any) -> Proba | None:
    """A numpy twin of `estimator.predict_proba` for float64 matrices, or None if unsupported."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    steps = [s for _, s in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]
    steps = [s for s in steps if s is not None and not (isinstance(s, str) and s == "passthrough")]
    if not steps:
        return None
    *transforms, final = steps
    if type(final) is not LogisticRegression or len(final.classes_) != 2:
        return None
    compiled: list[_STEP] = []
    for step in transforms:
        if type(step) is FunctionTransformer:
            func = step.func
            if not isinstance(func, np.ufunc) or step.kw_args or step.validate:
                return None
            compiled.append(_ufunc_step(func))
        elif type(step) is StandardScaler:
            compiled.append(_scaler_step(step))
        else:
            return None
    coef = np.asarray(final.coef_, dtype="float64")
    intercept = np.asarray(final.intercept_, dtype="float64")
    if coef.shape[0] != 1:
        return None
    coef_t = coef.T

    def proba(matrix: np.ndarray) -> np.ndarray:
        x = matrix
        for step in compiled:
            x = step(x)
        scores = x @ coef_t + intercept  # as LinearClassifierMixin.decision_function
        p = expit(scores.reshape(-1))
        return np.stack([1 - p, p], axis=1)  # as _predict_proba_lr, binary case

    return proba


def _ufunc_step(func: np.ufunc) -> _STEP:
    def apply(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = func(x)
        return out

    return apply


def _scaler_step(scaler: Any) -> _STEP:
    mean = np.asarray(scaler.mean_, dtype="float64") if scaler.with_mean else None
    scale = (
        np.asarray(scaler.scale_, dtype="float64")
        if scaler.with_std and scaler.scale_ is not None
        else None
    )

    def apply(x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype="float64")  # StandardScaler.transform copies (copy=True)
        if mean is not None:
            x -= mean
        if scale is not None:
            x /= scale
        return x

    return apply


def probe_rows(width: int, seed: int = 0) -> np.ndarray:
    """Feature-like rows: zeros, small counts, large counts, negative lags."""
    rng = np.random.default_rng(seed)
    rows = [
        np.zeros(width),
        np.ones(width),
        rng.integers(0, 10, width),
        rng.integers(0, 1_000, width),
        rng.integers(0, 2**31 - 1, width),
        -rng.integers(0, 100_000, width),
    ]
    rows += list(rng.integers(-1_000, 100_000, (26, width)))
    return np.asarray(rows, dtype="float64")


def verified_proba(estimator: Any, width: int, name: str = "") -> Proba | None:
    """`compile_proba(estimator)` if it reproduces `estimator.predict_proba`, else None."""
    try:
        fast = compile_proba(estimator)
        if fast is None:
            return None
        probe = probe_rows(width)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matrices without feature names, on purpose
            expected = np.asarray(estimator.predict_proba(probe), dtype="float64")
        got = fast(probe)
    except Exception as exc:  # anything odd: sklearn scores this model, as before
        log.info("no numpy fast path for %s: %s", name, exc)
        return None
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-12, atol=1e-15):
        log.warning("numpy fast path for %s disagrees with predict_proba; not used", name)
        return None
    return fast
