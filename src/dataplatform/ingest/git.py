"""Run git: stream `git log` of a local repository, clone/fetch URLs into the git cache.

The log is read with ``-z`` so every field and numstat entry ends with NUL, a byte that cannot
occur in commit messages, names or paths; parsing is done by the pure
`parser.parse_git_log_stream`. One `git log` process per call, read incrementally.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from dataplatform.ingest.errors import SourceError
from dataplatform.ingest.parser import (
    GIT_LOG_FORMAT,
    ParsedRecord,
    is_valid_repo_name,
    parse_git_log_stream,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

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
PIPE_BUFFER_BYTES = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size

# Fixed options so user/system config cannot change what the numbers mean: rename detection on
# (git's default, as in the datasets), no mailmap, no signatures, UTF-8 output, no merge diffs.
GIT_LOG_OPTIONS = (
    "-z",
    "--numstat",
    "-M",
    "--date=raw",
    "--no-mailmap",
    "--no-show-signature",
    "--encoding=UTF-8",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--diff-merges=off",
    f"--format=tformat:{GIT_LOG_FORMAT}",
)


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
        raise SourceError(_failure_message(args, proc.returncode, proc.stderr))
    return proc


def _failure_message(args: Sequence[str], returncode: int, stderr: bytes) -> str:
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


def split_history(
    repo_path: Path, parts: int, tip: str = "HEAD", exclude: Sequence[str] = ()
) -> list[list[str]]:
    """Cut ``git log tip ^exclude...`` into `parts` disjoint rev ranges of (nearly) equal size.

    Oldest part first; their union is exactly the whole range. Each cut is a prefix of the
    reversed ``--topo-order`` listing, which holds every parent before its children, so the
    prefix is exactly what its tips reach. Lists every sha once (about 100 bytes per commit).
    """
    if parts < 1:
        raise ValueError("parts must be >= 1")
    excluded = [f"^{e.removeprefix('^')}" for e in exclude]
    proc = run_git(
        ["rev-list", "--topo-order", "--parents", "--end-of-options", tip, *excluded],
        cwd=repo_path,
    )
    rows = [line.split() for line in proc.stdout.decode("ascii").splitlines()]
    rows.reverse()  # parents before children
    if parts == 1 or len(rows) < parts:
        return [[tip, *excluded]]
    ranges: list[list[str]] = []
    lower: list[str] = []
    for index in range(1, parts):
        prefix = rows[: round(len(rows) * index / parts)]
        has_child = {parent for row in prefix for parent in row[1:]}
        tips = [row[0] for row in prefix if row[0] not in has_child]
        ranges.append([*tips, *lower, *excluded])
        lower = [f"^{sha}" for sha in tips]
    ranges.append([tip, *lower, *excluded])
    return ranges


# --- git log ---------------------------------------------------------------------------------


def git_log_command(rev_range: Sequence[str]) -> list[str]:
    """The `git log` argv used by `stream_git_log`."""
    for rev in rev_range:
        if not rev or rev.startswith("-"):
            raise ValueError(f"invalid revision {rev!r}")
    return ["git", "log", *GIT_LOG_OPTIONS, "--end-of-options", *rev_range, "--"]


def stream_git_log(
    repo_path: Path,
    *,
    repo: str,
    source: str | None = None,
    rev_range: Sequence[str] = ("HEAD",),
    chunk_size: int = 1 << 20,
) -> Iterator[ParsedRecord]:
    """Commits of ``git log <rev_range>`` in `repo_path` as records, newest first, streamed.

    Memory stays bounded by `chunk_size`: stdout is parsed as it arrives. `rev_range` takes
    any git revisions (``["HEAD", "^<old tip>"]``, a range from `split_history`, ...). Raises
    `SourceError` with git's stderr if git fails (records already yielded stay valid).
    """
    if not rev_range:
        return
    cmd = git_log_command(rev_range)
    name = source or str(repo_path)
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: git never blocks on it
        try:
            proc = subprocess.Popen(
                cmd, cwd=repo_path, env=git_env(), stdout=subprocess.PIPE, stderr=stderr
            )
        except FileNotFoundError as exc:
            raise SourceError(f"cannot run git in {repo_path}: {exc}") from exc
        stdout: IO[bytes] = proc.stdout  # type: ignore[assignment]
        _widen_pipe(stdout)
        try:
            chunks = _drained(stdout, chunk_size)
            yield from parse_git_log_stream(chunks, repo=repo, source=name)
            returncode = proc.wait()
        finally:
            if proc.poll() is None:  # the consumer stopped early
                proc.kill()
                proc.wait()
            stdout.close()
        if returncode != 0:
            stderr.seek(0)
            raise SourceError(_failure_message(cmd[1:], returncode, stderr.read()))


def _widen_pipe(stdout: IO[bytes], size: int = PIPE_BUFFER_BYTES) -> None:
    """Let git write `size` bytes ahead into the pipe (Linux; best effort elsewhere).

    The reader thread needs the GIL after every read; while the parser holds it (up to the 5 ms
    switch interval), git would block on the default 64 KiB pipe after a fraction of that.
    """
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setpipe is None:
        return
    with contextlib.suppress(OSError):  # e.g. above /proc/sys/fs/pipe-max-size: keep 64 KiB
        fcntl.fcntl(stdout.fileno(), setpipe, size)


def _drained(stdout: IO[bytes], chunk_size: int, ahead: int = 16) -> Iterator[bytes]:
    """Chunks of `stdout`, read by a thread so git never waits while Python parses.

    At most `ahead` chunks are buffered (bounded memory); the reads release the GIL, so git and
    the parser run on both cores instead of taking turns.
    """
    chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def pump() -> None:
        try:
            while not stop.is_set():
                chunk = stdout.read(chunk_size)
                chunks.put(chunk)
                if not chunk:
                    return
        except BaseException as exc:  # surfaced to the consumer, never lost in the thread
            chunks.put(exc)

    reader = threading.Thread(target=pump, name="git-log-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a pump waiting on a full queue
            try:
                chunks.get_nowait()
            except queue.Empty:
                reader.join(timeout=0.05)


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
