"""Register a trained run's model as a new version of its registered model (idempotent).

Only registration lives here; gates, aliases and history belong to the lifecycle module. The
inputs are typed structurally (Protocols) so this stage does not import the train stage:
`dataplatform.train.TrainResult` and `ModelSpec` satisfy them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dataplatform.adapters.registry import configure_mlflow
from dataplatform.config import Settings

MODEL_ARTIFACT = "model"


class TrainedRun(Protocol):
    """What registration needs from a training result."""

    @property
    def run_id(self) -> str: ...
    @property
    def metrics(self) -> Mapping[str, float]: ...
    @property
    def baseline_metrics(self) -> Mapping[str, float]: ...
    @property
    def per_repo_f1(self) -> Mapping[str, float]: ...
    @property
    def dataset_version(self) -> str: ...
    @property
    def n_train(self) -> int: ...
    @property
    def n_test(self) -> int: ...
    @property
    def cutoff(self) -> str: ...
    @property
    def tags(self) -> Mapping[str, str]: ...


class RegistrableSpec(Protocol):
    """What registration needs from a model spec."""

    @property
    def name(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def training_mart(self) -> str: ...
    @property
    def input_columns(self) -> Sequence[str]: ...
    @property
    def description(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """A model version in the registry; `created` is False when it already existed."""

    name: str
    version: int
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    created: bool = True

    @property
    def model_uri(self) -> str:
        """`models:/<name>/<version>`, loadable with `mlflow.pyfunc.load_model`."""
        return f"models:/{self.name}/{self.version}"


def register_model(
    settings: Settings, train_result: TrainedRun, spec: RegistrableSpec
) -> RegisteredVersion:
    """Register `runs:/<run_id>/model` as a version of `spec.name`, with lineage tags and a
    description carrying the test metrics. Re-registering a run returns its existing version."""
    client = configure_mlflow(settings)
    existing = _versions_of_run(client, spec.name, train_result.run_id)
    if existing:
        first = min(existing, key=lambda v: int(v.version))
        return _as_registered(first, created=False)

    import mlflow

    tags = {
        **{k: str(v) for k, v in train_result.tags.items()},
        "dataset_version": train_result.dataset_version,
        "run_id": train_result.run_id,
        # Comma-separated model inputs: the lifecycle's schema gate reads them.
        "feature_columns": ",".join(spec.input_columns),
        "target": spec.target,
        # Batch scoring and monitoring read this mart (e.g. every ingested commit).
        "scoring_mart": getattr(spec, "score_from", "") or spec.training_mart,
        "f1_score": _fmt(train_result.metrics.get("f1_score")),
        "baseline_f1_score": _fmt(train_result.baseline_metrics.get("f1_score")),
    }
    _ensure_registered_model(client, spec)
    details = mlflow.register_model(
        f"runs:/{train_result.run_id}/{MODEL_ARTIFACT}", spec.name, tags=tags
    )
    client.update_model_version(
        name=spec.name,
        version=details.version,
        description=describe_version(spec, train_result, int(details.version)),
    )
    return _as_registered(client.get_model_version(spec.name, details.version), created=True)


def describe_version(spec: RegistrableSpec, result: TrainedRun, version: int) -> str:
    """Markdown description of a version: target, data, test metrics vs baseline, per repo."""
    m, b = result.metrics, result.baseline_metrics
    lines = [
        f"{spec.name} v{version}",
        "",
        f"Target: {spec.target} (binary classification). Mart: {spec.training_mart}.",
        f"Inputs: {', '.join(spec.input_columns)}",
        f"Training rows: {result.n_train:,}; test rows: {result.n_test:,} "
        f"(time split at {result.cutoff}).",
        f"Dataset version (sha256): {result.dataset_version}",
        "",
        "Test metrics (model / baseline):",
    ]
    for name in ("f1_score", "accuracy", "precision", "recall"):
        lines.append(f"- {name}: {_fmt(m.get(name))} / {_fmt(b.get(name))}")
    if result.per_repo_f1:
        lines.append("")
        lines.append("F1 per repository (n/a: no positives in its test window and none predicted):")
        for repo, f1 in sorted(result.per_repo_f1.items()):
            lines.append(f"- {repo}: {_fmt(f1)}")
    if spec.description:
        lines += ["", spec.description]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.4f}"


def _versions_of_run(client: Any, name: str, run_id: str) -> list[Any]:
    # Quotes cannot occur in MLflow run ids / model names we create, but refuse them anyway.
    if "'" in name or "'" in run_id:
        raise ValueError("model name and run id must not contain quotes")
    return list(client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"))


def _ensure_registered_model(client: Any, spec: RegistrableSpec) -> None:
    from mlflow.exceptions import MlflowException

    if _registered_model_exists(client, spec.name):
        return
    try:
        client.create_registered_model(spec.name, description=spec.description or None)
    except MlflowException:
        if not _registered_model_exists(client, spec.name):  # not a create race: real error
            raise


def _registered_model_exists(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        return False
    return True


def _as_registered(version: Any, *, created: bool) -> RegisteredVersion:
    return RegisteredVersion(
        name=version.name,
        version=int(version.version),
        run_id=version.run_id,
        tags=dict(version.tags or {}),
        created=created,
    )


def find_version(settings: Settings, name: str, tags: dict[str, str]) -> RegisteredVersion | None:
    """The newest version of `name` whose tags include all of `tags`, or None."""
    client = configure_mlflow(settings)
    if not _registered_model_exists(client, name):
        return None
    matches = [
        v
        for v in client.search_model_versions(f"name = '{name}'")
        if all(v.tags.get(k) == value for k, value in tags.items())
    ]
    if not matches:
        return None
    return _as_registered(max(matches, key=lambda v: int(v.version)), created=False)
