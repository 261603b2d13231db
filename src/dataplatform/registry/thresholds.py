"""The one threshold file (`config/thresholds.yaml`): promotion gates and monitoring alerts.

`load_thresholds(path)` gives a validated `Thresholds`; `Thresholds.for_model(name)` gives the
defaults merged with that model's own section. Any problem — unreadable YAML, an unknown key, a
value out of range, an alert level above its critical level — raises `ThresholdsError` naming the
file and the dotted location of every bad key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_THRESHOLDS_PATH = Path(__file__).resolve().parents[3] / "config" / "thresholds.yaml"


class ThresholdsError(ValueError):
    """The threshold file is missing or invalid; the message names the file and the keys."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateThresholds(_Strict):
    """What a candidate must show before it may take the `staging` or `production` alias."""

    min_f1: float = Field(default=0.80, ge=0.0, le=1.0)
    f1_metric: str = Field(default="f1_score", min_length=1)
    baseline_metric: str = Field(default="baseline_f1_score", min_length=1)
    must_beat_baseline: bool = True
    max_f1_regression: float = Field(default=0.01, ge=0.0, le=1.0)
    data_checks_tag: str = Field(default="data_checks_passed", min_length=1)
    serving_columns: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _columns_unique(self) -> GateThresholds:
        cols = self.serving_columns
        if cols is not None:
            if not cols:
                raise ValueError("serving_columns must list at least one column or be null")
            dupes = sorted({c for c in cols if cols.count(c) > 1})
            if dupes:
                raise ValueError(f"serving_columns repeats {', '.join(dupes)}")
        return self


class MonitorThresholds(_Strict):
    """Levels at which monitoring alerts (and, when critical, rolls back)."""

    f1_drop_alert: float = Field(default=0.05, gt=0.0, le=1.0)
    f1_drop_critical: float = Field(default=0.10, gt=0.0, le=1.0)
    psi_alert: float = Field(default=0.2, gt=0.0)
    kl_alert: float = Field(default=0.1, gt=0.0)
    latency_p95_ms: float = Field(default=500.0, gt=0.0)
    error_rate_alert: float = Field(default=0.01, gt=0.0, le=1.0)
    error_rate_critical: float = Field(default=0.05, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _alert_below_critical(self) -> MonitorThresholds:
        if self.f1_drop_alert >= self.f1_drop_critical:
            raise ValueError(
                f"f1_drop_alert ({self.f1_drop_alert}) must be below "
                f"f1_drop_critical ({self.f1_drop_critical})"
            )
        if self.error_rate_alert >= self.error_rate_critical:
            raise ValueError(
                f"error_rate_alert ({self.error_rate_alert}) must be below "
                f"error_rate_critical ({self.error_rate_critical})"
            )
        return self


class ModelThresholds(_Strict):
    """Gate and monitoring thresholds of one model."""

    gates: GateThresholds = GateThresholds()
    monitoring: MonitorThresholds = MonitorThresholds()


class Thresholds(_Strict):
    """The whole file: `defaults` plus per-model overrides (already merged and validated)."""

    version: int = Field(default=1, ge=1, le=1)
    defaults: ModelThresholds = ModelThresholds()
    models: dict[str, ModelThresholds] = Field(default_factory=dict)

    def for_model(self, name: str) -> ModelThresholds:
        """The thresholds of `name`: its own section, or the defaults when it has none."""
        return self.models.get(name, self.defaults)


def parse_thresholds(data: Any, *, source: str = "<thresholds>") -> Thresholds:
    """Validate a parsed threshold document; each model section is merged over `defaults`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ThresholdsError(f"{source}: expected a mapping at the top level")
    defaults_raw = data.get("defaults") or {}
    models_raw = data.get("models") or {}
    if not isinstance(models_raw, dict):
        raise ThresholdsError(f"{source}: models: expected a mapping of model name to section")
    if not isinstance(defaults_raw, dict):
        raise ThresholdsError(f"{source}: defaults: expected a mapping")
    merged_models = {
        str(name): _deep_merge(defaults_raw, section or {}) for name, section in models_raw.items()
    }
    doc = {**data, "defaults": defaults_raw, "models": merged_models}
    try:
        return Thresholds.model_validate(doc)
    except ValidationError as exc:
        raise ThresholdsError(f"{source}: invalid thresholds: {_describe(exc)}") from None


def load_thresholds(path: Path | None = None) -> Thresholds:
    """Read and validate the threshold file (default: `config/thresholds.yaml` of the repo)."""
    path = path or DEFAULT_THRESHOLDS_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ThresholdsError(f"{path}: cannot read threshold file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ThresholdsError(f"{path}: not valid YAML: {exc}") from None
    return parse_thresholds(data, source=str(path))


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _deep_merge(base.get(key), value) if key in base else value
        return out
    return override


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
