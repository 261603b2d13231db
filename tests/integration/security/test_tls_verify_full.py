"""`sslmode=verify-full` against a real PostgreSQL 15 speaking TLS (design 3.2).

The module starts its own throwaway cluster (``PG_SSL_DIR=... scripts/pg.sh start``) with a
server certificate for ``localhost`` / ``127.0.0.1`` signed by a CA generated here, plus a second,
impostor CA with the same name. It shows that the platform's settings connect with
``verify-full`` and the right CA, that a wrong CA or a wrong host name is refused with an error
that names the TLS problem and never the password, and that the prod profile refuses every
weaker sslmode: ``require`` accepts the impostor's certificate, ``verify-ca`` a wrong host name.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.testing import CliRunner

from dataplatform.adapters.warehouse import PostgresWarehouse, open_warehouse
from dataplatform.config import Settings, SettingsError, get_settings

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[3]
PG_SCRIPT = REPO_ROOT / "scripts" / "pg.sh"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
CA_NAME = "dataplatform test CA"


# --- certificates -----------------------------------------------------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA (every CA made here has the same name: only the key tells them apart)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_server_cert(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for localhost and 127.0.0.1, signed by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


# --- the TLS cluster --------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsCluster:
    host: str
    port: int
    user: str
    password: str
    ca: Path  # signed the server certificate
    impostor_ca: Path  # same name, another key


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[TlsCluster]:
    """A throwaway PostgreSQL 15 with ssl=on and a certificate from a CA made here."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (set PG_BIN)")
    # Under /tmp with mode 755: the `postgres` OS user must reach the cluster folder as root.
    parent = Path(tempfile.mkdtemp(prefix="dataplatform-pgtls-"))
    parent.chmod(0o755)
    cluster_dir, ssl_dir = parent / "cluster", parent / "ssl"
    ssl_dir.mkdir(mode=0o700)
    ca, ca_key = make_ca()
    server, server_key = make_server_cert(ca, ca_key)
    impostor, _ = make_ca()
    (ssl_dir / "server.crt").write_bytes(_pem_cert(server))
    (ssl_dir / "server.key").write_bytes(_pem_key(server_key))
    (ssl_dir / "server.key").chmod(0o600)
    (parent / "ca.crt").write_bytes(_pem_cert(ca))
    (parent / "impostor-ca.crt").write_bytes(_pem_cert(impostor))
    started = subprocess.run(
        ["bash", str(PG_SCRIPT), "start", str(cluster_dir)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PG_SSL_DIR": str(ssl_dir)},
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"scripts/pg.sh start (TLS) failed:\n{started.stderr}", pytrace=False)
        fields = conninfo_to_dict(started.stdout.strip().splitlines()[-1])
        yield TlsCluster(
            host=str(fields["host"]),
            port=int(str(fields["port"])),
            user=str(fields["user"]),
            password=str(fields["password"]),
            ca=parent / "ca.crt",
            impostor_ca=parent / "impostor-ca.crt",
        )
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", str(cluster_dir)], check=False)
        shutil.rmtree(parent, ignore_errors=True)


def tls_settings(
    cluster: TlsCluster,
    home: Path,
    *,
    host: str = "localhost",
    sslmode: str = "verify-full",
    rootcert: Path | None = None,
    no_rootcert: bool = False,
    profile: str = "prod",
) -> Settings:
    return get_settings(
        profile=profile,
        home=home,
        warehouse_backend="postgres",
        postgres_host=host,
        postgres_port=cluster.port,
        postgres_db="postgres",
        postgres_user=cluster.user,
        postgres_password=cluster.password,
        postgres_sslmode=sslmode,
        postgres_sslrootcert=None if no_rootcert else (rootcert or cluster.ca),
        pii_hash_key=secrets.token_hex(16),
        admin_token=secrets.token_hex(16),
    )


def tls_state(warehouse: Any) -> tuple[bool, str]:
    row = warehouse.query_df(
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    ).to_dict("records")[0]
    return bool(row["ssl"]), str(row["version"])


def assert_no_password(cluster: TlsCluster, error: BaseException) -> None:
    texts = [str(error), repr(error), *(str(a) for a in error.args)]
    if error.__cause__ is not None:
        texts.append(str(error.__cause__))
    assert all(cluster.password not in text for text in texts)


# --- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_verify_full_with_the_right_ca_connects_over_tls(
    tls_cluster: TlsCluster, tmp_path: Path, host: str
) -> None:
    settings = tls_settings(tls_cluster, tmp_path, host=host)
    conninfo = settings.postgres_conninfo()
    assert "sslmode='verify-full'" in conninfo
    assert f"sslrootcert='{tls_cluster.ca}'" in conninfo
    with open_warehouse(settings) as warehouse:
        ssl, version = tls_state(warehouse)
    assert ssl is True
    assert version.startswith("TLSv1.")


