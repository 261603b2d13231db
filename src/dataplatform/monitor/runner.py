"""One monitor run: gather the window, run every check, decide, record, and roll back if told to.

The monitor stage imports no other stage: the caller (the lead's CLI / pipeline) passes a
`MonitorDeps` with the model's monitoring thresholds (from the ONE threshold file), the
promotion floor, and a `rollback` callable (the lifecycle's rollback). Steps of `run_monitor`:

1. the `production` version of the model, its training run's `f1_score` and drift reference
   (``reference/train_reference_sample.parquet``);
2. the recent window: the latest `settings.monitor_window_rows` commits of the training mart
   (optionally only those of the last `monitor_window_days` days) with their labels;
3. predictions of the production version on that window: from ``analytics.commit_predictions``
   when batch scoring covered it, else scored here with the model;
4. checks: feature-mart quality, PSI per feature, KL of the predicted probability (served
   predictions from ``monitoring.prediction_log`` when there are enough, else the window's),
   F1 drop, and the API's error rate / p95 when its /metrics is given;
5. `decide` over this window and the stored earlier windows of the same version (k of n);
6. results to the `monitoring` tables, an MLflow run (metrics + the Evidently HTML report), and
   a Prometheus text file (``<home>/metrics/monitor.prom``) for the node-exporter textfile
   collector, which the alert rules and dashboard read;
7. a confirmed critical: with `auto_rollback`, the lifecycle's rollback; an incident either way,
   and a notification.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from dataplatform.monitor import drift, store
from dataplatform.monitor.incidents import Incident, evidence_of, notify, record_incident
from dataplatform.monitor.performance import (
    api_checks,
    api_stats,
    f1_check,
    f1_score,
    parse_prometheus_text,
)
from dataplatform.monitor.policy import CheckResult, Decision, Window, decide, level, worst
from dataplatform.monitor.quality import COMMIT_FEATURES, check_frame

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from dataplatform.adapters.notify import Notifier
    from dataplatform.adapters.warehouse import Warehouse
    from dataplatform.config import Settings

log = logging.getLogger(__name__)

PRODUCTION = "production"
REFERENCE_SAMPLE = "reference/train_reference_sample.parquet"
PREDICTION_COLUMN = "predicted_proba"
KEY_COLUMN = "commit_key"
DEFAULT_MART = "analytics.commit_features"
DEFAULT_TARGET = "is_merge_commit"
MIN_LOGGED_PREDICTIONS = 100  # fewer served predictions than this: use the window's own scores
_NOT_FEATURES = frozenset({KEY_COLUMN, PREDICTION_COLUMN})


class MonitorError(RuntimeError):
    """The monitor could not run (no production version, no reference, empty window)."""


class MonitorThresholdsLike(Protocol):
    """The monitoring section of the threshold file (registry.thresholds.MonitorThresholds)."""

    @property
    def f1_drop_alert(self) -> float: ...
    @property
    def f1_drop_critical(self) -> float: ...
    @property
    def psi_alert(self) -> float: ...
    @property
    def kl_alert(self) -> float: ...
    @property
    def latency_p95_ms(self) -> float: ...
    @property
    def error_rate_alert(self) -> float: ...
    @property
    def error_rate_critical(self) -> float: ...


class RolledBack(Protocol):
    """What a rollback returns (registry.lifecycle.RollbackOutcome fits)."""

    @property
    def from_version(self) -> str: ...
    @property
    def to_version(self) -> str: ...


RollbackFn = Callable[[str, str], RolledBack]  # (model name, reason) -> outcome


@dataclass(frozen=True, slots=True)
class MonitorDeps:
    """What the monitor needs from other stages, passed in by the composition root."""

    thresholds: MonitorThresholdsLike
    f1_floor: float | None = None  # gates.min_f1 of the threshold file
    rollback: RollbackFn | None = None
    notifier: Notifier | None = None


@dataclass(frozen=True, slots=True)
class ProductionModel:
    """The version under watch."""

    name: str
    version: str
    semver: str | None
    run_id: str
    f1: float | None
    target: str
    mart: str


@dataclass
class MonitorOutcome:
    """Everything one run found and did."""

    run_id: str
    model: ProductionModel
    window_rows: int
    checks: list[CheckResult]
    decision: Decision
    started_at: datetime
    finished_at: datetime
    recent_f1: float | None = None
    prediction_source: str = ""
    report_path: Path | None = None
    mlflow_run_id: str | None = None
    prom_path: Path | None = None
    incident: Incident | None = None
    rollback_from: str | None = None
    rollback_to: str | None = None
    detected_at: datetime | None = None
    rolled_back_at: datetime | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def window_severity(self) -> str:
        """Worst severity of this window alone (before the k-of-n rule)."""
        return worst([c.severity for c in self.checks])

    @property
    def exit_code(self) -> int:
        """0 ok, 2 alert or critical (confirmed)."""
        return 0 if self.decision.verdict == "ok" else 2


# --- helpers ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _open_warehouse(settings: Settings) -> Iterator[Warehouse]:
    """The warehouse, closed on exit (the DuckDB adapter waits out another process's lock)."""
    from dataplatform.adapters.warehouse import open_warehouse

    warehouse = open_warehouse(settings)
    try:
        yield warehouse
    finally:
        warehouse.close()


def production_model(client: MlflowClient, name: str) -> ProductionModel:
    """The version holding `production`, with its run's F1, target and mart."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, PRODUCTION)
    except MlflowException:
        raise MonitorError(
            f"no version of {name!r} holds the 'production' alias: nothing to monitor"
        ) from None
    if not mv.run_id:
        raise MonitorError(f"{name} version {mv.version} has no training run")
    run = client.get_run(mv.run_id)
    f1 = run.data.metrics.get("f1_score")
    tags = {**run.data.tags, **(mv.tags or {})}
    return ProductionModel(
        name=name,
        version=str(mv.version),
        semver=(mv.tags or {}).get("semver"),
        run_id=mv.run_id,
        f1=None if f1 is None or math.isnan(f1) else float(f1),
        target=run.data.params.get("target", DEFAULT_TARGET),
        # Watch what production scores (all ingested commits), not what it was trained on.
        mart=tags.get("scoring_mart") or tags.get("training_mart", DEFAULT_MART),
    )


def load_reference(run_id: str) -> pd.DataFrame:
    """The training reference sample logged with the run."""
    import mlflow.artifacts

    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_SAMPLE)
    except Exception as exc:
        raise MonitorError(
            f"run {run_id} has no drift reference {REFERENCE_SAMPLE} ({type(exc).__name__})"
        ) from None
    return pd.read_parquet(local)


def feature_columns(reference: pd.DataFrame, target: str) -> list[str]:
    """Model inputs in the reference sample (all but key, label and prediction)."""
    return [c for c in reference.columns if c not in _NOT_FEATURES and c != target]


def read_window(
    warehouse: Warehouse,
    mart: str,
    columns: list[str],
    target: str,
    *,
    rows: int,
    days: int | None,
    now: datetime,
) -> pd.DataFrame:
    """The latest `rows` commits of `mart` (by committed_at), within `days` when given."""
    available = set(warehouse.query_df(f"SELECT * FROM {mart} LIMIT 0").columns)
    with_target = [target] if target in available else []  # labels may not exist there
    wanted = list(dict.fromkeys([KEY_COLUMN, "committed_at", *with_target, *columns]))
    where, params = "", []
    if days is not None:
        where, params = "WHERE committed_at >= ?", [now - timedelta(days=days)]
    frame = warehouse.query_df(
        f"SELECT {', '.join(wanted)} FROM {mart} {where} ORDER BY committed_at DESC LIMIT ?",
        [*params, rows],
    )
    return frame.iloc[::-1].reset_index(drop=True)


def _stored_predictions(
    warehouse: Warehouse, model: ProductionModel, keys: pd.Series
) -> pd.DataFrame | None:
    try:
        stored = warehouse.query_df(
            "SELECT commit_key, predicted_class, probability FROM analytics.commit_predictions "
            "WHERE model_name = ? AND model_version = ?",
            [model.name, int(model.version)],
        )
    except Exception:  # no batch scoring yet: the table does not exist
        return None
    stored = stored[stored[KEY_COLUMN].isin(set(keys))]
    if len(stored) < len(keys) or stored["probability"].isna().any():
        return None
    return stored


def score_window(
    warehouse: Warehouse, model: ProductionModel, window: pd.DataFrame, columns: list[str]
) -> tuple[np.ndarray, np.ndarray, str]:
    """(predicted class, probability, source) of the production version on `window`."""
    stored = _stored_predictions(warehouse, model, window[KEY_COLUMN])
    if stored is not None:
        merged = window[[KEY_COLUMN]].merge(stored, on=KEY_COLUMN, how="left")
        return (
            merged["predicted_class"].to_numpy(dtype="int64"),
            merged["probability"].to_numpy(dtype="float64"),
            "analytics.commit_predictions",
        )
    import mlflow.sklearn

    estimator = mlflow.sklearn.load_model(f"models:/{model.name}/{model.version}")
    x = window[columns]
    proba = np.asarray(estimator.predict_proba(x))[:, 1]
    classes = np.asarray(estimator.predict(x), dtype="int64")
    return classes, proba, f"scored here with {model.name} version {model.version}"


def logged_probabilities(warehouse: Warehouse, model: ProductionModel, limit: int) -> np.ndarray:
    """Latest served probabilities of this version from monitoring.prediction_log."""
    try:
        frame = warehouse.query_df(
            "SELECT probability FROM monitoring.prediction_log WHERE model_name = ? "
            "AND model_version = ? AND role = 'served' ORDER BY predicted_at DESC LIMIT ?",
            [model.name, model.version, limit],
        )
    except Exception:  # the API never logged anything: no table
        return np.empty(0)
    return frame["probability"].to_numpy(dtype="float64")


def fetch_metrics(api_url: str, *, timeout_s: float = 5.0) -> str:
    """The API's /metrics page (text exposition format)."""
    url = api_url.rstrip("/") + "/metrics"
    if not url.startswith(("http://", "https://")):
        raise MonitorError(f"--api-url must be http(s): {api_url!r}")
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - checked
        return str(response.read().decode("utf-8"))


def prometheus_text(outcome: MonitorOutcome, psi: dict[str, float], kl: float | None) -> str:
    """Gauges for the node-exporter textfile collector (names used by the alert rules)."""
    m = outcome.model
    base = f'model="{m.name}",version="{m.version}"'
    lines = [
        "# HELP dataplatform_feature_psi Population stability index of a feature vs training.",
        "# TYPE dataplatform_feature_psi gauge",
        *(f'dataplatform_feature_psi{{{base},feature="{f}"}} {v:.6g}' for f, v in psi.items()),
        "# HELP dataplatform_prediction_kl KL divergence of predictions vs training.",
        "# TYPE dataplatform_prediction_kl gauge",
    ]
    if kl is not None:
        lines.append(f"dataplatform_prediction_kl{{{base}}} {kl:.6g}")
    if outcome.recent_f1 is not None:
        lines += [
            "# HELP dataplatform_model_recent_f1 F1 of production on recent labelled commits.",
            "# TYPE dataplatform_model_recent_f1 gauge",
            f"dataplatform_model_recent_f1{{{base}}} {outcome.recent_f1:.6g}",
        ]
    verdict = {"ok": 0, "alert": 1, "critical": 2}[outcome.decision.verdict]
    lines += [
        "# HELP dataplatform_monitor_verdict 0 ok, 1 alert, 2 critical (k-of-n confirmed).",
        "# TYPE dataplatform_monitor_verdict gauge",
        f"dataplatform_monitor_verdict{{{base}}} {verdict}",
        "# HELP dataplatform_monitor_last_run_timestamp_seconds End of the last monitor run.",
        "# TYPE dataplatform_monitor_last_run_timestamp_seconds gauge",
        f"dataplatform_monitor_last_run_timestamp_seconds{{{base}}} "
        f"{outcome.finished_at.timestamp():.3f}",
    ]
    return "\n".join(lines) + "\n"


def _log_mlflow(
    settings: Settings,
    outcome: MonitorOutcome,
    psi: dict[str, float],
    kl: float | None,
) -> str:
    import mlflow

    from dataplatform.adapters.registry import configure_mlflow

    client = configure_mlflow(settings)
    name = f"{settings.mlflow_experiment}-monitoring"
    experiment = client.get_experiment_by_name(name)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(name, artifact_location=f"{settings.artifact_uri}/monitoring")
    )
    m = outcome.model
    metrics: dict[str, float] = {f"psi.{f}": v for f, v in psi.items()}
    if kl is not None:
        metrics["prediction_kl"] = kl
    for check in outcome.checks:
        if check.kind in ("performance", "api") and check.value is not None:
            metrics[check.name] = check.value
    if outcome.recent_f1 is not None:
        metrics["recent_f1"] = outcome.recent_f1
    metrics["verdict_level"] = {"ok": 0, "alert": 1, "critical": 2}[outcome.decision.verdict]
    metrics["window_rows"] = outcome.window_rows
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"monitor-{m.name}-v{m.version}-{outcome.finished_at:%Y%m%dT%H%M%S}",
        tags={
            "run_role": "monitor",
            "model_name": m.name,
            "model_version": m.version,
            "monitor_run_id": outcome.run_id,
            "verdict": outcome.decision.verdict,
        },
    ) as run:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(v)})
        mlflow.log_dict(
            {"checks": [c.line() for c in outcome.checks], "reasons": outcome.decision.reasons},
            "monitor/checks.json",
        )
        if outcome.report_path is not None:
            mlflow.log_artifact(str(outcome.report_path), artifact_path="monitor")
        return str(run.info.run_id)


