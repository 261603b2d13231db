"""Database password rotation against a real PostgreSQL: file target, Kubernetes target (through
a FAKE Kubernetes API server — a local http.server implementing GET/PATCH of one Secret; no real
cluster is involved), and a rotation in the middle of running pipeline loads.
"""

from __future__ import annotations

import base64
import json
import logging
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr
from security_world import PASSWORD, PII_KEY, Cluster, make_batch, read_commits
from typer.testing import CliRunner

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.adapters.warehouse import PostgresWarehouse
from dataplatform.config import Settings
from dataplatform.contracts import BatchManifest
from dataplatform.security.cli import secrets_app
from dataplatform.security.rotation import (
    FileSecretTarget,
    KubernetesSecretTarget,
    RotationError,
    rotate_database_password,
)
from dataplatform.security.secrets import RotationLedger, load_rotation_config

pytestmark = pytest.mark.postgres

KEY = "DATAPLATFORM_POSTGRES_PASSWORD"


def admin_settings(cluster: Cluster, home: Path, login: str) -> Settings:
    """Settings of `login` (current password PASSWORD) with the superuser as rotation admin."""
    admin = conninfo_to_dict(cluster.admin_dsn)
    return cluster.settings(
        home,
        login,
        postgres_admin_user=admin["user"],
        postgres_admin_password=SecretStr(str(admin["password"])),
        rotation_state_path=home / "rotation-state.json",
    )


def can_login(cluster: Cluster, user: str, password: str) -> bool:
    try:
        with psycopg.connect(cluster.conninfo(user, password)) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def spec_of(settings: Settings) -> Any:
    return load_rotation_config(settings.rotation_policy_path).policy_of("postgres_password")[0]


def test_rotate_to_mounted_file(
    migrated: Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    login = migrated.login("pipeline_service")
    settings = admin_settings(migrated, tmp_path, login)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / KEY).write_text(PASSWORD)
    caplog.set_level(logging.DEBUG)

    result = rotate_database_password(
        settings,
        spec_of(settings),
        FileSecretTarget(secrets_dir, KEY),
        ledger=RotationLedger.from_settings(settings),
    )

    new = (secrets_dir / KEY).read_text()
    assert new != PASSWORD
    assert len(new) >= 40
    assert stat.S_IMODE((secrets_dir / KEY).stat().st_mode) == 0o600
    assert can_login(migrated, login, new)
    assert not can_login(migrated, login, PASSWORD)
    assert result.old_password_refused is True
    assert result.role == login
    assert set(RotationLedger.from_settings(settings).read()) == {"postgres_password"}
    assert [p.name for p in secrets_dir.iterdir()] == [KEY]  # no temp file left behind
    with psycopg.connect(migrated.admin) as conn:
        event = conn.execute(
            "SELECT action, subject, details::text FROM audit.events WHERE event_id = %s",
            [result.audit_event_id],
        ).fetchone()
        verifier = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [login]
        ).fetchone()
    assert event is not None
    assert event[:2] == ("secret.rotate", "postgres_password")
    assert new not in event[2]
    assert verifier is not None
    assert verifier[0].startswith("SCRAM-SHA-256$")
    assert new not in caplog.text
    assert new not in repr(result)


def test_cli_rotate_and_status(migrated: Cluster, tmp_path: Path) -> None:
    login = migrated.login("pipeline_service")
    settings = admin_settings(migrated, tmp_path, login)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / KEY).write_text(PASSWORD)
    runner = CliRunner()

    before = runner.invoke(secrets_app, ["status", "--check"], obj=settings)
    assert before.exit_code == 2, before.output  # nothing ever rotated: unknown age
    rotated = runner.invoke(
        secrets_app,
        ["rotate", "postgres_password", "--target", "file", "--secrets-dir", str(secrets_dir)],
        obj=settings,
    )
    assert rotated.exit_code == 0, rotated.output
    new = (secrets_dir / KEY).read_text()
    assert new not in rotated.output
    assert can_login(migrated, login, new)
    status = runner.invoke(secrets_app, ["status"], obj=settings)
    assert status.exit_code == 0, status.output
    line = next(ln for ln in status.output.splitlines() if "postgres_password" in ln)
    assert "ok" in line
    assert datetime.now(UTC).strftime("%Y-%m-%d") in line