def test_a_wrong_ca_is_refused_without_leaking_the_password(
    tls_cluster: TlsCluster, tmp_path: Path
) -> None:
    settings = tls_settings(tls_cluster, tmp_path, rootcert=tls_cluster.impostor_ca)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed") as caught:
        PostgresWarehouse(settings.postgres_conninfo())
    assert_no_password(tls_cluster, caught.value)


def test_a_wrong_host_name_is_refused_without_leaking_the_password(
    tls_cluster: TlsCluster, tmp_path: Path
) -> None:
    # The right server and CA, reached under a name the certificate does not carry
    # (hostaddr skips DNS; libpq still checks the certificate against `host`).
    settings = tls_settings(tls_cluster, tmp_path, host="db.example.invalid")
    conninfo = make_conninfo(settings.postgres_conninfo(), hostaddr="127.0.0.1")
    with pytest.raises(psycopg.OperationalError, match="does not match host name") as caught:
        PostgresWarehouse(conninfo)
    assert "db.example.invalid" in str(caught.value)
    assert_no_password(tls_cluster, caught.value)


def test_the_cli_reports_a_tls_refusal_in_one_line_without_the_password(
    tls_cluster: TlsCluster, tmp_path: Path
) -> None:
    from dataplatform.registry.cli import model_app

    settings = tls_settings(tls_cluster, tmp_path, rootcert=tls_cluster.impostor_ca)
    result = CliRunner().invoke(model_app, ["list", "commit-classifier"], obj=settings)
    assert result.exit_code == 1
    assert "certificate verify failed" in result.output
    assert tls_cluster.password not in result.output


@pytest.mark.parametrize("sslmode", ["disable", "allow", "prefer", "require", "verify-ca"])
def test_prod_refuses_every_sslmode_but_verify_full(
    tls_cluster: TlsCluster, tmp_path: Path, sslmode: str
) -> None:
    with pytest.raises(SettingsError, match="verify-full") as caught:
        tls_settings(tls_cluster, tmp_path, sslmode=sslmode)
    assert tls_cluster.password not in str(caught.value)


def test_why_prod_insists_weaker_modes_accept_any_server_or_a_wrong_host(
    tls_cluster: TlsCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `require` without a CA file encrypts but verifies nothing: the client holds no CA at all
    # (not even ~/.postgresql/root.crt, which libpq would otherwise use), yet it connects.
    monkeypatch.setenv("HOME", str(tmp_path))
    require = tls_settings(
        tls_cluster, tmp_path, sslmode="require", no_rootcert=True, profile="staging"
    )
    assert "sslrootcert" not in require.postgres_conninfo()
    with PostgresWarehouse(require.postgres_conninfo()) as warehouse:
        assert tls_state(warehouse)[0] is True
    # `verify-ca` checks the chain but not the name: a wrong host name gets through.
    verify_ca = tls_settings(
        tls_cluster, tmp_path, host="db.example.invalid", sslmode="verify-ca", profile="staging"
    )
    conninfo = make_conninfo(verify_ca.postgres_conninfo(), hostaddr="127.0.0.1")
    with PostgresWarehouse(conninfo) as warehouse:
        assert tls_state(warehouse)[0] is True
