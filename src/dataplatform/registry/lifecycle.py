"""Model lifecycle on MLflow 3: promotion through gates, archive, rollback — aliases + history.

Stages are the aliases `staging` and `production` (never the deprecated stage API); "archived"
is the version tag `archived=true` plus a history row. Every alias move runs under a per-model
`LifecycleLock` as one step "read current holder → move alias → append history", so the history
in the warehouse always ends with the holder MLflow reports.

Audit: every promotion (staging and production), approval (who approved a production
promotion), refused promotion, archive of the previous production and rollback (manual or by the
monitor; refused rollbacks too) also appends rows to ``audit.events`` (`adapters.audit`):
actor, action (`model.promote`, `model.approve`, `model.promote_refused`, `model.archive`,
`model.rollback`, `model.rollback_refused`), subject ``models:/<name>/<version>`` and details
(aliases, semver, gates, reason, the id of the matching history row). The audit rows are written
in the SAME warehouse transaction as the history rows, after the MLflow alias move and before
anything is committed: if either insert fails (no INSERT grant, table missing in prod, database
down) both are rolled back, the alias move is undone and the operation fails with
`LifecycleError` (exit 1). So a registry change is audited or it does not happen; the only window
is the one the history already has (MLflow and the warehouse are two stores: a crash between the
alias move and the commit leaves an unrecorded move, which `history` then disagrees with).
A refusal changes nothing, but it is never silently unaudited either: if its audit row cannot be
written the command fails with exit 1 instead of 2, naming both. Outside the prod profile a
PostgreSQL database without ``audit.events`` (never migrated) only gets a warning
(`AuditLog(required=False)`, see `open_lifecycle`).

`models:/` URIs resolve through MLflow's process-wide registry URI, so the client passed in must
point at the same store (`open_lifecycle` does both via `adapters.registry.configure_mlflow`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dataplatform.adapters.audit import AuditAction, AuditEntry, AuditLog, atomic
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
        audit: AuditLog | None = None,
    ) -> None:
        self.client = client
        self.warehouse = warehouse
        self.lock = lock
        self.thresholds = thresholds
        self.notifier = notifier or LogNotifier()
        self.clock = clock
        # Default: required (a missing audit.events is an error); open_lifecycle relaxes it
        # outside the prod profile. `audit` must write through `warehouse` (one transaction).
        self.audit = audit or AuditLog(warehouse, required=True)
        ensure_history_table(warehouse)
        self.audit.ensure()

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
                failed = [r.gate for r in results if not r.passed]
                blocked = HistoryEvent(
                    model_name=name,
                    version=version,
                    semver=semver,
                    to_alias=to_alias,
                    action="blocked",
                    actor=actor,
                    occurred_at=next_timestamp(events, self.clock()),
                    reason=f"gates failed: {', '.join(failed)}",
                    gate_results_json=results_json(results),
                ).with_id()
                entries = [
                    *self._approval_entries(name, version, semver, to_alias, approval, results),
                    AuditEntry(
                        AuditAction.PROMOTION_REFUSED,
                        audit_subject(name, version),
                        actor,
                        {
                            "model": name,
                            "version": version,
                            "semver": semver,
                            "to_alias": to_alias,
                            "failed_gates": failed,
                            "gates": _gate_details(results),
                            "reason": why,
                            "approved_by": approval.approver if approval else None,
                            "history_event_id": blocked.event_id,
                        },
                    ),
                ]
                try:
                    self._record(
                        [blocked], [replace(e, occurred_at=blocked.occurred_at) for e in entries]
                    )
                except Exception as exc:
                    raise LifecycleError(
                        f"{name} version {version} was refused {to_alias} (gates failed: "
                        f"{', '.join(failed)}) but the refusal could not be recorded "
                        f"({type(exc).__name__}: {exc})"
                    ) from exc
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
                audit_details={
                    "model": name,
                    "version": version,
                    "semver": semver,
                    "to_alias": to_alias,
                    "from_alias": from_alias,
                    "replaced_version": previous,
                    "archived_version": archived,
                    "reason": why,
                    "gates": _gate_details(results),
                    "approved_by": approval.approver if approval else None,
                },
                pre_audit=self._approval_entries(
                    name, version, semver, to_alias, approval, results
                ),
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
    def rollback(
        self, name: str, *, reason: str, actor: str, automatic: bool = False
    ) -> RollbackOutcome:
        """Move `production` back to the version that held it before the current one.

        The target comes from the history (promotions push, rollbacks pop), is verified by
        loading it and scoring its stored input example BEFORE anything moves, then the bad
        version is archived and both moves are recorded (history + audit, one transaction).
        `automatic=True` marks a rollback decided by the monitor (``trigger`` in the audit row).
        A refused rollback (nothing to go back to, smoke test failed) is audited as
        `model.rollback_refused`.
        """
        if not reason.strip():
            raise LifecycleError("a rollback needs a reason")
        trigger = "automatic" if automatic else "manual"
        with self.lock.hold(name):
            holders = self.current_holders(name)
            current = holders.get(PRODUCTION)
            if current is None:
                raise self._refuse_rollback(
                    name,
                    None,
                    actor,
                    {"reason": reason, "trigger": trigger},
                    NothingToRollBack(
                        f"no version of {name!r} holds 'production': nothing to roll back"
                    ),
                )
            events = read_history(self.warehouse, name)
            target = next(
                (v for v in rollback_candidates(events, current) if self._exists(name, v)), None
            )
            if target is None:
                raise self._refuse_rollback(
                    name,
                    current,
                    actor,
                    {"reason": reason, "trigger": trigger},
                    NothingToRollBack(
                        f"{name!r} version {current} is the only production version in the "
                        "promotion history: nothing to roll back to"
                    ),
                )
            try:
                rows = smoke_score(f"models:/{name}/{target}")
            except Exception as exc:
                failure = LifecycleError(
                    f"version {target} failed its smoke test ({type(exc).__name__}: {exc}); "
                    "production left on version " + current
                )
                failure.__cause__ = exc
                raise self._refuse_rollback(
                    name,
                    current,
                    actor,
                    {
                        "reason": reason,
                        "trigger": trigger,
                        "to_version": target,
                        "smoke_test_error": f"{type(exc).__name__}: {exc}",
                    },
                    failure,
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
                audit_details={
                    "model": name,
                    "from_version": current,
                    "to_version": target,
                    "from_semver": from_semver,
                    "to_semver": to_semver,
                    "reason": reason,
                    "trigger": trigger,
                    "smoke_rows_scored": rows,
                },
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
        audit_details: Mapping[str, Any],
        pre_audit: Sequence[AuditEntry] = (),
    ) -> list[HistoryEvent]:
        """Move the alias, tag archive state, append history + audit; undo the move on failure.

        The history rows and the audit rows (`pre_audit` first, e.g. the approval, then the
        archive, then the move itself) are one warehouse transaction.
        """
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
                archived_event = HistoryEvent(
                    model_name=name,
                    version=archive,
                    semver=self._semver(name, archive),
                    from_alias=PRODUCTION,
                    action="archive",
                    actor=actor,
                    occurred_at=at,
                    reason=(f"{action}: " + (reason or f"replaced by version {version}")),
                ).with_id()
                new_events.append(archived_event)
                at = next_timestamp(new_events, at)
            moved = HistoryEvent(
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
            ).with_id()
            new_events.append(moved)
            first_at = new_events[0].occurred_at
            entries = [replace(e, occurred_at=e.occurred_at or first_at) for e in pre_audit]
            if archive:
                entries.append(
                    AuditEntry(
                        AuditAction.ARCHIVE,
                        audit_subject(name, archive),
                        actor,
                        {
                            "model": name,
                            "version": archive,
                            "semver": new_events[0].semver,
                            "from_alias": PRODUCTION,
                            "replaced_by": version,
                            "cause": action,
                            "reason": reason,
                            "history_event_id": new_events[0].event_id,
                        },
                        occurred_at=first_at,
                    )
                )
            entries.append(
                AuditEntry(
                    AuditAction.PROMOTION if action == "promote" else AuditAction.ROLLBACK,
                    audit_subject(name, version),
                    actor,
                    {**audit_details, "history_event_id": moved.event_id},
                    occurred_at=moved.occurred_at,
                )
            )
            return self._record(new_events, entries)
        except Exception as exc:
            self._undo_move(name, to_alias, previous, from_alias, version)
            raise LifecycleError(
                f"could not record the move of {to_alias!r} to version {version} "
                f"({type(exc).__name__}: {exc}); alias restored"
            ) from exc

    def _record(
        self, history: Sequence[HistoryEvent], entries: Sequence[AuditEntry]
    ) -> list[HistoryEvent]:
        """Append history rows and audit rows in one warehouse transaction."""
        with atomic(self.warehouse):
            stored = append_events(self.warehouse, history)
            self.audit.record(entries)
        return stored

    def _approval_entries(
        self,
        name: str,
        version: str,
        semver: str,
        to_alias: str,
        approval: Approval | None,
        results: Sequence[GateResult],
    ) -> list[AuditEntry]:
        """`model.approve` by the approver when a production approval passed its gate."""
        if approval is None or to_alias != PRODUCTION:
            return []
        if not any(r.gate == "approval" and r.passed for r in results):
            return []
        return [
            AuditEntry(
                AuditAction.APPROVAL,
                audit_subject(name, version),
                approval.approver,
                {
                    "model": name,
                    "version": version,
                    "semver": semver,
                    "to_alias": to_alias,
                    "reason": approval.reason,
                    "all_gates_passed": all_passed(results),
                },
            )
        ]

    def _refuse_rollback(
        self,
        name: str,
        current: str | None,
        actor: str,
        details: Mapping[str, Any],
        refusal: Exception,
    ) -> Exception:
        """Audit a refused rollback; returns the exception to raise (a `LifecycleError` naming
        both problems when the audit row could not be written)."""
        entry = AuditEntry(
            AuditAction.ROLLBACK_REFUSED,
            audit_subject(name, current),
            actor,
            {
                "model": name,
                "from_version": current,
                **details,
                "refusal": str(refusal),
            },
            occurred_at=self.clock(),
        )
        try:
            with atomic(self.warehouse):
                self.audit.record([entry])
        except Exception as exc:
            log.error("could not audit the refused rollback of %s: %s", name, exc)
            failure = LifecycleError(
                f"{refusal}; and the refusal could not be audited ({type(exc).__name__}: {exc})"
            )
            failure.__cause__ = exc
            return failure
        return refusal

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
    """A `ModelLifecycle` on the settings' MLflow store and warehouse (closed on exit).

    On PostgreSQL it logs in as the ML login (`Settings.for_stage("ml")`, migration 0008: INSERT
    and SELECT on the promotion history, INSERT on audit.events); the CLI, the pipeline and the
    monitor's automatic rollback all come through here.
    """
    from dataplatform.adapters.notify import notifier_from_settings
    from dataplatform.adapters.registry import configure_mlflow
    from dataplatform.adapters.warehouse import open_warehouse
    from dataplatform.registry.locks import lock_for

    settings = settings.for_stage("ml")
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
            # prod: no audit log, no promotion. Elsewhere an unmigrated PostgreSQL only warns.
            audit=AuditLog(warehouse, required=settings.profile == "prod"),
        )
    finally:
        warehouse.close()


def audit_subject(name: str, version: str | None) -> str:
    """Subject of a model's audit rows: ``models:/<name>/<version>`` (``models:/<name>``)."""
    return f"models:/{name}/{version}" if version else f"models:/{name}"


def _gate_details(results: Sequence[GateResult]) -> list[dict[str, Any]]:
    return [{"gate": r.gate, "passed": r.passed, "detail": r.detail} for r in results]


def _with_notification(outcome: PromotionOutcome, result: NotifyResult) -> PromotionOutcome:
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
