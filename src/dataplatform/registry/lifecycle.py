"""Model lifecycle on MLflow 3: promotion through gates, archive, rollback — aliases + history.

Stages are the aliases `staging` and `production` (never the deprecated stage API); "archived"
is the version tag `archived=true` plus a history row. Every alias move runs under a per-model
`LifecycleLock` as one step "read current holder → move alias → append history", so the history
in the warehouse always ends with the holder MLflow reports.

`models:/` URIs resolve through MLflow's process-wide registry URI, so the client passed in must
point at the same store (`open_lifecycle` does both via `adapters.registry.configure_mlflow`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dataplatform.adapters.notify import LogNotifier, Notifier, NotifyResult
from dataplatform.registry.gates import (
    ALIASES,
    PRODUCTION,
    STAGING,
    Approval,
    GateContext,
    GateResult,
    all_passed,
    evaluate_gates,
    results_json,
)
from dataplatform.registry.history import (
    HistoryEvent,
    Warehouse,
    append_events,
    ensure_history_table,
    next_timestamp,
    read_history,
    replay,
    rollback_candidates,
)
from dataplatform.registry.locks import LifecycleLock
from dataplatform.registry.semver import SEMVER_TAG, assign_semver, version_label
from dataplatform.registry.thresholds import Thresholds, load_thresholds

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from dataplatform.config import Settings

log = logging.getLogger(__name__)

ARCHIVED_TAG = "archived"
FEATURE_COLUMNS_TAG = "feature_columns"
_TAG_VALUE_MAX = 4000  # MLflow caps tag values (5000 on SQL stores); keep a margin


class LifecycleError(RuntimeError):
    """The lifecycle operation failed (exit 1); the registry was left as it was."""


class PolicyRefused(RuntimeError):
    """A policy said no (exit 2): a gate failed, approval missing, nothing to roll back."""


class NothingToRollBack(PolicyRefused):
    """No earlier production version to go back to."""


PromotionStatus = Literal["promoted", "already_held", "blocked"]


@dataclass(frozen=True, slots=True)
class PromotionOutcome:
    """What `promote` did; `status == "blocked"` means a gate said no."""

    model_name: str
    version: str
    semver: str
    to_alias: str
    status: PromotionStatus
    gate_results: tuple[GateResult, ...]
    from_alias: str | None = None
    replaced_version: str | None = None  # previous holder of `to_alias`
    archived_version: str | None = None  # previous production holder, now archived
    notification: NotifyResult | None = None

    @property
    def label(self) -> str:
        """`v2.3.1-production` (the alias only when it was taken)."""
        return version_label(self.semver, self.to_alias if self.status != "blocked" else None)


@dataclass(frozen=True, slots=True)
class RollbackOutcome:
    """What `rollback` did: production moved from `from_version` back to `to_version`."""

    model_name: str
    from_version: str
    to_version: str
    from_semver: str | None
    to_semver: str | None
    smoke_rows_scored: int
    notification: NotifyResult | None = None


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One registered version as `model list` shows it."""

    version: str
    semver: str | None
    aliases: tuple[str, ...]
    archived: bool
    run_id: str | None
    created_at: datetime | None
    label: str = field(default="")


def _now() -> datetime:
    return datetime.now(UTC)