# --- the run ---------------------------------------------------------------------------------
def run_monitor(
    settings: Settings,
    model_name: str,
    deps: MonitorDeps,
    *,
    auto_rollback: bool = False,
    api_url: str | None = None,
    metrics_text: str | None = None,
    html_report: bool = True,
    log_to_mlflow: bool = True,
    now: datetime | None = None,
) -> MonitorOutcome:
    """Monitor the production version of `model_name` once (see the module docstring)."""
    from dataplatform.adapters.registry import configure_mlflow

    started = now or datetime.now(UTC)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    limits = deps.thresholds
    client = configure_mlflow(settings)
    model = production_model(client, model_name)
    reference = load_reference(model.run_id)
    columns = feature_columns(reference, model.target)
    timings["registry"] = time.perf_counter() - t0

    checks: list[CheckResult] = []
    t0 = time.perf_counter()
    with _open_warehouse(settings) as warehouse:
        store.ensure_tables(warehouse)
        window = read_window(
            warehouse, model.mart, columns, model.target,
            rows=settings.monitor_window_rows, days=settings.monitor_window_days, now=started,
        )  # fmt: skip
        if window.empty:
            raise MonitorError(f"{model.mart} has no commits in the monitoring window")
        if model.mart == DEFAULT_MART:
            mart = warehouse.query_df(
                f"SELECT {', '.join(COMMIT_FEATURES.columns)} FROM {DEFAULT_MART}"
            )
            checks += check_frame(mart, COMMIT_FEATURES).checks()
        classes, proba, source = score_window(warehouse, model, window, columns)
        served = logged_probabilities(warehouse, model, settings.monitor_window_rows)
        history = store.recent_windows(
            warehouse, model.name, model.version, settings.monitor_history_windows - 1
        )
    timings["window"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(reference[c])]
    texts = [c for c in columns if c not in numeric]
    # Text inputs (the corrective model's message) drift-checked by their length in characters.
    ref_view = {c: reference[c] for c in numeric} | {
        f"{c}_length": reference[c].astype(str).str.len() for c in texts
    }
    cur_view = {c: window[c] for c in numeric} | {
        f"{c}_length": window[c].astype(str).str.len() for c in texts
    }
    psi = drift.feature_psi(ref_view, cur_view, list(ref_view))
    checks += [
        CheckResult(
            f"psi:{feature}", "drift", level(value, limits.psi_alert), value, limits.psi_alert,
            f"{feature}: {len(window)} recent commits vs {len(reference)} training rows",
        )
        for feature, value in psi.items()
    ]  # fmt: skip
    kl: float | None = None
    if PREDICTION_COLUMN in reference.columns:
        use_log = served.size >= MIN_LOGGED_PREDICTIONS
        current_proba = served if use_log else proba
        what = "served predictions (prediction log)" if use_log else f"predictions ({source})"
        kl = drift.kl_divergence(reference[PREDICTION_COLUMN].to_numpy(), current_proba)
        checks.append(
            CheckResult(
                "prediction_kl", "drift", level(kl, limits.kl_alert), kl, limits.kl_alert,
                f"{current_proba.size} {what} vs {len(reference)} training predictions",
            )
        )  # fmt: skip
    recent_f1: float | None = None
    if model.target in window.columns:
        recent_f1 = f1_score(window[model.target].astype(bool).to_numpy(), classes)
        checks.append(
            f1_check(
                recent_f1,
                model_f1=model.f1,
                floor=deps.f1_floor,
                alert_drop=limits.f1_drop_alert,
                critical_drop=limits.f1_drop_critical,
                rows=len(window),
            )
        )
    else:
        checks.append(
            CheckResult(
                "f1_drop", "performance", "ok", None, limits.f1_drop_alert,
                f"{model.mart} holds no {model.target} labels: performance not measurable "
                "on recent commits (evaluate on labelled data instead)",
            )
        )  # fmt: skip
    if api_url is not None and metrics_text is None:
        metrics_text = fetch_metrics(api_url)
    if metrics_text is not None:
        checks += api_checks(
            api_stats(parse_prometheus_text(metrics_text)),
            error_alert=limits.error_rate_alert,
            error_critical=limits.error_rate_critical,
            latency_p95_ms=limits.latency_p95_ms,
        )
    timings["checks"] = time.perf_counter() - t0

    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    decision = decide(
        [*history, Window(tuple(checks), label=run_id)],
        k=settings.monitor_confirm_windows,
        n=settings.monitor_history_windows,
    )
    detected_at = datetime.now(UTC) if decision.rollback else None
    outcome = MonitorOutcome(
        run_id=run_id,
        model=model,
        window_rows=len(window),
        checks=checks,
        decision=decision,
        started_at=started,
        finished_at=started,
        recent_f1=recent_f1,
        prediction_source=source,
        detected_at=detected_at,
        timings=timings,
    )

    # A confirmed critical acts first: the report and bookkeeping can wait, production cannot.
    if decision.rollback:
        _act(settings, deps, outcome, auto_rollback=auto_rollback)

    t0 = time.perf_counter()
    if html_report:
        path = settings.reports_dir / f"drift-{model.name}-v{model.version}-{run_id}.html"
        # The same views as the PSI checks: numeric inputs, text inputs by their length.
        reference_frame = pd.DataFrame(ref_view).assign(
            **{PREDICTION_COLUMN: reference.get(PREDICTION_COLUMN)}
        )
        current = pd.DataFrame(cur_view).assign(**{PREDICTION_COLUMN: proba})
        try:
            from dataplatform.monitor.report import write_drift_report

            outcome.report_path = write_drift_report(
                reference_frame, current, list(ref_view), path,
                psi_threshold=limits.psi_alert, kl_threshold=limits.kl_alert,
                prediction_column=PREDICTION_COLUMN if kl is not None else None,
            )  # fmt: skip
        except Exception as exc:  # the report is for people; never lose the run over it
            log.warning("drift report failed: %s: %s", type(exc).__name__, exc)
    timings["report"] = time.perf_counter() - t0
    outcome.finished_at = datetime.now(UTC)
    if log_to_mlflow:
        try:
            outcome.mlflow_run_id = _log_mlflow(settings, outcome, psi, kl)
        except Exception as exc:
            log.warning("logging the monitor run to MLflow failed: %s", exc)
    prom = settings.home / "metrics" / "monitor.prom"
    prom.parent.mkdir(parents=True, exist_ok=True)
    tmp = prom.with_suffix(".prom.tmp")  # atomic replace: the collector never reads half a file
    tmp.write_text(prometheus_text(outcome, psi, kl), encoding="utf-8")
    tmp.replace(prom)
    outcome.prom_path = prom
    with _open_warehouse(settings) as warehouse:
        store.ensure_tables(warehouse)
        store.write_run(
            warehouse,
            run_id=run_id,
            model_name=model.name,
            model_version=model.version,
            model_semver=model.semver,
            started_at=started,
            finished_at=outcome.finished_at,
            window_rows=len(window),
            window_severity=outcome.window_severity,
            decision=decision,
            checks=checks,
            mlflow_run_id=outcome.mlflow_run_id,
            report_path=str(outcome.report_path) if outcome.report_path else None,
        )
        if outcome.incident is not None:
            record_incident(warehouse, outcome.incident)
    return outcome


