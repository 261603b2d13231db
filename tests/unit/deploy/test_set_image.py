"""The GitOps image bump: a round-trip YAML edit that keeps comments and everything else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dataplatform.deploy.cli import deploy_app
from dataplatform.deploy.gitops import GitOpsError, set_image

REPO_ROOT = Path(__file__).resolve().parents[3]

VALUES = """\
# Header comment: who owns this file.
imageTag: "abc123" # the deployed image
api:
  # keep two replicas during the migration
  replicaCount: 2   # odd spacing kept
  hosts: [a.example, b.example]
"""


def test_set_image_keeps_comments_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(VALUES)
    assert set_image(path, "def456") == "abc123"
    assert path.read_text() == VALUES.replace('"abc123"', '"def456"')


def test_set_image_adds_the_key_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("# only a comment\napi:\n  replicaCount: 2\n")
    assert set_image(path, "0f1e2d") is None
    text = path.read_text()
    assert text.startswith("# only a comment\n")
    assert yaml.safe_load(text) == {"api": {"replicaCount": 2}, "imageTag": "0f1e2d"}


@pytest.mark.parametrize("tag", ["", "has space", "semi;colon", "-leading-dash", "x" * 129])
def test_invalid_tags_are_refused(tmp_path: Path, tag: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(VALUES)
    with pytest.raises(GitOpsError):
        set_image(path, tag)
    assert path.read_text() == VALUES


def test_cli_bumps_the_repository_gitops_tree(tmp_path: Path) -> None:
    gitops = tmp_path / "gitops"
    shutil.copytree(REPO_ROOT / "gitops", gitops)
    original = (gitops / "environments/prod/values.yaml").read_text()
    result = CliRunner().invoke(
        deploy_app, ["set-image", "--env", "prod", "--tag", "9f8e7d6c", "--gitops-dir", str(gitops)]
    )
    assert result.exit_code == 0, result.output
    text = (gitops / "environments/prod/values.yaml").read_text()
    assert yaml.safe_load(text)["imageTag"] == "9f8e7d6c"
    # Only the tag changed: every comment line is still there.
    assert [ln for ln in text.splitlines() if ln.startswith("#")] == [
        ln for ln in original.splitlines() if ln.startswith("#")
    ]
    assert "# the deployed image" in text
    assert (gitops / "environments/dev/values.yaml").read_text() == (
        REPO_ROOT / "gitops/environments/dev/values.yaml"
    ).read_text()


def test_cli_unknown_environment_is_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        deploy_app, ["set-image", "--env", "qa", "--tag", "abc", "--gitops-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
