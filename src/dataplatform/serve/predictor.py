"""Loaded models, their atomic swap, and the scoring thread that batches concurrent requests.

* `LoadedModel`: one registered version in memory plus its metadata (version, semver, alias).
* `ModelSlots`: the version currently serving each (model, alias). A swap replaces one reference;
  a request takes the reference once when it starts, so it finishes on that model even when a
  reload swaps the slot meanwhile (no lock on the read path).
* `Scorer`: micro-batching on the event loop. Requests that arrive in the same loop iteration
  are scored together: features in ONE call of the shared feature code, one `predict_proba` per
  model. No thread: scoring a commit takes well under a millisecond, and a hand-off to another
  thread cost more than that in wake-ups and GIL waits (p99 spikes). Shadow scoring runs after
  the answers are handed back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dataplatform.serve.fastpath import Proba, verified_proba
from dataplatform.serve.featurize import (
    FEATURE_COLUMNS,
    FeatureRows,
    compute_features,
    feature_index,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

PRODUCTION = "production"
STAGING = "staging"
ALIASES = (PRODUCTION, STAGING)
SEMVER_TAG = "semver"  # version tag written by the registry stage


class ModelNotFound(LookupError):
    """The registry has no version behind the alias (or no such model)."""


@dataclass(frozen=True, slots=True, eq=False)
class LoadedModel:
    """A registered model version in memory; `estimator` has `predict_proba` and `classes_`.

    Derived at construction: `matrix_index` (positions of the input columns in the shared
    feature matrix, when the model takes a bare matrix of features) and `fast_proba` (the
    verified numpy twin of `predict_proba`, see `serve.fastpath`; None = sklearn scores).
    """

    name: str
    version: str
    alias: str
    semver: str | None
    run_id: str | None
    loaded_at: datetime
    input_columns: tuple[str, ...]
    estimator: Any = field(repr=False)
    matrix_index: np.ndarray | None = field(init=False, default=None, repr=False)
    fast_proba: Proba | None = field(init=False, default=None, repr=False)
    _classes: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index = feature_index(self.input_columns) if self.takes_matrix else None
        object.__setattr__(self, "matrix_index", index)
        fast = verified_proba(self.estimator, len(self.input_columns), self.name) if (
            index is not None
        ) else None  # fmt: skip
        object.__setattr__(self, "fast_proba", fast)
        object.__setattr__(self, "_classes", np.asarray(self.estimator.classes_))

    def predict(self, rows: pd.DataFrame | FeatureRows) -> tuple[np.ndarray, np.ndarray]:
        """(predicted class, probability of that class) for each row of `rows`."""
        if isinstance(rows, pd.DataFrame):
            rows = FeatureRows(frame=rows)
        inputs = rows.model_input(self.input_columns, self.matrix_index)
        if self.fast_proba is not None and isinstance(inputs, np.ndarray):
            proba = self.fast_proba(inputs)
        else:
            proba = np.asarray(self.estimator.predict_proba(inputs))
        best = proba.argmax(axis=1)
        return self._classes[best], proba[np.arange(len(best)), best]

    @property
    def takes_matrix(self) -> bool:
        """Whether a bare matrix in `input_columns` order is what the estimator was fitted on."""
        names = getattr(self.estimator, "feature_names_in_", None)
        return names is None or [str(n) for n in names] == list(self.input_columns)

    def describe(self) -> dict[str, Any]:
        """Metadata for status pages (no estimator)."""
        return {
            "name": self.name,
            "version": self.version,
            "semver": self.semver,
            "alias": self.alias,
            "run_id": self.run_id,
            "loaded_at": self.loaded_at.isoformat(),
            "input_columns": list(self.input_columns),
        }


def resolve_alias(client: MlflowClient, name: str, alias: str) -> tuple[str, str | None] | None:
    """(version, semver tag) behind `name@alias`, or None when the alias or model is missing."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise
    return str(mv.version), (mv.tags or {}).get(SEMVER_TAG)


def load_model(client: MlflowClient, name: str, version: str, alias: str) -> LoadedModel:
    """Download and load `models:/<name>/<version>` (sklearn flavour) with its input columns.

    Needs the process-wide registry URI set (`adapters.registry.configure_mlflow`).
    """
    import mlflow.artifacts
    import mlflow.sklearn
    from mlflow.models import Model

    mv = client.get_model_version(name, version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}")
    meta = Model.load(local)
    if meta.signature is None or meta.signature.inputs is None:
        raise ModelNotFound(f"{name} version {version} has no input signature")
    columns = tuple(str(c) for c in meta.signature.inputs.input_names())
    estimator = mlflow.sklearn.load_model(local)
    if not hasattr(estimator, "predict_proba"):
        raise ModelNotFound(f"{name} version {version} has no predict_proba")
    return LoadedModel(
        name=name,
        version=str(version),
        alias=alias,
        semver=(mv.tags or {}).get(SEMVER_TAG),
        run_id=mv.run_id,
        loaded_at=datetime.now(UTC),
        input_columns=columns,
        estimator=estimator,
    )


