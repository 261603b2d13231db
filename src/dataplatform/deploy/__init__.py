"""Deployment helpers used by CI/CD: the change window and the GitOps image-tag bump."""

from dataplatform.deploy.change_window import (
    DEFAULT_WINDOWS,
    ChangeWindow,
    in_change_window,
    parse_windows,
)
from dataplatform.deploy.gitops import GitOpsError, set_image

__all__ = [
    "DEFAULT_WINDOWS",
    "ChangeWindow",
    "GitOpsError",
    "in_change_window",
    "parse_windows",
    "set_image",
]
