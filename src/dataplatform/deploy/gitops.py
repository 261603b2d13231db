"""GitOps edits: bump the image tag of one environment, keeping the file's comments and layout."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

ENVIRONMENTS = ("dev", "staging", "prod")
# Docker tag grammar: what a registry accepts, so a typo never reaches a cluster.
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class GitOpsError(ValueError):
    """The GitOps file or the requested change is invalid."""


def values_path(gitops_dir: Path, env: str) -> Path:
    """The values file of environment `env` in the GitOps tree."""
    if env not in ENVIRONMENTS:
        raise GitOpsError(f"unknown environment {env!r}; expected one of {', '.join(ENVIRONMENTS)}")
    return gitops_dir / "environments" / env / "values.yaml"


def set_image(path: Path, tag: str) -> str | None:
    """Set ``imageTag`` in the values file at `path` to `tag`; returns the previous tag.

    A round-trip edit: comments, key order and quoting of everything else are kept.
    """
    if not _TAG.match(tag):
        raise GitOpsError(f"invalid image tag {tag!r}")
    if not path.is_file():
        raise GitOpsError(f"values file not found: {path}")
    yaml = YAML()  # round-trip mode
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    data = yaml.load(path.read_text(encoding="utf-8"))
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise GitOpsError(f"{path} must hold a YAML mapping at the top")
    previous = data.get("imageTag")
    data["imageTag"] = tag
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
    return None if previous in (None, "") else str(previous)
