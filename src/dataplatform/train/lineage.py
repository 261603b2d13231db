"""Where a model came from: the project's code version, passed in by the caller."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Lineage:
    """Code version of the project that trains (not of the analysed repositories)."""

    git_commit: str = UNKNOWN
    git_branch: str = UNKNOWN

    @classmethod
    def from_git(cls, project_dir: Path) -> Lineage:
        """`git rev-parse` of `project_dir`; 'unknown' fields when it is not a git work tree,
        has no commit yet, or git is missing."""
        return cls(
            git_commit=_git(project_dir, "rev-parse", "HEAD"),
            git_branch=_git(project_dir, "rev-parse", "--abbrev-ref", "HEAD"),
        )


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    value = done.stdout.strip()
    # `rev-parse HEAD` in a repo without commits echoes "HEAD" and fails: treat as unknown.
    return value if done.returncode == 0 and value and value != "HEAD" else UNKNOWN
