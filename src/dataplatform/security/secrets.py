"""Secrets rotation policy (design 3.1), rotation records and the status of every secret.

The policy and the secret inventory are configuration (``config/rotation-policy.yaml``,
`Settings.rotation_policy_path`). When each secret was last rotated is kept in a small JSON
ledger (`Settings.rotation_state_path`, default ``<home>/secrets/rotation-state.json``; point it
at persistent storage in a cluster) and, for rotations done by the platform, in
``audit.events``. `secret_status` is pure: age, due date and notice state from a policy, the
last rotation and "now".
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from dataplatform.config import Settings


class RotationConfigError(ValueError):
    """The rotation policy file is malformed."""


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """How often one type of secret is rotated and when to warn before it is due."""

    secret_type: str
    rotate_every: timedelta
    notify_before: timedelta | None  # None: no notification
    automation: str


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """One secret of the platform and where its value lives."""

    name: str
    secret_type: str
    key: str  # file name in the secrets folder / key in the Kubernetes Secret
    kubernetes_secret: str | None
    database_role: str | None  # LOGIN role of a database password (None: Settings.postgres_user)


@dataclass(frozen=True, slots=True)
class RotationConfig:
    """The whole policy file."""

    policies: dict[str, RotationPolicy]
    secrets: dict[str, SecretSpec]

    def policy_of(self, name: str) -> tuple[SecretSpec, RotationPolicy]:
        """Spec and policy of the entry called `name`; KeyError lists the known names."""
        if name not in self.secrets:
            raise KeyError(f"unknown secret {name!r}; known: {', '.join(sorted(self.secrets))}")
        spec = self.secrets[name]
        return spec, self.policies[spec.secret_type]


def _days(value: Any, where: str, *, optional: bool = False) -> timedelta | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise RotationConfigError(f"{where} must be a positive whole number of days")
    return timedelta(days=value)


def parse_rotation_config(data: Any) -> RotationConfig:
    """`RotationConfig` from the parsed YAML document; raises `RotationConfigError`."""
    if not isinstance(data, dict) or not isinstance(data.get("policies"), dict):
        raise RotationConfigError("rotation policy needs a 'policies' mapping")
    policies: dict[str, RotationPolicy] = {}
    for secret_type, body in data["policies"].items():
        if not isinstance(body, dict):
            raise RotationConfigError(f"policies.{secret_type} must be a mapping")
        every = _days(body.get("rotate_every_days"), f"policies.{secret_type}.rotate_every_days")
        notify = _days(
            body.get("notify_days_before"),
            f"policies.{secret_type}.notify_days_before",
            optional=True,
        )
        assert every is not None  # not optional
        if notify is not None and notify >= every:
            raise RotationConfigError(
                f"policies.{secret_type}: notice window must be shorter than the rotation period"
            )
        policies[secret_type] = RotationPolicy(
            secret_type, every, notify, str(body.get("automation", ""))
        )
    specs: dict[str, SecretSpec] = {}
    for name, body in (data.get("secrets") or {}).items():
        if not isinstance(body, dict) or body.get("type") not in policies:
            raise RotationConfigError(
                f"secrets.{name}.type must be one of {', '.join(sorted(policies))}"
            )
        if not body.get("key"):
            raise RotationConfigError(f"secrets.{name}.key is required")
        specs[name] = SecretSpec(
            name=name,
            secret_type=body["type"],
            key=str(body["key"]),
            kubernetes_secret=body.get("kubernetes_secret"),
            database_role=body.get("database_role"),
        )
    return RotationConfig(policies, specs)


def load_rotation_config(path: Path) -> RotationConfig:
    """Read and check the rotation policy file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RotationConfigError(f"cannot read rotation policy {path}: {exc}") from exc
    return parse_rotation_config(data)


class NoticeState(StrEnum):
    """Where a secret stands against its policy."""

    OK = "ok"
    NOTICE = "notice"  # inside the notice window before the due date
    OVERDUE = "overdue"
    UNKNOWN = "unknown"  # no rotation recorded: age unknown, treat as due


@dataclass(frozen=True, slots=True)
class SecretStatus:
    """Age, due date and notice state of one secret."""

    name: str
    secret_type: str
    last_rotated_at: datetime | None
    age_days: int | None  # whole days since the last rotation
    due_at: datetime | None
    notify_from: datetime | None  # start of the notice window (None: no notification)
    state: NoticeState

    @property
    def needs_action(self) -> bool:
        """Overdue, or never rotated."""
        return self.state in (NoticeState.OVERDUE, NoticeState.UNKNOWN)


def secret_status(
    spec: SecretSpec, policy: RotationPolicy, last_rotated_at: datetime | None, now: datetime
) -> SecretStatus:
    """Status of `spec` at `now` (both instants timezone-aware); pure."""
    if last_rotated_at is None:
        unknown = NoticeState.UNKNOWN
        return SecretStatus(spec.name, spec.secret_type, None, None, None, None, unknown)
    due_at = last_rotated_at + policy.rotate_every
    notify_from = due_at - policy.notify_before if policy.notify_before else None
    if now >= due_at:
        state = NoticeState.OVERDUE
    elif notify_from is not None and now >= notify_from:
        state = NoticeState.NOTICE
    else:
        state = NoticeState.OK
    age_days = (now - last_rotated_at) // timedelta(days=1)
    return SecretStatus(
        spec.name, spec.secret_type, last_rotated_at, age_days, due_at, notify_from, state
    )


def generate_password(nbytes: int = 32) -> str:
    """New random credential: `nbytes` bytes of the OS CSPRNG, URL-safe base64 (43 chars)."""
    return secrets.token_urlsafe(nbytes)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace `path` with `text` atomically (temp file in the same folder, fsync, rename).

    Readers see the old or the new content, never a partial file; the file is created with
    `mode` before any byte of the secret is written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


class RotationLedger:
    """When each secret was last rotated: a JSON file ``{name: ISO instant}``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def from_settings(cls, settings: Settings) -> RotationLedger:
        """The ledger at `Settings.rotation_state_path` (default under `home`)."""
        default = settings.home / "secrets" / "rotation-state.json"
        return cls(settings.rotation_state_path or default)

    def read(self) -> dict[str, datetime]:
        """Recorded rotations ({} when the file does not exist yet)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RotationConfigError(f"rotation ledger {self.path} is unreadable: {exc}") from exc
        return {str(k): datetime.fromisoformat(v) for k, v in raw.items()}

    def record(self, name: str, rotated_at: datetime) -> None:
        """Record that `name` was rotated at `rotated_at` (timezone-aware)."""
        if rotated_at.tzinfo is None:
            raise ValueError("rotated_at must be timezone-aware")
        entries = self.read()
        entries[name] = rotated_at.astimezone(UTC)
        text = json.dumps({k: v.isoformat() for k, v in sorted(entries.items())}, indent=2)
        atomic_write_text(self.path, text + "\n", mode=0o600)


def statuses(config: RotationConfig, ledger: RotationLedger, now: datetime) -> list[SecretStatus]:
    """Status of every secret of `config`, by name."""
    recorded = ledger.read()
    return [
        secret_status(spec, config.policies[spec.secret_type], recorded.get(name), now)
        for name, spec in sorted(config.secrets.items())
    ]
