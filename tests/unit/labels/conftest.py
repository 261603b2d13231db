"""Labelled data sets: $DATAPLATFORM_LABELS_DIR, else ../shared/datasets/labels beside the repo.

The data has no licence for redistribution, so it is never in the repository; tests that need
it skip only when that folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "labels"
LABELS_DIR = Path(os.environ.get("DATAPLATFORM_LABELS_DIR") or _SHARED).resolve()


@pytest.fixture(scope="session")
def labels_dir() -> Path:
    if not LABELS_DIR.is_dir():
        pytest.skip(f"labelled data sets not available at {LABELS_DIR}")
    return LABELS_DIR