class ModelLifecycle:
    """Promote, roll back, list and read the history of registered models."""

    def __init__(
        self,
        client: MlflowClient,
        warehouse: Warehouse,
        lock: LifecycleLock,
        thresholds: Thresholds,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.client = client
        self.warehouse = warehouse
        self.lock = lock
        self.thresholds = thresholds
        self.notifier = notifier or LogNotifier()
        self.clock = clock
        ensure_history_table(warehouse)

    # --- reading ---------------------------------------------------------------------------
    def history(self, name: str) -> list[HistoryEvent]:
        """Every history event of `name`, oldest first."""
        return read_history(self.warehouse, name)

    def holder_at(self, name: str, at: datetime, alias: str = PRODUCTION) -> str | None:
        """Version that held `alias` at `at` according to the history."""
        return replay(self.history(name), at).get(alias)

    def current_holders(self, name: str) -> dict[str, str]:
        """Alias -> version, as the registry reports it now."""
        aliases = self.client.get_registered_model(name).aliases
        return {alias: str(v) for alias, v in aliases.items()}

    def list_versions(self, name: str) -> list[VersionRow]:
        """All versions of `name`, newest first, with semver, aliases and archived flag."""
        holders = self.current_holders(name)
        by_version: dict[str, list[str]] = {}
        for alias, version in holders.items():
            by_version.setdefault(version, []).append(alias)
        rows = []
        for mv in self.client.search_model_versions(f"name='{_quote(name)}'"):
            version = str(mv.version)
            aliases = tuple(a for a in ALIASES if a in by_version.get(version, []))
            aliases += tuple(sorted(set(by_version.get(version, [])) - set(ALIASES)))
            archived = mv.tags.get(ARCHIVED_TAG) == "true"
            semver = mv.tags.get(SEMVER_TAG)
            stage = aliases[0] if aliases else ("archived" if archived else None)
            rows.append(
                VersionRow(
                    version=version,
                    semver=semver,
                    aliases=aliases,
                    archived=archived,
                    run_id=mv.run_id or None,
                    created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC)
                    if mv.creation_timestamp
                    else None,
                    label=version_label(semver, stage),
                )
            )
        return sorted(rows, key=lambda r: int(r.version), reverse=True)

    # --- gates -----------------------------------------------------------------------------
    def gate_context(
        self,
        name: str,
        version: str,
        to_alias: str,
        *,
        approval: Approval | None = None,
        serving_columns: Sequence[str] | None = None,
    ) -> GateContext:
        """Collect what the gates need from the registry and the candidate's training run."""
        import mlflow

        gates = self.thresholds.for_model(name).gates
        mv = self.client.get_model_version(name, version)
        metrics: dict[str, float] = {}
        run_tags: dict[str, str] = {}
        if mv.run_id:
            run = self.client.get_run(mv.run_id)
            metrics = dict(run.data.metrics)
            run_tags = dict(run.data.tags)
        info = mlflow.models.get_model_info(f"models:/{name}/{version}")
        signature_inputs = _signature_columns(info.signature)
        columns = (
            serving_columns
            or gates.serving_columns
            or _split_columns(mv.tags.get(FEATURE_COLUMNS_TAG))
        )
        production_version = self.current_holders(name).get(PRODUCTION)
        production_metrics: Mapping[str, float] | None = None
        if production_version and production_version != version:
            prod = self.client.get_model_version(name, production_version)
            if prod.run_id:
                production_metrics = dict(self.client.get_run(prod.run_id).data.metrics)
        return GateContext(
            model_name=name,
            version=version,
            target_alias=to_alias,
            candidate_metrics=metrics,
            baseline_f1=metrics.get(gates.baseline_metric),
            production_version=production_version,
            production_metrics=production_metrics,
            signature_inputs=signature_inputs,
            serving_columns=tuple(columns) if columns else None,
            data_checks_passed=_data_checks(gates.data_checks_tag, mv.tags, run_tags, metrics),
            approval=approval,
        )

    # --- promotion -------------------------------------------------------------------------
    def promote(
        self,
        name: str,
        version: str,
        to_alias: str,
        *,
        actor: str,
        approval: Approval | None = None,
        reason: str | None = None,
        serving_columns: Sequence[str] | None = None,
    ) -> PromotionOutcome:
        """Move `to_alias` to `version` if every gate passes; record the attempt either way.

        Gate results go to the version's tags (`gate.<alias>.<gate>`) and the history. When
        `production` moves, the previous holder is archived and the candidate leaves `staging`.
        """
        if to_alias not in ALIASES:
            raise LifecycleError(f"unknown alias {to_alias!r}; expected one of {ALIASES}")
        version = str(version)
        gates = self.thresholds.for_model(name).gates
        with self.lock.hold(name):
            semver = str(assign_semver(self.client, name, version))
            ctx = self.gate_context(
                name, version, to_alias, approval=approval, serving_columns=serving_columns
            )
            results = tuple(evaluate_gates(ctx, gates))
            self._tag_gate_results(name, version, to_alias, results)
            holders = self.current_holders(name)
            events = read_history(self.warehouse, name)
            why = reason or (approval.reason if approval else None)
            if not all_passed(results):
                failed = ", ".join(r.gate for r in results if not r.passed)
                append_events(
                    self.warehouse,
                    [
                        HistoryEvent(
                            model_name=name,
                            version=version,
                            semver=semver,
                            to_alias=to_alias,
                            action="blocked",
                            actor=actor,
                            occurred_at=next_timestamp(events, self.clock()),
                            reason=f"gates failed: {failed}",
                            gate_results_json=results_json(results),
                        )
                    ],
                )
                return PromotionOutcome(name, version, semver, to_alias, "blocked", results)
            previous = holders.get(to_alias)
            if previous == version:
                return PromotionOutcome(
                    name,
                    version,
                    semver,
                    to_alias,
                    "already_held",
                    results,
                    replaced_version=previous,
                )
            from_alias = (
                STAGING if to_alias == PRODUCTION and holders.get(STAGING) == version else None
            )
            archived = previous if to_alias == PRODUCTION else None
            new_events = self._move(
                name,
                version=version,
                semver=semver,
                to_alias=to_alias,
                from_alias=from_alias,
                previous=previous,
                archive=archived,
                action="promote",
                actor=actor,
                reason=why,
                gate_json=results_json(results),
                events=events,
            )
        outcome = PromotionOutcome(
            name,
            version,
            semver,
            to_alias,
            "promoted",
            results,
            from_alias=from_alias,
            replaced_version=previous,
            archived_version=archived,
        )
        text = (
            f"Model {name} {version_label(semver, to_alias)} (version {version}) promoted to "
            f"{to_alias} by {actor}"
            + (f"; archived version {archived}" if archived else "")
            + (f". Reason: {why}" if why else "")
        )
        log.info("%s (%d history events)", text, len(new_events))
        return _with_notification(outcome, self._notify(text))

    # --- rollback --------------------------------------------------------------------------
    def rollback(self, name: str, *, reason: str, actor: str) -> RollbackOutcome:
        """Move `production` back to the version that held it before the current one.

        The target comes from the history (promotions push, rollbacks pop), is verified by
        loading it and scoring its stored input example BEFORE anything moves, then the bad
        version is archived and both moves are recorded.
        """
        if not reason.strip():
            raise LifecycleError("a rollback needs a reason")
        with self.lock.hold(name):
            holders = self.current_holders(name)
            current = holders.get(PRODUCTION)
            if current is None:
                raise NothingToRollBack(
                    f"no version of {name!r} holds 'production': nothing to roll back"
                )
            events = read_history(self.warehouse, name)
            target = next(
                (v for v in rollback_candidates(events, current) if self._exists(name, v)), None
            )
            if target is None:
                raise NothingToRollBack(
                    f"{name!r} version {current} is the only production version in the "
                    "promotion history: nothing to roll back to"
                )
            try:
                rows = smoke_score(f"models:/{name}/{target}")
            except Exception as exc:
                raise LifecycleError(
                    f"version {target} failed its smoke test ({type(exc).__name__}: {exc}); "
                    "production left on version " + current
                ) from exc
            from_semver = self._semver(name, current)
            to_semver = self._semver(name, target)
            self._move(
                name,
                version=target,
                semver=to_semver,
                to_alias=PRODUCTION,
                from_alias=None,
                previous=current,
                archive=current,
                action="rollback",
                actor=actor,
                reason=reason,
                gate_json=None,
                events=events,
            )
            resolved = str(self.client.get_model_version_by_alias(name, PRODUCTION).version)
            if resolved != target:
                raise LifecycleError(
                    f"after rollback 'production' resolves to {resolved}, expected {target}"
                )
        text = (
            f"Model {name} rolled back: production {version_label(from_semver, None)} "
            f"(version {current}) -> {version_label(to_semver, PRODUCTION)} (version {target}) "
            f"by {actor}. Reason: {reason}"
        )
        log.warning("%s", text)
        return RollbackOutcome(
            name, current, target, from_semver, to_semver, rows, notification=self._notify(text)
        )

    # --- internals -------------------------------------------------------------------------
    def _move(
        self,
        name: str,
        *,
        version: str,
        semver: str | None,
        to_alias: str,
        from_alias: str | None,
        previous: str | None,
        archive: str | None,
        action: Literal["promote", "rollback"],
        actor: str,
        reason: str | None,
        gate_json: str | None,
        events: Sequence[HistoryEvent],
    ) -> list[HistoryEvent]:
        """Move the alias, tag archive state and append the history; undo the move on failure."""
        client = self.client
        client.set_registered_model_alias(name, to_alias, version)
        try:
            if from_alias:
                client.delete_registered_model_alias(name, from_alias)
            mv_tags = client.get_model_version(name, version).tags
            if mv_tags.get(ARCHIVED_TAG):
                client.delete_model_version_tag(name, version, ARCHIVED_TAG)
            new_events: list[HistoryEvent] = []
            at = next_timestamp(events, self.clock())
            if archive:
                client.set_model_version_tag(name, archive, ARCHIVED_TAG, "true")
                new_events.append(
                    HistoryEvent(
                        model_name=name,
                        version=archive,
                        semver=self._semver(name, archive),
                        from_alias=PRODUCTION,
                        action="archive",
                        actor=actor,
                        occurred_at=at,
                        reason=(f"{action}: " + (reason or f"replaced by version {version}")),
                    )
                )
                at = next_timestamp(new_events, at)
            new_events.append(
                HistoryEvent(
                    model_name=name,
                    version=version,
                    semver=semver,
                    from_alias=from_alias,
                    to_alias=to_alias,
                    action=action,
                    actor=actor,
                    occurred_at=at,
                    reason=reason,
                    gate_results_json=gate_json,
                )
            )
            return append_events(self.warehouse, new_events)
        except Exception as exc:
            self._undo_move(name, to_alias, previous, from_alias, version)
            raise LifecycleError(
                f"could not record the move of {to_alias!r} to version {version} "
                f"({type(exc).__name__}: {exc}); alias restored"
            ) from exc

    def _undo_move(
        self, name: str, alias: str, previous: str | None, from_alias: str | None, version: str
    ) -> None:
        try:
            if previous:
                self.client.set_registered_model_alias(name, alias, previous)
            else:
                self.client.delete_registered_model_alias(name, alias)
            if from_alias:
                self.client.set_registered_model_alias(name, from_alias, version)
        except Exception:  # the original error matters more; say the registry needs a look
            log.exception("could not restore alias %r of %s after a failed move", alias, name)

    def _tag_gate_results(
        self, name: str, version: str, alias: str, results: Sequence[GateResult]
    ) -> None:
        for result in results:
            value = f"{'pass' if result.passed else 'fail'}: {result.detail}"[:_TAG_VALUE_MAX]
            self.client.set_model_version_tag(name, version, f"gate.{alias}.{result.gate}", value)
        self.client.set_model_version_tag(
            name, version, f"gates.{alias}.passed", "true" if all_passed(results) else "false"
        )
        self.client.set_model_version_tag(
            name, version, f"gates.{alias}.evaluated_at", self.clock().isoformat()
        )

    def _semver(self, name: str, version: str) -> str | None:
        return self.client.get_model_version(name, version).tags.get(SEMVER_TAG)

    def _exists(self, name: str, version: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_model_version(name, version)
        except MlflowException:
            return False
        return True

    def _notify(self, text: str) -> NotifyResult:
        try:
            return self.notifier.send(text)
        except Exception as exc:  # a notifier must never fail a promotion
            log.warning("notification failed: %s", type(exc).__name__)
            return NotifyResult(channel="unknown", delivered=False, attempts=1, error=str(exc))


def smoke_score(model_uri: str) -> int:
    """Load the model at `model_uri` with pyfunc and score its stored input example.

    Without a stored example, one row of zeros built from the input signature is scored.
    Returns the number of predictions; raises when loading or scoring fails.
    """
    import mlflow
    import pandas as pd
    from mlflow.models import Model

    local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
    meta = Model.load(local)
    sample: Any = meta.load_input_example(local)
    if sample is None:
        columns = _signature_columns(meta.signature)
        if not columns:
            raise LifecycleError(f"{model_uri} has neither an input example nor a signature")
        sample = pd.DataFrame([dict.fromkeys(columns, 0)])
    model = mlflow.pyfunc.load_model(local)
    predictions = model.predict(sample)
    count = len(predictions)
    if count == 0:
        raise LifecycleError(f"{model_uri} returned no predictions for its smoke sample")
    return count


@contextmanager
def open_lifecycle(
    settings: Settings,
    *,
    thresholds_path: Path | None = None,
    notifier: Notifier | None = None,
) -> Iterator[ModelLifecycle]:
    """A `ModelLifecycle` on the settings' MLflow store and warehouse (closed on exit)."""
    from dataplatform.adapters.notify import notifier_from_settings
    from dataplatform.adapters.registry import configure_mlflow
    from dataplatform.adapters.warehouse import open_warehouse
    from dataplatform.registry.locks import lock_for

    thresholds = load_thresholds(thresholds_path)
    client = configure_mlflow(settings)
    warehouse = open_warehouse(settings)
    try:
        yield ModelLifecycle(
            client,
            warehouse,
            lock_for(settings),
            thresholds,
            notifier or notifier_from_settings(settings),
        )
    finally:
        warehouse.close()


def _with_notification(outcome: PromotionOutcome, result: NotifyResult) -> PromotionOutcome:
    from dataclasses import replace

    return replace(outcome, notification=result)


def _signature_columns(signature: Any) -> dict[str, str] | None:
    if signature is None or signature.inputs is None:
        return None
    return {
        str(spec.get("name") or f"#{i}"): str(spec.get("type"))
        for i, spec in enumerate(signature.inputs.to_dict())
    }


def _split_columns(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    cols = tuple(c.strip() for c in value.split(",") if c.strip())
    return cols or None


def _data_checks(
    key: str,
    version_tags: Mapping[str, str],
    run_tags: Mapping[str, str],
    metrics: Mapping[str, float],
) -> bool | None:
    """True/False from a version tag, run tag or run metric named `key`; None when absent."""
    for tags in (version_tags, run_tags):
        raw = tags.get(key)
        if raw is not None:
            return raw.strip().lower() in {"true", "1", "yes", "passed"}
    if key in metrics:
        return metrics[key] >= 1.0
    return None


def _quote(name: str) -> str:
    return name.replace("'", "\\'")