class ModelSlots:
    """The model serving each (name, alias). Reads are lock-free; swaps replace one reference."""

    def __init__(self) -> None:
        self._slots: dict[tuple[str, str], LoadedModel] = {}
        self._write = threading.Lock()

    def get(self, name: str, alias: str = PRODUCTION) -> LoadedModel | None:
        """The model serving `name@alias` right now (None when nothing is loaded)."""
        return self._slots.get((name, alias))

    def swap(self, name: str, alias: str, model: LoadedModel | None) -> LoadedModel | None:
        """Put `model` in the slot (None empties it); returns the model it replaced."""
        with self._write:
            # A fresh dict, assigned in one step: readers see the old or the new mapping, whole.
            slots = dict(self._slots)
            previous = slots.pop((name, alias), None)
            if model is not None:
                slots[(name, alias)] = model
            self._slots = slots
        return previous

    def all(self) -> dict[tuple[str, str], LoadedModel]:
        """A snapshot of every loaded slot."""
        return dict(self._slots)


# --- scoring -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Scored:
    """The answer to one request: its feature rows and, per row, class and its probability."""

    model: LoadedModel
    rows: FeatureRows  # the shared feature matrix (commit input) or the frame scored
    classes: np.ndarray
    probabilities: np.ndarray

    @property
    def features(self) -> pd.DataFrame:
        """The scored rows as a DataFrame (built on demand)."""
        return self.rows.frame


ShadowCallback = Callable[[Scored, Scored, Any], None]  # (served, shadow, context)


@dataclass(slots=True)
class _Job:
    model: LoadedModel
    commits: Sequence[Mapping[str, Any]] | None
    frame: pd.DataFrame | None
    shadow: LoadedModel | None
    context: Any
    deliver: Callable[[Scored | BaseException], None]
    features: FeatureRows | None = None

    @property
    def rows(self) -> int:
        if self.commits is not None:
            return len(self.commits)
        return len(self.frame) if self.frame is not None else 0

    @property
    def by_matrix(self) -> bool:
        """Commit input whose models all take the bare feature matrix (no mart frame needed)."""
        models = (self.model,) if self.shadow is None else (self.model, self.shadow)
        return self.commits is not None and all(m.matrix_index is not None for m in models)


