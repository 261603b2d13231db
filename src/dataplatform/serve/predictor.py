"""Loaded models, their atomic swap, and the scoring thread that batches concurrent requests.

* `LoadedModel`: one registered version in memory plus its metadata (version, semver, alias).
* `ModelSlots`: the version currently serving each (model, alias). A swap replaces one reference;
  a request takes the reference once when it starts, so it finishes on that model even when a
  reload swaps the slot meanwhile (no lock on the read path).
* `Scorer`: one thread that takes every queued request, computes their features in ONE call of
  the shared feature code (whose cost is mostly fixed per call) and scores each model's rows in
  one `predict_proba`. Shadow scoring happens after the answers are handed back.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dataplatform.serve.featurize import (
    FEATURE_COLUMNS,
    compute_features,
    model_frame,
    model_matrix,
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
    """A registered model version in memory; `estimator` has `predict_proba` and `classes_`."""

    name: str
    version: str
    alias: str
    semver: str | None
    run_id: str | None
    loaded_at: datetime
    input_columns: tuple[str, ...]
    estimator: Any = field(repr=False)

    def predict(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(predicted class, probability of that class) for each row of `rows`."""
        matrix = model_matrix(rows, self.input_columns) if self.takes_matrix else None
        inputs = matrix if matrix is not None else model_frame(rows, self.input_columns)
        proba = np.asarray(self.estimator.predict_proba(inputs))
        best = proba.argmax(axis=1)
        classes = np.asarray(self.estimator.classes_)
        return classes[best], proba[np.arange(len(best)), best]

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
    """The answer to one request: features and, per row, class and its probability."""

    model: LoadedModel
    features: pd.DataFrame  # the model's input columns (+ mart columns for commit input)
    classes: np.ndarray
    probabilities: np.ndarray


ShadowCallback = Callable[[Scored, Scored, Any], None]  # (served, shadow, context)


@dataclass(slots=True)
class _Job:
    model: LoadedModel
    commits: Sequence[Mapping[str, Any]] | None
    frame: pd.DataFrame | None
    shadow: LoadedModel | None
    context: Any
    deliver: Callable[[Scored | BaseException], None]
    features: pd.DataFrame | None = None

    @property
    def rows(self) -> int:
        if self.commits is not None:
            return len(self.commits)
        return len(self.frame) if self.frame is not None else 0


_STOP = object()


class Scorer:
    """Scoring thread: batches queued requests, one feature call and one predict per model."""

    def __init__(
        self, *, max_batch_rows: int = 512, on_shadow: ShadowCallback | None = None
    ) -> None:
        self.max_batch_rows = max_batch_rows
        self.on_shadow = on_shadow
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the scoring thread (idempotent)."""
        # Matrices are passed on purpose (LoadedModel.takes_matrix checked the column order).
        warnings.filterwarnings(
            "ignore", message="X does not have valid feature names", category=UserWarning
        )
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="serve-scorer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish queued requests, then stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    async def score(
        self,
        model: LoadedModel,
        *,
        commits: Sequence[Mapping[str, Any]] | None = None,
        frame: pd.DataFrame | None = None,
        shadow: LoadedModel | None = None,
        context: Any = None,
    ) -> Scored:
        """Score commit records (features computed here) or a ready feature `frame`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Scored] = loop.create_future()

        def deliver(result: Scored | BaseException) -> None:
            loop.call_soon_threadsafe(_resolve, future, result)

        job = _Job(model, commits, frame, shadow, context, deliver)
        if self._thread is None:  # not started (unit tests): score inline
            self.run_batch([job])
        else:
            self._queue.put(job)
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

    # --- the thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Job] = [first]
            rows = first.rows
            while rows < self.max_batch_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
                rows += nxt.rows
            try:
                self.run_batch(batch)
            except Exception:  # never let the thread die: answer everyone with the error
                log.exception("scoring batch failed")

    def run_batch(self, batch: list[_Job]) -> None:
        """Features for every commit job in one call, then one predict per distinct model."""
        self._featurize(batch)
        ready = [job for job in batch if job.features is not None]
        results: dict[int, Scored] = {}
        for model, jobs in _group(ready, lambda j: j.model).items():
            try:
                frames = [j.features for j in jobs if j.features is not None]
                rows = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
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
        self._shadow([job for job in ready if id(job) in results], results)

    def _featurize(self, batch: list[_Job]) -> None:
        commit_jobs = [job for job in batch if job.commits is not None]
        for job in batch:
            if job.frame is not None:
                job.features = job.frame.reset_index(drop=True)
        if not commit_jobs:
            return
        try:
            rows = [c for job in commit_jobs for c in job.commits or ()]
            frame = compute_features(rows)
            start = 0
            for job in commit_jobs:
                end = start + job.rows
                job.features = frame.iloc[start:end].reset_index(drop=True)
                start = end
        except Exception:
            # One bad request must not fail its neighbours: retry each on its own.
            for job in commit_jobs:
                try:
                    job.features = compute_features(list(job.commits or ()))
                except Exception as exc:
                    job.deliver(exc)

    def _shadow(self, jobs: list[_Job], results: dict[int, Scored]) -> None:
        if self.on_shadow is None:
            return
        for shadow, group in _group([j for j in jobs if j.shadow], lambda j: j.shadow).items():
            try:
                served = [results[id(j)] for j in group]
                rows = pd.concat([s.features for s in served], ignore_index=True)
                classes, probs = shadow.predict(rows)
            except Exception:
                log.exception("shadow scoring with %s v%s failed", shadow.name, shadow.version)
                continue
            start = 0
            for job, scored in zip(group, served, strict=True):
                end = start + len(scored.features)
                shadowed = Scored(shadow, scored.features, classes[start:end], probs[start:end])
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
    if future.done():  # the client went away and the request was cancelled
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def feature_columns_of(frame: pd.DataFrame) -> list[str]:
    """The shared FEATURE_COLUMNS present in `frame`, in their canonical order."""
    return [c for c in FEATURE_COLUMNS if c in frame.columns]
