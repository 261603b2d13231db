"""Semantic versions of registered models, stored as the model-version tag `semver`.

Rules (computed from the previous version of the same model):
* major — the input signature (column names/types) or the model family (estimator class) changed;
* minor — retrained: a different training run;
* patch — same run (only metadata or the decision threshold changed, no retraining).
The first version is v1.0.0. `next_semver` is pure; `assign_semver` is the MLflow edge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

SEMVER_TAG = "semver"
SEMVER_REASON_TAG = "semver_reason"
MODEL_FAMILY_KEYS = ("model_family", "estimator_class")
_SEMVER_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True, order=True, slots=True)
class SemVer:
    """`v{major}.{minor}.{patch}`."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse `v1.2.3`; raises ValueError on anything else."""
        match = _SEMVER_RE.match(text.strip())
        if not match:
            raise ValueError(
                f"not a semantic version (expected v<major>.<minor>.<patch>): {text!r}"
            )
        return cls(int(match[1]), int(match[2]), int(match[3]))

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


FIRST = SemVer(1, 0, 0)


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """What the semver rules compare between two consecutive versions."""

    run_id: str | None
    model_family: str | None
    # (column name, type) pairs of the input signature, sorted; None when the model has none.
    signature_inputs: tuple[tuple[str, str], ...] | None


def next_semver(
    previous: tuple[SemVer, VersionFacts] | None, current: VersionFacts
) -> tuple[SemVer, str]:
    """The semver of `current` given the previous version's semver and facts, with the reason."""
    if previous is None:
        return FIRST, "first version"
    prev_semver, prev = previous
    if prev.signature_inputs != current.signature_inputs:
        return SemVer(prev_semver.major + 1, 0, 0), "input signature changed"
    if (
        prev.model_family is not None
        and current.model_family is not None
        and prev.model_family != current.model_family
    ):
        return (
            SemVer(prev_semver.major + 1, 0, 0),
            f"model family changed ({prev.model_family} -> {current.model_family})",
        )
    if prev.run_id != current.run_id or current.run_id is None:
        return SemVer(prev_semver.major, prev_semver.minor + 1, 0), "retrained (new run)"
    return (
        SemVer(prev_semver.major, prev_semver.minor, prev_semver.patch + 1),
        "same run: metadata or decision threshold only",
    )


def version_label(semver: SemVer | str | None, alias: str | None) -> str:
    """`v2.3.1-production`; the bare semver without an alias; `unversioned` without a semver."""
    base = str(semver) if semver else "unversioned"
    return f"{base}-{alias}" if alias else base


def signature_inputs_of(signature: Any) -> tuple[tuple[str, str], ...] | None:
    """Sorted (name, type) pairs of an MLflow `ModelSignature`'s column inputs (None if absent)."""
    if signature is None or signature.inputs is None:
        return None
    cols = []
    for i, spec in enumerate(signature.inputs.to_dict()):
        name = str(spec.get("name") or f"#{i}")
        cols.append((name, str(spec.get("type"))))
    return tuple(sorted(cols))


def version_facts(client: MlflowClient, name: str, version: str) -> VersionFacts:
    """Read the facts of a registered version: its run, model family tag and signature."""
    import mlflow

    mv = client.get_model_version(name, version)
    info = mlflow.models.get_model_info(f"models:/{name}/{version}")
    family = _first_tag(mv.tags, MODEL_FAMILY_KEYS)
    if family is None and mv.run_id:
        run = client.get_run(mv.run_id)
        family = _first_tag(run.data.tags, MODEL_FAMILY_KEYS) or _first_tag(
            run.data.params, (*MODEL_FAMILY_KEYS, "estimator.class", "estimator")
        )
    if family is None:
        # Without an explicit tag the flavor is the best family we know (sklearn vs xgboost...).
        family = ",".join(sorted(k for k in info.flavors if k != "python_function")) or None
    return VersionFacts(
        run_id=mv.run_id or None,
        model_family=family,
        signature_inputs=signature_inputs_of(info.signature),
    )


def assign_semver(client: MlflowClient, name: str, version: str) -> SemVer:
    """Tag `version` (and any earlier untagged version) with its semver; idempotent.

    Earlier versions without a tag are tagged first, oldest first, so the rule always compares
    with the real previous version.
    """
    target = int(version)
    versions = sorted(
        (int(mv.version), mv.tags)
        for mv in client.search_model_versions(f"name='{_quote(name)}'")
        if int(mv.version) <= target
    )
    if not versions or versions[-1][0] != target:
        raise ValueError(f"model {name!r} has no version {version}")
    previous: tuple[SemVer, str, VersionFacts | None] | None = None
    result: SemVer | None = None
    for number, tags in versions:
        existing = tags.get(SEMVER_TAG)
        facts: VersionFacts | None = None
        if existing:
            semver = SemVer.parse(existing)
        else:
            facts = version_facts(client, name, str(number))
            prev: tuple[SemVer, VersionFacts] | None = None
            if previous is not None:
                prev_semver, prev_number, prev_facts = previous
                prev = (prev_semver, prev_facts or version_facts(client, name, prev_number))
            semver, reason = next_semver(prev, facts)
            client.set_model_version_tag(name, str(number), SEMVER_TAG, str(semver))
            client.set_model_version_tag(name, str(number), SEMVER_REASON_TAG, reason)
        previous = (semver, str(number), facts)
        result = semver
    assert result is not None  # the loop ran at least once (checked above)
    return result


def _first_tag(tags: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = tags.get(key)
        if value:
            return value
    return None


def _quote(name: str) -> str:
    return name.replace("'", "\\'")
