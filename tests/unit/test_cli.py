"""The top-level CLI: light start-up, and `db create-login`'s checks before any connection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataplatform.cli import app


def test_importing_the_cli_loads_no_stage_heavyweights() -> None:
    # `dataplatform --help` must not pay for scikit-learn, MLflow, dbt or pandas (seconds).
    probe = (
        "import sys, dataplatform.cli; "
        "print(sorted(m for m in ('sklearn', 'mlflow', 'dbt', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_create_login_refuses_a_short_password_file_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATAPLATFORM_WAREHOUSE_BACKEND", "postgres")
    monkeypatch.setenv("DATAPLATFORM_POSTGRES_PORT", "1")  # nothing listens: never reached
    weak = tmp_path / "pw"
    weak.write_text("Tiny-pw-9\n")  # pragma: allowlist secret
    result = CliRunner().invoke(
        app,
        ["db", "create-login", "etl", "--group", "pipeline_service", "--password-file", str(weak)],
    )
    assert result.exit_code == 1
    assert "at least 16 characters" in result.output
    assert "Tiny-pw-9" not in result.output  # never echoed
