"""MLflow tracking/registry client built from `Settings`.

MLflow is imported inside the functions: importing this module does no work and sets no state.
`configure_mlflow` points the process at the tracking store (the fluent `mlflow.*` API used by the
trainer is process-global) and makes sure the experiment exists with the configured artifact root.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from dataplatform.config import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient


def configure_mlflow(settings: Settings) -> MlflowClient:
    """Client on `settings.tracking_uri`, with `settings.mlflow_experiment` created if missing.

    Side effects (at call time only): creates the folder of a local SQLite store and of a local
    artifact root, sets the process-wide tracking/registry URI, disables MLflow's usage telemetry
    (no network at run time) unless the environment says otherwise, and restores the experiment
    if it was soft-deleted.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow import MlflowClient

    tracking_uri = settings.tracking_uri
    _make_local_dirs(tracking_uri, settings.artifact_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    ensure_experiment(client, settings)
    return client


def ensure_experiment(client: MlflowClient, settings: Settings) -> str:
    """Id of `settings.mlflow_experiment`, creating it with `artifact_location=artifact_uri`."""
    from mlflow.exceptions import MlflowException

    name = settings.mlflow_experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=settings.artifact_uri)
        except MlflowException:
            # Another process created it between our lookup and create: use theirs.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return str(experiment.experiment_id)


def mlflow_ui_command(settings: Settings) -> str:
    """Shell command that opens the MLflow UI on this platform's runs and registry."""
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        # A tracking server already serves the UI; nothing to start.
        return f"python -m webbrowser {shlex.quote(uri)}"
    return (
        f"mlflow ui --backend-store-uri {shlex.quote(uri)}"
        f" --default-artifact-root {shlex.quote(settings.artifact_uri)}"
        " --host 127.0.0.1 --port 5000"
    )


def _make_local_dirs(tracking_uri: str, artifact_uri: str) -> None:
    if tracking_uri.startswith("sqlite:///"):
        db_path = Path(tracking_uri.removeprefix("sqlite:///"))
        if not db_path.is_absolute():  # sqlite:///relative.db is relative to the cwd
            db_path = Path.cwd() / db_path
        db_path.parent.mkdir(parents=True, exist_ok=True)
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        Path(unquote(parsed.path)).mkdir(parents=True, exist_ok=True)
    elif parsed.scheme == "" and artifact_uri:
        Path(artifact_uri).mkdir(parents=True, exist_ok=True)