class Scorer:
    """Micro-batches the requests of one event-loop iteration: one feature call, one predict."""

    def __init__(
        self, *, max_batch_rows: int = 512, on_shadow: ShadowCallback | None = None
    ) -> None:
        self.max_batch_rows = max_batch_rows
        self.on_shadow = on_shadow
        self._pending: list[_Job] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # where a flush is scheduled

    def start(self) -> None:
        """Prepare for serving (idempotent)."""
        # Matrices are passed on purpose (LoadedModel.takes_matrix checked the column order).
        warnings.filterwarnings(
            "ignore", message="X does not have valid feature names", category=UserWarning
        )

    def stop(self) -> None:
        """Nothing to finish: queued requests are scored on the loop's next iteration."""

    async def score(
        self,
        model: LoadedModel,
        *,
        commits: Sequence[Mapping[str, Any]] | None = None,
        frame: pd.DataFrame | None = None,
        shadow: LoadedModel | None = None,
        context: Any = None,
    ) -> Scored:
        """Score commit records (features computed here) or a ready feature `frame`.

        The job waits for the end of the current loop iteration, so every request parsed in
        it is scored in the same batch.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Scored] = loop.create_future()
        job = _Job(model, commits, frame, shadow, context, functools.partial(_resolve, future))
        self._pending.append(job)
        if self._flush_loop is not loop:  # none scheduled (or on a loop that has ended)
            self._flush_loop = loop
            loop.call_soon(self._flush, loop)
        return await future

    def score_sync(
        self,
        model: LoadedModel,
        *,
        commits: Sequence[Mapping[str, Any]] | None = None,
        frame: pd.DataFrame | None = None,
    ) -> Scored:
        """Score on the calling thread (batch tools and tests)."""
        box: list[Scored | BaseException] = []
        self.run_batch([_Job(model, commits, frame, None, None, box.append)])
        result = box[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Score the queued jobs (at most `max_batch_rows` rows; the rest on the next turn)."""
        pending, take, rows = self._pending, 0, 0
        while take < len(pending) and (
            take == 0 or rows + pending[take].rows <= self.max_batch_rows
        ):
            rows += pending[take].rows
            take += 1
        batch, self._pending = pending[:take], pending[take:]
        if self._pending:
            loop.call_soon(self._flush, loop)  # let the loop answer in between
        else:
            self._flush_loop = None
        try:
            self.run_batch(batch, defer=loop.call_soon)
        except Exception as exc:  # never strand a request: answer everyone with the error
            log.exception("scoring batch failed")
            for job in batch:
                job.deliver(exc)

    def run_batch(self, batch: list[_Job], defer: Callable[..., Any] | None = None) -> None:
        """Features for every commit job in one call, then one predict per distinct model.

        Shadow scoring runs after the answers are delivered: through `defer` (the loop's
        `call_soon`, so the answers go out first) or right away.
        """
        self._featurize(batch)
        ready = [job for job in batch if job.features is not None]
        results: dict[int, Scored] = {}
        for model, jobs in _group(ready, lambda j: j.model).items():
            try:
                rows = FeatureRows.concat([j.features for j in jobs if j.features is not None])
                classes, probs = model.predict(rows)
            except Exception as exc:
                for job in jobs:
                    job.deliver(exc)
                continue
            start = 0
            for job in jobs:
                assert job.features is not None
                end = start + len(job.features)
                scored = Scored(model, job.features, classes[start:end], probs[start:end])
                results[id(job)] = scored
                job.deliver(scored)
                start = end
        shadowed = [job for job in ready if job.shadow is not None and id(job) in results]
        if shadowed and self.on_shadow is not None:
            if defer is None:
                self._shadow(shadowed, results)
            else:
                defer(self._shadow, shadowed, results)

    def _featurize(self, batch: list[_Job]) -> None:
        for job in batch:
            if job.frame is not None:
                job.features = FeatureRows(frame=job.frame.reset_index(drop=True))
        matrix_jobs = [job for job in batch if job.commits is not None and job.by_matrix]
        frame_jobs = [job for job in batch if job.commits is not None and not job.by_matrix]
        self._featurize_group(matrix_jobs, FeatureRows.of_commits)
        self._featurize_group(frame_jobs, lambda c: FeatureRows(frame=compute_features(c)))

    @staticmethod
    def _featurize_group(
        jobs: list[_Job], build: Callable[[list[Mapping[str, Any]]], FeatureRows]
    ) -> None:
        if not jobs:
            return
        try:
            rows = build([c for job in jobs for c in job.commits or ()])
            start = 0
            for job in jobs:
                end = start + job.rows
                job.features = rows.slice(start, end)
                start = end
        except Exception:
            # One bad request must not fail its neighbours: retry each on its own.
            for job in jobs:
                try:
                    job.features = build(list(job.commits or ()))
                except Exception as exc:
                    job.deliver(exc)

    def _shadow(self, jobs: list[_Job], results: dict[int, Scored]) -> None:
        if self.on_shadow is None:
            return
        for shadow, group in _group(jobs, lambda j: j.shadow).items():
            try:
                served = [results[id(j)] for j in group]
                rows = FeatureRows.concat([s.rows for s in served])
                classes, probs = shadow.predict(rows)
            except Exception:
                log.exception("shadow scoring with %s v%s failed", shadow.name, shadow.version)
                continue
            start = 0
            for job, scored in zip(group, served, strict=True):
                end = start + len(scored.rows)
                shadowed = Scored(shadow, scored.rows, classes[start:end], probs[start:end])
                try:
                    self.on_shadow(scored, shadowed, job.context)
                except Exception:
                    log.exception("shadow callback failed")
                start = end


def _group(jobs: list[_Job], key: Callable[[_Job], Any]) -> dict[Any, list[_Job]]:
    groups: dict[Any, list[_Job]] = {}
    for job in jobs:
        groups.setdefault(key(job), []).append(job)
    return groups


def _resolve(future: asyncio.Future[Scored], result: Scored | BaseException) -> None:
    if future.done() or future.get_loop().is_closed():  # the client went away, or the loop
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def feature_columns_of(frame: pd.DataFrame) -> list[str]:
    """The shared FEATURE_COLUMNS present in `frame`, in their canonical order."""
    return [c for c in FEATURE_COLUMNS if c in frame.columns]
