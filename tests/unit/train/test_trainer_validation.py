"""train_model refuses bad frames before touching MLflow; lineage from git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from dataplatform.config import get_settings
from dataplatform.features import FEATURE_COLUMNS
from dataplatform.train.lineage import Lineage
from dataplatform.train.specs import COMMIT_CLASSIFIER
from dataplatform.train.trainer import TrainingDataError, pip_requirements, train_model


def mart(n: int = 20) -> pd.DataFrame:
    data = {c: [1] * n for c in FEATURE_COLUMNS}
    data.update(
        commit_key=[f"r:{i}" for i in range(n)],
        repo=["o/r"] * n,
        message=["Merge x" if i % 2 else "Fix" for i in range(n)],
        committed_at=pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC"),
        is_merge_commit=[bool(i % 2) for i in range(n)],
    )
    return pd.DataFrame(data)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["lines_added"]), "lacks columns"),
        (lambda f: f.assign(lines_added=[None] + [1] * 19), "null values"),
        (lambda f: f.assign(commit_key=["same"] * 20), "duplicate keys"),
        (lambda f: f.assign(is_merge_commit=[2] * 20), "must be binary"),
        (lambda f: f.iloc[0:0], "empty"),
        (lambda f: f.assign(is_merge_commit=[False] * 16 + [True] * 4), "single class"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(tmp_path: Path, mutate, message: str) -> None:
    settings = get_settings(home=tmp_path)
    with pytest.raises(TrainingDataError, match=message):
        train_model(COMMIT_CLASSIFIER, mutate(mart()), settings, lineage=Lineage())
    assert not (tmp_path / "mlflow.db").exists()  # nothing logged for a refused frame


def test_pip_requirements_are_pinned() -> None:
    pins = pip_requirements()
    names = {p.split("==")[0] for p in pins}
    assert {"mlflow", "scikit-learn", "skops", "pandas", "numpy"} <= names
    assert all("==" in p for p in pins)


def test_lineage_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    assert Lineage.from_git(tmp_path) == Lineage("unknown", "unknown")


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_lineage_of_a_repository(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "feature-x")
    assert Lineage.from_git(tmp_path) == Lineage("unknown", "unknown")  # no commit yet
    git("-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", "c")
    lineage = Lineage.from_git(tmp_path)
    assert lineage.git_commit == git("rev-parse", "HEAD")
    assert len(lineage.git_commit) == 40
    assert lineage.git_branch == "feature-x"
