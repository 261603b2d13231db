"""Rotate a database password: new random password, ALTER ROLE, new secret to its target, verify.

Order (`rotate_database_password`):

1. read the current secret from the target (to verify it is refused afterwards, and to restore
   the target if the commit fails);
2. in ONE transaction on the bootstrap admin connection: ``ALTER ROLE ... PASSWORD`` with a
   SCRAM verifier computed client-side (the plaintext never reaches the server or its logs) and
   an ``audit.events`` row; the new secret is written to the target before the commit — if that
   write fails the transaction rolls back and nothing changed;
3. commit (if the commit fails, the old secret is written back);
4. log in with the new password (must work) and with the old one (must be refused);
5. record the rotation in the ledger.

Sessions already open keep working (PostgreSQL checks passwords only at login); new
connections read the secret from the target (mounted file / Kubernetes Secret).

Targets: `FileSecretTarget` (a mounted-secrets folder, atomic replace) and
`KubernetesSecretTarget` (GET/PATCH of a Secret through the Kubernetes API; credentials of the
pod's service account when in a cluster).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dataplatform.security.audit import AuditAction, insert_event
from dataplatform.security.roles import scram_verifier
from dataplatform.security.secrets import (
    RotationLedger,
    SecretSpec,
    atomic_write_text,
    generate_password,
)

if TYPE_CHECKING:
    import httpx

    from dataplatform.config import Settings

DATABASE_PASSWORD = "database_password"  # noqa: S105  # pragma: allowlist secret
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
ROTATED_AT_ANNOTATION = "dataplatform.io/rotated-at"


class RotationError(RuntimeError):
    """A rotation failed; the message says what state the secret is in (never its value)."""


class SecretTarget(Protocol):
    """Where the application reads a secret from."""

    @property
    def description(self) -> str:
        """Human-readable location (no value)."""
        ...

    def read(self) -> str | None:
        """Current value, or None when absent."""
        ...

    def write(self, value: str, rotated_at: datetime) -> None:
        """Replace the value (atomically for readers)."""
        ...


@dataclass(frozen=True, slots=True)
class FileSecretTarget:
    """One file in a mounted-secrets folder (``DATAPLATFORM_SECRETS_DIR``)."""

    folder: Path
    key: str

    @property
    def path(self) -> Path:
        return self.folder / self.key

    @property
    def description(self) -> str:
        return f"file {self.path}"

    def read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None

    def write(self, value: str, rotated_at: datetime) -> None:
        atomic_write_text(self.path, value, mode=0o600)


@dataclass(frozen=True, slots=True)
class KubernetesSecretTarget:
    """Key `key` of Secret `secret_name` in `namespace`, through the Kubernetes API."""

    api_url: str  # e.g. https://kubernetes.default.svc
    namespace: str
    secret_name: str
    key: str
    token: str
    ca_file: Path | None = None  # None: the system trust store
    timeout_s: float = 10.0

    @classmethod
    def in_cluster(cls, secret_name: str, key: str) -> KubernetesSecretTarget:
        """The target seen from a pod (service-account token, CA and namespace)."""
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise RotationError("not in a Kubernetes cluster (KUBERNETES_SERVICE_HOST unset)")
        return cls(
            api_url=f"https://{host}:{port}",
            namespace=(SERVICE_ACCOUNT_DIR / "namespace").read_text().strip(),
            secret_name=secret_name,
            key=key,
            token=(SERVICE_ACCOUNT_DIR / "token").read_text().strip(),
            ca_file=SERVICE_ACCOUNT_DIR / "ca.crt",
        )

    @property
    def url(self) -> str:
        return f"{self.api_url}/api/v1/namespaces/{self.namespace}/secrets/{self.secret_name}"

    @property
    def description(self) -> str:
        return f"kubernetes secret {self.namespace}/{self.secret_name} key {self.key}"

    def _client(self) -> httpx.Client:
        import httpx

        return httpx.Client(
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            verify=str(self.ca_file) if self.ca_file else True,
            timeout=self.timeout_s,
        )

    def read(self) -> str | None:
        with self._client() as client:
            response = client.get(self.url)
        if response.status_code == 404:
            return None
        _raise_for_status(response.status_code, "GET", self.description)
        data = response.json().get("data") or {}
        encoded = data.get(self.key)
        return base64.b64decode(encoded).decode("utf-8") if encoded is not None else None

    def write(self, value: str, rotated_at: datetime) -> None:
        patch = {
            "metadata": {"annotations": {ROTATED_AT_ANNOTATION: rotated_at.isoformat()}},
            "data": {self.key: base64.b64encode(value.encode("utf-8")).decode("ascii")},
        }
        with self._client() as client:
            response = client.patch(
                self.url,
                json=patch,
                headers={"Content-Type": "application/merge-patch+json"},
            )
        _raise_for_status(response.status_code, "PATCH", self.description)


def _raise_for_status(status: int, verb: str, what: str) -> None:
    if status >= 400:
        # The response body may echo the request (the secret): never include it.
        raise RotationError(f"Kubernetes API {verb} of {what} failed with HTTP {status}")


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What a rotation did (never the password)."""

    secret: str
    role: str
    rotated_at: datetime
    target: str
    old_password_refused: bool | None  # None: there was no old value to try
    audit_event_id: str


def _can_login(settings: Settings, role: str, password: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            settings.postgres_conninfo(user=role, password=password), connect_timeout=10
        ) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def rotate_database_password(
    settings: Settings,
    spec: SecretSpec,
    target: SecretTarget,
    *,
    ledger: RotationLedger,
    role: str | None = None,
    actor: str = "dataplatform secrets rotate",
    now: datetime | None = None,
) -> RotationResult:
    """Rotate the password of LOGIN role `role` (default: spec's role, else postgres_user)."""
    import psycopg
    from psycopg import sql

    if spec.secret_type != DATABASE_PASSWORD:
        raise RotationError(f"{spec.name} is a {spec.secret_type}; only database passwords rotate")
    login = role or spec.database_role or settings.postgres_user
    rotated_at = now or datetime.now(UTC)
    old = target.read()
    new = generate_password()
    admin_password = settings.postgres_admin_password or settings.postgres_password
    admin = psycopg.connect(
        settings.postgres_conninfo(
            user=settings.postgres_admin_user or settings.postgres_user,
            password=admin_password.get_secret_value(),
        )
    )
    try:
        admin.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(login), sql.Literal(scram_verifier(admin, login, new))
            )
        )
        event_id = insert_event(
            admin,
            AuditAction.ROTATION,
            subject=spec.name,
            actor=actor,
            details={"role": login, "target": target.description},
        )
        target.write(new, rotated_at)  # raises -> rollback below: nothing changed
        try:
            admin.commit()
        except psycopg.Error as exc:
            if old is not None:
                target.write(old, rotated_at)
            raise RotationError(
                f"commit of the new password for {login} failed; {target.description} restored"
            ) from exc
    except BaseException:
        admin.rollback()
        raise
    finally:
        admin.close()

    if not _can_login(settings, login, new):
        raise RotationError(
            f"{login} cannot log in with the new password written to {target.description}"
        )
    refused = None if old is None else not _can_login(settings, login, old)
    if refused is False:
        raise RotationError(f"{login} still logs in with the old password")
    ledger.record(spec.name, rotated_at)
    return RotationResult(spec.name, login, rotated_at, target.description, refused, event_id)
