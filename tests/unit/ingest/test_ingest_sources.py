"""Source resolution, repository names, credential masking."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from dataplatform.config import Settings
from dataplatform.ingest.git import (
    cache_dir_name,
    is_clone_url,
    mask_credentials,
    repo_name_from_url,
    strip_credentials,
)
from dataplatform.ingest.gitlog import git_log_command
from dataplatform.ingest.sources import (
    DatasetSource,
    GitSource,
    Source,
    SourceError,
    resolve_source,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://github.com/psf/requests.git", "psf/requests"),
        ("https://github.com/psf/requests", "psf/requests"),
        ("https://user:tok@github.com/pallets/flask.git/", "pallets/flask"),
        ("git@github.com:encode/httpx.git", "encode/httpx"),
        ("ssh://git@host:2222/team/proj.git", "team/proj"),
        ("file:///srv/git/owner/name.git", "owner/name"),
        ("file:///solo.git", "local/solo"),
        ("https://example.org/a b/c%d.git", "a-b/c-d"),
    ],
)
def test_repo_name_from_url(url: str, name: str) -> None:
    assert repo_name_from_url(url) == name


@pytest.mark.parametrize(
    ("spec", "is_url"),
    [
        ("https://github.com/a/b", True),
        ("file:///tmp/x", True),
        ("git@github.com:a/b.git", True),
        ("/tmp/repo", False),
        ("relative/path", False),
        ("data.jsonl.gz", False),
    ],
)
def test_is_clone_url(spec: str, is_url: bool) -> None:
    assert is_clone_url(spec) is is_url


def test_credentials_are_masked_and_stripped() -> None:
    text = "fatal: unable to access 'https://bob:hunter2@example.org/o/r.git/': refused"
    assert "hunter2" not in mask_credentials(text)
    assert "bob" not in mask_credentials(text)
    assert "https://***@example.org/o/r.git/" in mask_credentials(text)
    assert strip_credentials("https://tok@example.org/o/r") == "https://example.org/o/r"
    assert strip_credentials("git@github.com:o/r.git") == "git@github.com:o/r.git"


def test_cache_dir_name_is_safe_stable_and_secret_free() -> None:
    a = cache_dir_name("https://bob:hunter2@example.org/o/r.git")
    assert a == cache_dir_name("https://example.org/o/r.git")
    assert "hunter2" not in a
    assert "/" not in a
    assert a != cache_dir_name("https://example.org/o/other.git")


def test_git_log_command_refuses_option_like_revisions() -> None:
    with pytest.raises(ValueError, match="invalid revision"):
        git_log_command(["--output=/tmp/x"])
    assert git_log_command(["HEAD", "^" + "a" * 40])[-3:] == ["HEAD", "^" + "a" * 40, "--"]


def test_missing_path(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        resolve_source(str(tmp_path / "nope"), settings)


def test_folder_that_is_not_a_repository(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(SourceError, match="is not a git repository"):
        resolve_source(str(folder), settings)


def test_dataset_file(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(gzip.compress(b""))
    source = resolve_source(str(path), settings)
    assert isinstance(source, DatasetSource)
    assert isinstance(source, Source)
    assert source.kind == "dataset"
    assert list(source.iter_records({})) == []
    assert source.watermarks() == {}
    with pytest.raises(SourceError, match="git sources only"):
        resolve_source(str(path), settings, repo="o/r")


def test_clone_url_source_is_lazy_and_masked(settings: Settings) -> None:
    source = resolve_source("https://bob:hunter2@example.org/o/r.git", settings)
    assert isinstance(source, GitSource)
    assert source.kind == "git"
    assert source.name == "https://***@example.org/o/r.git"
    assert source.repo == "o/r"
    assert source.cache_root == settings.git_cache
    with pytest.raises(SourceError, match="invalid repository name"):
        resolve_source("https://example.org/o/r.git", settings, repo="no-slash")
