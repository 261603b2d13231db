"""Fixtures for the deployment tests: the tools venv and the chart rendered per environment.

The heavy engines (Helm's Go engine via helm-python-sdk, kubernetes-validate, checkov, hadolint,
check-jsonschema) live in the separate venv .venv-tools made by scripts/deploy-tools.sh; tests
call them as subprocesses. Without that venv those tests skip and say how to create it.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART_DIR = REPO_ROOT / "helm" / "data-platform"
TOOLS_VENV = Path(os.environ.get("DATAPLATFORM_TOOLS_VENV", REPO_ROOT / ".venv-tools"))
TOOLS_BIN = TOOLS_VENV / "bin"
CHART_TOOL = Path(__file__).with_name("chart_tool.py")
ENVIRONMENTS = ("dev", "staging", "prod")
KUBE_VERSION = "1.30.0"  # the oldest we support is 1.28; see test_chart.py for every version.
# Kinds defined by CRDs: kubernetes-validate has no schema for them (checked structurally instead).
CRD_KINDS = frozenset(
    {
        "ServiceMonitor",
        "PrometheusRule",
        "SealedSecret",
        "VirtualService",
        "DestinationRule",
        "Cluster",
        "ScheduledBackup",
    }
)


def tool(name: str) -> Path:
    """Path of a tools-venv executable; skips the test when the venv is absent."""
    path = TOOLS_BIN / name
    if not path.exists():
        pytest.skip(f"{path} missing: run scripts/deploy-tools.sh to create {TOOLS_VENV}")
    return path


@dataclass(frozen=True)
class Rendered:
    """The chart rendered by Helm's engine for one environment."""

    env: str
    namespace: str
    helm_version: str
    manifests: dict[str, str]
    lint: dict[str, Any]
    validation: list[dict[str, str]]

    @property
    def docs(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for path, text in sorted(self.manifests.items()):
            if path.endswith(".yaml"):
                out.extend(d for d in yaml.safe_load_all(text) if d)
        return out

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, got {len(found)}"
        return found[0]


def run_chart_tool(values_file: Path, namespace: str, kube_version: str = KUBE_VERSION) -> Any:
    """Run chart_tool.py in the tools venv; returns its JSON report."""
    python = tool("python")
    proc = subprocess.run(
        [str(python), str(CHART_TOOL), str(CHART_DIR), str(values_file), namespace, kube_version],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise AssertionError(f"chart_tool failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def render(env: str) -> Rendered:
    report = run_chart_tool(CHART_DIR / f"values-{env}.yaml", f"platform-{env}")
    return Rendered(
        env,
        f"platform-{env}",
        report["helm_sdk_version"],
        report["manifests"],
        report["lint"],
        report["validation"],
    )


_CACHE: dict[str, Rendered] = {}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tools() -> Any:
    """`tools("checkov")` -> path of that executable in the tools venv (skips if absent)."""
    return tool


@pytest.fixture(scope="session")
def chart_tool_report() -> Any:
    """`chart_tool_report(values_file, namespace, kube_version)` -> the raw JSON report."""
    return run_chart_tool


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    env = str(request.param)
    if env not in _CACHE:
        _CACHE[env] = render(env)
    return _CACHE[env]


@pytest.fixture(scope="session")
def rendered_by_env() -> dict[str, Rendered]:
    for env in ENVIRONMENTS:
        if env not in _CACHE:
            _CACHE[env] = render(env)
    return dict(_CACHE)
