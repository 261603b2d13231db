"""Run git: its environment and errors, repository facts, clone/fetch URLs into the git cache.

Reading a history is `gitlog`'s job.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from dataplatform.ingest.errors import SourceError
from dataplatform.ingest.parser import is_valid_repo_name

# Variables that would point our git calls at another repository than the one we name.
_GIT_ENV_DROP = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_COMMON_DIR",
    }
)
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_RE = re.compile(r"(?P<user>[^/\s:@]+@)?(?P<host>[^/\s:]+):(?P<path>(?!//).+)")
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
# --- environment and errors ------------------------------------------------------------------


def git_env() -> dict[str, str]:
    """Environment for git: never prompt, C locale, no inherited repository overrides."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def mask_credentials(text: str) -> str:
    """Replace the ``user:password@`` part of every URL in `text` by ``***@``."""
    return _USERINFO_RE.sub(r"\1***@", text)


def strip_credentials(url: str) -> str:
    """`url` without its ``user:password@`` part (scp-like ``git@host:`` is kept)."""
    return _USERINFO_RE.sub(r"\1", url)


def run_git(args: Sequence[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``git <args>``; `SourceError` with git's (credential-masked) stderr on failure."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=git_env(), capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        raise SourceError("the `git` executable was not found on PATH") from exc
    if proc.returncode != 0:
        raise SourceError(failure_message(args, proc.returncode, proc.stderr))
    return proc


def failure_message(args: Sequence[str], returncode: int, stderr: bytes) -> str:
    command = mask_credentials(" ".join(["git", *args]))
    detail = mask_credentials(stderr.decode("utf-8", errors="replace").strip())
    return f"`{command}` failed (exit {returncode}): {detail or 'no error output'}"


# --- repository facts ------------------------------------------------------------------------


def is_clone_url(spec: str) -> bool:
    """True for ``scheme://...`` URLs and scp-like ``user@host:path``."""
    return bool(_URL_RE.match(spec)) or (
        "@" in spec.split(":", 1)[0] and _SCP_RE.fullmatch(spec) is not None
    )


def repository_root(path: Path) -> Path:
    """The folder git treats as `path`'s repository (work tree top or bare git dir).

    Raises `SourceError` when `path` is not a git repository or only a folder inside one.
    """
    resolved = path.resolve()
    try:
        proc = run_git(["rev-parse", "--is-bare-repository", "--absolute-git-dir"], cwd=resolved)
        is_bare, git_dir = proc.stdout.decode("utf-8", errors="replace").splitlines()[:2]
        if is_bare != "true":
            proc = run_git(["rev-parse", "--show-toplevel"], cwd=resolved)
            git_dir = proc.stdout.decode("utf-8", errors="replace").strip()
    except SourceError as exc:
        raise SourceError(f"{path} is not a git repository ({exc})") from None
    root = Path(git_dir).resolve()
    if root != resolved:
        raise SourceError(f"{path} is inside the git repository {root} but is not its top level")
    return root


def head_sha(repo_path: Path, rev: str = "HEAD") -> str | None:
    """The commit `rev` points to, or None (empty repository / unknown rev)."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
        cwd=repo_path,
        env=git_env(),
        capture_output=True,
        check=False,
    )
    return proc.stdout.decode("ascii", errors="replace").strip() or None


def commit_exists(repo_path: Path, sha: str) -> bool:
    """True when `sha` names a commit present in the repository."""
    return head_sha(repo_path, sha) is not None


def incremental_range(repo_path: Path, tip: str, previous_tip: str | None) -> list[str]:
    """Revisions to log so only commits new since `previous_tip` come out.

    ``[]`` when nothing changed, ``[tip, ^previous]`` normally, ``[tip]`` (full history) when
    there is no previous tip or the repository no longer knows it (force push, other clone);
    the loader dedups by repo + sha, so re-reading is safe.
    """
    if previous_tip == tip:
        return []
    if previous_tip is None or not commit_exists(repo_path, previous_tip):
        return [tip]
    return [tip, f"^{previous_tip}"]


# --- names and the clone cache ---------------------------------------------------------------


def _clean_component(text: str) -> str:
    cleaned = _NAME_BAD_CHARS.sub("-", text).strip("-.")
    return cleaned or "unknown"


def repo_name_from_url(url: str) -> str:
    """``owner/name`` from a clone URL: its last two path components, ``.git`` stripped."""
    clean = strip_credentials(url.strip())
    scp = None if _URL_RE.match(clean) else _SCP_RE.fullmatch(clean)
    path = scp["path"] if scp else urlsplit(clean).path
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if parts:
        parts[-1] = parts[-1].removesuffix(".git")
    parts = [p for p in parts if p]
    if not parts:
        raise SourceError(f"cannot derive a repository name from {mask_credentials(url)!r}")
    owner = _clean_component(parts[-2]) if len(parts) >= 2 else "local"
    return f"{owner}/{_clean_component(parts[-1])}"


def repo_name_for_path(repo_path: Path) -> str:
    """``owner/name`` of a local repository: from its ``origin`` URL, else ``local/<folder>``."""
    proc = subprocess.run(
        ["git", "config", "--get", "remote.origin.url"],
        cwd=repo_path,
        env=git_env(),
        capture_output=True,
        check=False,
    )
    origin = proc.stdout.decode("utf-8", errors="replace").strip()
    if origin:
        try:
            return repo_name_from_url(origin)
        except SourceError:
            pass
    folder = repo_path.resolve().name.removesuffix(".git")
    return f"local/{_clean_component(folder)}"


def validate_repo_name(name: str) -> str:
    """`name` if it is ``owner/name``; `SourceError` otherwise."""
    if not is_valid_repo_name(name):
        raise SourceError(f"invalid repository name {name!r} (want 'owner/name')")
    return name


def cache_dir_name(url: str) -> str:
    """A stable, filesystem-safe folder name for a clone URL (credentials excluded)."""
    clean = strip_credentials(url.strip())
    body = _URL_RE.sub("", clean, count=1)
    slug = _NAME_BAD_CHARS.sub("_", body).strip("._")[-80:] or "repo"
    digest = hashlib.sha256(clean.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}.git"


def clone_or_fetch(url: str, cache_root: Path) -> Path:
    """A bare clone of `url` under `cache_root`, created on first use, fetched afterwards.

    Branches are mirrored (``+refs/heads/*:refs/heads/*``, pruned), so ``HEAD`` follows the
    remote default branch. Credentials in `url` are used for the transfer but not stored in
    the clone's config. Raises `SourceError` (git stderr, credentials masked) on failure.
    """
    dest = cache_root / cache_dir_name(url)
    if (dest / "HEAD").is_file():
        run_git(
            ["fetch", "--prune", "--no-tags", "--quiet", url, "+refs/heads/*:refs/heads/*"],
            cwd=dest,
        )
        return dest
    cache_root.mkdir(parents=True, exist_ok=True)
    # Clone next to the destination and rename, so an interrupted clone never looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=cache_root))
    try:
        run_git(["clone", "--bare", "--no-tags", "--quiet", "--", url, str(tmp)])
        run_git(["config", "remote.origin.url", strip_credentials(url)], cwd=tmp)
        try:
            tmp.rename(dest)
        except OSError:
            if not (dest / "HEAD").is_file():  # not a concurrent clone winning the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
