"""The rollback drill (issue 5 item 7), end to end on the embedded default.

A real home built by the pipeline from a shipped dataset; v1 promoted to production with an
approval; v2 trained on shuffled labels and forced to production through the lifecycle's own
promote (gates relaxed by a drill threshold file, approval with a reason: both recorded); the real
API serving v2; traffic; `monitor --auto-rollback` run until the k-of-n rule confirms the
critical F1 drop; then: production is v1 again in the registry, the rollback is in the promotion
history and in monitoring.incidents, and the API answers with v1. Prints the measured
detection → recovery seconds (not asserted: timing lives in benchmarks/).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dataplatform import pipeline
from dataplatform.adapters.warehouse import open_warehouse
from dataplatform.config import Settings, get_settings
from dataplatform.monitor.cli import make_monitor_command
from dataplatform.registry.gates import Approval
from dataplatform.registry.lifecycle import open_lifecycle
from dataplatform.registry.register import register_model
from dataplatform.registry.thresholds import DEFAULT_THRESHOLDS_PATH
from dataplatform.train.lineage import Lineage
from dataplatform.train.specs import COMMIT_CLASSIFIER
from dataplatform.train.trainer import train_model

pytestmark = pytest.mark.slow

NAME = "commit-classifier"
DATASET = Path(__file__).resolve().parents[2] / "data" / "commits" / "pallets__flask.jsonl.gz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _drill_thresholds(tmp: Path) -> Path:
    """The threshold file with the gates opened: the forced promotion's only difference."""
    data = yaml.safe_load(DEFAULT_THRESHOLDS_PATH.read_text(encoding="utf-8"))
    gates = data["models"][NAME].setdefault("gates", {})
    gates.update({"min_f1": 0.0, "must_beat_baseline": False, "max_f1_regression": 1.0})
    path = tmp / "drill-thresholds.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _commits(settings: Settings, n: int) -> list[dict[str, Any]]:
    warehouse = open_warehouse(settings)
    try:
        frame = warehouse.query_df(
            "SELECT repo, commit_sha, message, author_name, authored_at, committed_at, "
            "files_changed, lines_added, lines_deleted FROM raw.commits "
            "ORDER BY committed_at DESC LIMIT ?",
            [n],
        )
    finally:
        warehouse.close()
    out = []
    for row in frame.to_dict("records"):
        row["authored_at"] = row["authored_at"].isoformat()
        row["committed_at"] = row["committed_at"].isoformat()
        row["message"] = row["message"].replace("\x00", "")
        out.append(row)
    return out


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, Settings, subprocess.Popen[str]]]:
    home = tmp_path / "home"
    env_home = {"DATAPLATFORM_HOME": str(home), "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    os.environ.update(env_home)
    settings = get_settings(home=home, monitor_confirm_windows=2, monitor_history_windows=3)
    proc: subprocess.Popen[str] | None = None

    def start() -> tuple[str, subprocess.Popen[str]]:
        nonlocal proc
        port = _free_port()
        env = {
            **os.environ,
            **env_home,
            "DATAPLATFORM_SERVE_PREDICTION_LOG_SAMPLE_RATE": "1.0",
            "DATAPLATFORM_SERVE_PREDICTION_LOG_FLUSH_INTERVAL_S": "0.5",
        }
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "dataplatform.serve.cli", "--port", str(port),
                "--reload-interval", "1", "--canary-share", "0", "--no-shadow",
                "--log-level", "warning",
            ],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        return f"http://127.0.0.1:{port}", proc

    try:
        yield start, settings, proc  # type: ignore[misc]
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_for_version(url: str, commit: dict[str, Any], version: str, timeout_s: float) -> float:
    """Seconds until POST /api/v1/predict answers with `version` (fails after `timeout_s`)."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < timeout_s:
        try:
            r = httpx.post(f"{url}/api/v1/predict", json={"commits": [commit]}, timeout=5)
            last = r.status_code, r.text[:300]
            if r.status_code == 200 and r.json()["model_version"] == version:
                return time.monotonic() - started
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise AssertionError(f"API did not answer with version {version} in {timeout_s}s: {last}")


def test_degraded_model_is_rolled_back_automatically(api: Any, tmp_path: Path) -> None:
    start_api, settings, _ = api
    # 1. a real home: ingest → load → transform → train (v1, staging) from a shipped dataset
    run = pipeline.run(settings, [str(DATASET)])
    assert run.models[0].registered.version is not None
    v1 = str(run.models[0].registered.version)
    with open_lifecycle(settings) as lc:
        out = lc.promote(
            NAME, v1, "production", actor="drill",
            approval=Approval("alice", "drill: good model to production"),
        )  # fmt: skip
        assert out.status == "promoted", [r.line() for r in out.gate_results]

    # 2. a degraded model: same features, shuffled labels → v2
    warehouse = open_warehouse(settings)
    try:
        frame = warehouse.query_df(f"SELECT * FROM {COMMIT_CLASSIFIER.training_mart}")
    finally:
        warehouse.close()
    rng = np.random.default_rng(7)
    frame["is_merge_commit"] = rng.permutation(frame["is_merge_commit"].to_numpy())
    result = train_model(COMMIT_CLASSIFIER, frame, settings, lineage=Lineage.from_git(Path.cwd()))
    v2 = str(register_model(settings, result, COMMIT_CLASSIFIER).version)
    assert v2 != v1
    # 3. forced to production: normal gates refuse it, the drill's relaxed file lets it through
    with open_lifecycle(settings) as lc:
        refused = lc.promote(
            NAME, v2, "production", actor="drill", approval=Approval("alice", "try")
        )
        assert refused.status == "blocked"
    with open_lifecycle(settings, thresholds_path=_drill_thresholds(tmp_path)) as lc:
        forced = lc.promote(
            NAME, v2, "production", actor="drill",
            approval=Approval("alice", "drill: FORCED degraded model (shuffled labels)"),
            reason="rollback drill: forced past the gates on purpose",
        )  # fmt: skip
        assert forced.status == "promoted"
        assert lc.current_holders(NAME)["production"] == v2

    # 4. the real API serving v2, with traffic
    commits = _commits(settings, 40)
    url, proc = start_api()
    _wait_for_version(url, commits[0], v2, timeout_s=120)
    for i in range(0, 40, 4):
        r = httpx.post(f"{url}/api/v1/predict", json={"commits": commits[i : i + 4]}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == v2
    time.sleep(1.5)  # let the prediction log flush before the monitor reads the warehouse

    # 5. the monitor: first window is critical but unconfirmed (k=2), the second acts
    app = __import__("typer").Typer(add_completion=False)
    app.command("monitor")(make_monitor_command(pipeline.monitor_deps))
    app.command("noop")(lambda: None)
    runner = CliRunner()
    args = ["monitor", "--auto-rollback", "--api-url", url, "--no-report"]
    first = runner.invoke(app, args, obj=settings)
    assert first.exit_code == 0, first.output
    assert "watching: f1_drop is critical" in first.output
    second = runner.invoke(app, args, obj=settings)
    assert second.exit_code == 2, second.output
    assert "CRITICAL" in second.output
    assert f"production now version {v1}" in second.output, second.output
    recovery_s = _wait_for_version(url, commits[0], v1, timeout_s=60)
    proc.terminate()  # the API's prediction-log flushes lock the DuckDB file; done with it
    proc.wait(timeout=30)

    # 6. recorded: registry, promotion history, incident
    with open_lifecycle(settings) as lc:
        assert lc.current_holders(NAME)["production"] == v1
        last = lc.history(NAME)[-1]
        assert (last.action, last.version, last.actor) == ("rollback", v1, "monitor")
        assert "f1_drop" in (last.reason or "")
        incidents = lc.warehouse.query_df("SELECT * FROM monitoring.incidents")
        runs = lc.warehouse.query_df("SELECT verdict FROM monitoring.monitor_runs")
        audited = lc.warehouse.query_df(
            "SELECT subject, actor, details FROM audit.events WHERE action = 'model.rollback'"
        )
    assert len(incidents) == 1
    incident = incidents.iloc[0]
    assert (incident["model_version"], incident["action"], incident["action_status"]) == (
        v2, "rollback", "done",
    )  # fmt: skip
    assert incident["rolled_back_to"] == v1
    assert "f1_drop" in incident["evidence_json"]
    assert sorted(runs["verdict"]) == ["critical", "ok"]
    # 7. audited: one automatic rollback by the monitor, naming the version it restored
    assert len(audited) == 1
    rollback_event = audited.iloc[0]
    assert rollback_event["actor"] == "monitor"
    assert rollback_event["subject"] == f"models:/{NAME}/{v1}"
    assert '"trigger": "automatic"' in str(rollback_event["details"])
    detection_to_rollback = (
        incident["resolved_at"].to_pydatetime() - incident["detected_at"].to_pydatetime()
    ).total_seconds()
    print(
        f"\nrollback drill: detection -> registry rollback {detection_to_rollback:.2f} s; "
        f"rollback -> API answering v{v1} {recovery_s:.2f} s "
        f"(reload interval 1 s); detection -> recovery {detection_to_rollback + recovery_s:.2f} s"
    )