# --- Kubernetes target through a FAKE API server ---------------------------------------------
class FakeKubernetes:
    """Just enough of the Kubernetes API for one Secret: GET and merge-PATCH, bearer token."""

    def __init__(self, namespace: str, name: str, data: dict[str, str], token: str) -> None:
        self.path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
        self.secret: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "annotations": {}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        self.token = token
        self.requests: list[tuple[str, str | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._reply(401, {"kind": "Status", "code": 401})
                    return False
                if self.path != fake.path:
                    self._reply(404, {"kind": "Status", "code": 404})
                    return False
                return True

            def do_GET(self) -> None:
                fake.requests.append(("GET", None))
                if self._authorised():
                    self._reply(200, fake.secret)

            def do_PATCH(self) -> None:
                fake.requests.append(("PATCH", self.headers.get("Content-Type")))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self._authorised():
                    return
                fake.secret["data"].update(body.get("data", {}))
                annotations = body.get("metadata", {}).get("annotations", {})
                fake.secret["metadata"]["annotations"].update(annotations)
                self._reply(200, fake.secret)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def value(self, key: str) -> str:
        return base64.b64decode(self.secret["data"][key]).decode()


@pytest.fixture
def fake_kubernetes() -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes(
        "platform-prod", "data-platform-secrets", {KEY: PASSWORD, "OTHER": "kept"}, "sa-token"
    )
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_rotate_into_kubernetes_secret_via_fake_api(
    migrated: Cluster, tmp_path: Path, fake_kubernetes: FakeKubernetes
) -> None:
    login = migrated.login("pipeline_service")
    settings = admin_settings(migrated, tmp_path, login)
    target = KubernetesSecretTarget(
        fake_kubernetes.url, "platform-prod", "data-platform-secrets", KEY, token="sa-token"
    )
    result = rotate_database_password(
        settings, spec_of(settings), target, ledger=RotationLedger.from_settings(settings)
    )
    new = fake_kubernetes.value(KEY)
    assert new != PASSWORD
    assert fake_kubernetes.value("OTHER") == "kept"  # a merge patch: other keys untouched
    annotations = fake_kubernetes.secret["metadata"]["annotations"]
    assert annotations["dataplatform.io/rotated-at"] == result.rotated_at.isoformat()
    assert ("PATCH", "application/merge-patch+json") in fake_kubernetes.requests
    assert can_login(migrated, login, new)
    assert not can_login(migrated, login, PASSWORD)


def test_failed_target_write_leaves_the_password_unchanged(
    migrated: Cluster, tmp_path: Path, fake_kubernetes: FakeKubernetes
) -> None:
    login = migrated.login("pipeline_service")
    settings = admin_settings(migrated, tmp_path, login)
    fake_kubernetes.token = "rotated-elsewhere"  # GET and PATCH now answer 401
    target = KubernetesSecretTarget(
        fake_kubernetes.url, "platform-prod", "data-platform-secrets", KEY, token="sa-token"
    )
    with pytest.raises(RotationError, match="HTTP 401"):
        rotate_database_password(
            settings, spec_of(settings), target, ledger=RotationLedger.from_settings(settings)
        )
    assert can_login(migrated, login, PASSWORD)
    assert RotationLedger.from_settings(settings).read() == {}
    with psycopg.connect(migrated.admin) as conn:
        assert conn.execute(
            "SELECT count(*) FROM audit.events WHERE action = 'secret.rotate'"
        ).fetchone() == (0,)


# --- rotation while pipeline loads run -------------------------------------------------------
class PausingWarehouse(PostgresWarehouse):
    """Pauses inside the load transaction (after the commits insert) until told to go on."""

    paused = threading.Event()
    resume = threading.Event()

    def _after_commits_insert(self, manifest: BatchManifest) -> None:
        type(self).paused.set()
        assert type(self).resume.wait(60)


def test_rotation_during_loads_fails_no_load(migrated: Cluster, tmp_path: Path) -> None:
    login = migrated.login("pipeline_service")
    settings = admin_settings(migrated, tmp_path, login)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    secret_file = secrets_dir / KEY
    secret_file.write_text(PASSWORD)
    store = ObjectStore.local(tmp_path / "objects")
    commits = read_commits("encode/httpx", 400)
    batches = [make_batch(store, commits[i : i + 100]) for i in range(0, 400, 100)]

    def conninfo_from_secret_file() -> str:
        # How a pipeline opens a new connection: the password is read from the mounted file.
        return migrated.conninfo(login, secret_file.read_text())

    errors: list[BaseException] = []
    results: list[int] = []

    def pipeline() -> None:
        try:
            existing = PostgresWarehouse(conninfo_from_secret_file())
            pausing = PausingWarehouse(conninfo_from_secret_file())
            results.append(existing.load_batch(*batches[0], PII_KEY).rows_inserted)
            # Load 2 is mid-transaction while the password rotates.
            results.append(pausing.load_batch(*batches[1], PII_KEY).rows_inserted)
            # Load 3: a connection opened before the rotation, used after it.
            results.append(existing.load_batch(*batches[2], PII_KEY).rows_inserted)
            # Load 4: a new connection, with the password read from the secret file again.
            with PostgresWarehouse(conninfo_from_secret_file()) as fresh:
                results.append(fresh.load_batch(*batches[3], PII_KEY).rows_inserted)
            existing.close()
            pausing.close()
        except BaseException as exc:
            errors.append(exc)
            PausingWarehouse.paused.set()

    worker = threading.Thread(target=pipeline)
    worker.start()
    try:
        assert PausingWarehouse.paused.wait(60)
        assert not errors
        result = rotate_database_password(
            settings,
            spec_of(settings),
            FileSecretTarget(secrets_dir, KEY),
            ledger=RotationLedger.from_settings(settings),
        )
    finally:
        PausingWarehouse.resume.set()
        worker.join(120)
    assert errors == []
    assert results == [100, 100, 100, 100]
    assert result.old_password_refused is True
    with psycopg.connect(migrated.admin) as conn:
        assert conn.execute("SELECT count(*) FROM raw.commits").fetchone() == (400,)
        assert conn.execute("SELECT count(*) FROM raw.ingest_batches").fetchone() == (4,)