def _act(
    settings: Settings, deps: MonitorDeps, outcome: MonitorOutcome, *, auto_rollback: bool
) -> None:
    """Critical confirmed: roll back (when allowed), build the incident, notify."""
    from dataplatform.adapters.notify import notifier_from_settings

    m, decision = outcome.model, outcome.decision
    critical = [name for name, sev in decision.confirmed.items() if sev == "critical"]
    summary = f"critical: {', '.join(critical)} ({decision.k} of the last {decision.n} windows)"
    detected_at = outcome.detected_at or datetime.now(UTC)
    action: Any = "alert_only"
    status: Any = "not_attempted"
    error = None
    if auto_rollback and deps.rollback is not None:
        action = "rollback"
        reason = f"monitor {outcome.run_id}: {summary}"
        try:
            result = deps.rollback(m.name, reason)
            outcome.rollback_from, outcome.rollback_to = result.from_version, result.to_version
            outcome.rolled_back_at = datetime.now(UTC)
            status = "done"
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("automatic rollback of %s failed: %s", m.name, error)
    elif auto_rollback:
        error = "no rollback function was wired"
    incident = Incident(
        incident_id=f"inc-{outcome.run_id}",
        model_name=m.name,
        model_version=m.version,
        detected_at=detected_at,
        severity="critical",
        summary=summary,
        evidence=evidence_of(decision, outcome.checks),
        action=action,
        action_status=status,
        rolled_back_to=outcome.rollback_to,
        resolved_at=outcome.rolled_back_at,
        monitor_run_id=outcome.run_id,
        error=error,
    )
    outcome.incident = notify(deps.notifier or notifier_from_settings(settings), incident)
