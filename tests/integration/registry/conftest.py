"""Fixtures of the registry integration tests; they live in registry_world.py (importable by
the tests under a name no other test folder uses)."""

from registry_world import (
    client,
    empty_mlflow_db,
    lifecycle,
    notifier,
    saved_models,
    settings,
    warehouse,
)

__all__ = [
    "client",
    "empty_mlflow_db",
    "lifecycle",
    "notifier",
    "saved_models",
    "settings",
    "warehouse",
]
