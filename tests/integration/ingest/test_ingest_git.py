"""Ingest from real git repositories built in tmp_path, checked against git's own output."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest

from dataplatform import config
from dataplatform.config import Settings
from dataplatform.contracts import CommitRecord, Watermark
from dataplatform.ingest.gitlog import GIT_DIFF_TREE_OPTIONS, git_log_command, stream_git_log
from dataplatform.ingest.sources import GitSource, SourceError, resolve_source

Git = Callable[..., str]


def make_git(repo: Path, home: Path) -> Git:
    env = {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Ann Author",
        "GIT_AUTHOR_EMAIL": "ann@example.org",
        "GIT_COMMITTER_NAME": "Cid Committer",
        "GIT_COMMITTER_EMAIL": "cid@example.org",
    }
    counter = iter(range(1_600_000_000, 1_700_000_000, 60))

    def git(*args: str, input: bytes | None = None, date: str | None = None) -> str:
        when = f"{next(counter)} +0100"
        run_env = {**env, "GIT_AUTHOR_DATE": date or when, "GIT_COMMITTER_DATE": when}
        proc = subprocess.run(
            ["git", *args], cwd=repo, env=run_env, input=input, capture_output=True, check=True
        )
        return proc.stdout.decode("utf-8", errors="replace")

    return git


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Git]:
    """A repository with every shape of commit git can make."""
    path = tmp_path / "work" / "sample"
    path.mkdir(parents=True)
    git = make_git(path, tmp_path)
    git("init", "--quiet", "--initial-branch=main")
    write(path / "a.txt", "one\ntwo\nthree\n")
    write(path / "logo.png", b"\x89PNG\x00\x01\x02binary")
    git("add", ".")
    git("commit", "--quiet", "-m", "root commit")
    write(path / "a.txt", "one\n2\nthree\nfour\n")
    git("commit", "--quiet", "-am", "edit a.txt")
    git("mv", "a.txt", "b.txt")
    write(path / "b.txt", "one\n2\nthree\nfour\nfive\n")
    write(path / "logo.png", b"\x89PNG\x00\x03\x04binary2")
    git("commit", "--quiet", "-am", "rename with an edit, binary change")
    git("commit", "--quiet", "--allow-empty", "-m", "an empty commit")
    for branch in ("side", "oct1", "oct2", "oct3"):
        git("checkout", "--quiet", "-b", branch, "main")
        write(path / f"{branch}.txt", f"{branch}\n")
        git("add", ".")
        git("commit", "--quiet", "-m", f"work on {branch}")
    git("checkout", "--quiet", "main")
    write(path / "main.txt", "main\n")
    git("add", ".")
    git("commit", "--quiet", "-m", "main moves on")
    git("merge", "--quiet", "--no-ff", "-m", "Merge branch 'side'", "side")
    git("merge", "--quiet", "--no-ff", "-m", "Octopus", "oct1", "oct2", "oct3")
    # Raw latin-1 bytes, no encoding header: git keeps them; readers must replace them.
    write(tmp_path / "msg.bin", b"caf\xe9 cr\r\nnot utf-8\n")
    git(
        "-c",
        "i18n.commitEncoding=",
        "commit",
        "--cleanup=verbatim",
        "--quiet",
        "--allow-empty",
        "-F",
        str(tmp_path / "msg.bin"),
    )
    git(
        "commit", "--quiet", "--allow-empty", "--cleanup=verbatim",
        "-m", "\nleading newline, Nepal time", date="1313584730 +0545",
    )  # fmt: skip
    # psf/requests' malformed "+051800" offset cannot be made by `git commit`: write the object.
    tree = git("rev-parse", "HEAD^{tree}").strip()
    parent = git("rev-parse", "HEAD").strip()
    body = (
        f"tree {tree}\nparent {parent}\n"
        "author Shrikant <s@example.org> 1313584730 +051800\n"
        "committer Shrikant <s@example.org> 1313584730 +051800\n\nTypo in documentation"
    ).encode()
    sha = git("hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=body).strip()
    git("update-ref", "refs/heads/main", sha)
    return path, git


def expected_from_git(path: Path, sha: str) -> dict[str, object]:
    """What git itself says about one commit (independent, per-commit calls)."""

    def run(*args: str) -> bytes:
        return subprocess.run(["git", *args], cwd=path, capture_output=True, check=True).stdout

    fmt = "%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B"
    parents, an, ae, at, cn, ce, ct, message = run(
        "log", "-1", f"--format=format:{fmt}", sha
    ).split(b"\x00")
    numstat = run("diff-tree", "-r", "-M", "--root", "--numstat", "--no-commit-id", sha)
    lines = [line.split(b"\t") for line in numstat.splitlines() if line]
    return {
        "parent_shas": tuple(parents.decode().split()),
        "author": (an.decode(), ae.decode()),
        "committer": (cn.decode(), ce.decode()),
        "authored_at": datetime.fromtimestamp(int(at), UTC),
        "committed_at": datetime.fromtimestamp(int(ct), UTC),
        "message": message.decode("utf-8", errors="replace"),
        "numstat": (
            len(lines),
            sum(int(x[0]) for x in lines if x[0] != b"-"),
            sum(int(x[1]) for x in lines if x[1] != b"-"),
        ),
    }


def commits(records: list[object]) -> list[CommitRecord]:
    assert all(isinstance(r, CommitRecord) for r in records), records
    return [r for r in records if isinstance(r, CommitRecord)]


def test_records_match_git(repo: tuple[Path, Git]) -> None:
    path, git = repo
    records = commits(list(stream_git_log(path, repo="local/sample")))
    all_shas = git("rev-list", "HEAD").split()
    assert [r.commit_sha for r in records] == all_shas  # git log order, nothing lost
    for record in records:
        expected = expected_from_git(path, record.commit_sha)
        assert record.parent_shas == expected["parent_shas"]
        assert record.parent_count == len(record.parent_shas or ())
        assert (record.author_name, record.author_email) == expected["author"]
        assert (record.committer_name, record.committer_email) == expected["committer"]
        assert record.authored_at == expected["authored_at"]
        assert record.committed_at == expected["committed_at"]
        assert record.message == expected["message"]
        if record.is_merge_commit:  # git log shows no diff for merges by default
            assert (record.files_changed, record.lines_added, record.lines_deleted) == (0, 0, 0)
        else:
            numstat = (record.files_changed, record.lines_added, record.lines_deleted)
            assert numstat == expected["numstat"]

    by_message = {r.message.strip(): r for r in records}
    root = by_message["root commit"]
    assert root.parent_count == 0
    assert (root.files_changed, root.lines_added) == (2, 3)  # binary file: 1 file, 0 lines
    rename = by_message["rename with an edit, binary change"]
    assert (rename.files_changed, rename.lines_added, rename.lines_deleted) == (2, 1, 0)
    assert by_message["an empty commit"].files_changed == 0
    assert by_message["Merge branch 'side'"].parent_count == 2
    assert by_message["Octopus"].parent_count == 4
    latin = by_message["caf\ufffd cr\r\nnot utf-8"]
    assert latin.message == "caf\ufffd cr\r\nnot utf-8\n"
    nepal = next(r for r in records if r.message.startswith("\nleading newline"))
    assert nepal.author_utc_offset_minutes == 345
    assert nepal.committer_utc_offset_minutes == 60
    assert nepal.authored_at == datetime(2011, 8, 17, 12, 38, 50, tzinfo=UTC)
    malformed = records[0]
    assert malformed.message == "Typo in documentation"
    assert malformed.author_utc_offset_minutes is None
    assert malformed.committer_utc_offset_minutes is None
    assert malformed.authored_at.timestamp() == 1313584730


def test_incremental_ingest(repo: tuple[Path, Git], tmp_path: Path) -> None:
    path, git = repo
    settings = Settings(home=tmp_path / "home")
    source = resolve_source(str(path), settings)
    assert isinstance(source, GitSource)
    assert source.repo == "local/sample"
    first = commits(list(source.iter_records({})))
    assert len(first) == int(git("rev-list", "--count", "HEAD"))
    marks = source.watermarks()
    assert marks["local/sample"].head_sha == git("rev-parse", "HEAD").strip()
    assert marks["local/sample"].committed_at_max == max(r.committed_at for r in first)

    git("commit", "--quiet", "--allow-empty", "-m", "new 1")
    git("commit", "--quiet", "--allow-empty", "-m", "new 2")
    second = commits(list(source.iter_records(marks)))
    assert [r.message for r in second] == ["new 2\n", "new 1\n"]
    marks = source.watermarks()
    assert list(source.iter_records(marks)) == []
    assert source.watermarks() == marks

    # A tip the repository does not know (force push elsewhere): full history again.
    unknown = Watermark(repo="local/sample", source="x", head_sha="f" * 40)
    assert len(list(source.iter_records({"local/sample": unknown}))) == len(first) + 2


def test_repo_name_override_and_subfolder(repo: tuple[Path, Git], tmp_path: Path) -> None:
    path, _ = repo
    settings = Settings(home=tmp_path / "home")
    source = resolve_source(str(path), settings, repo="acme/sample")
    assert isinstance(source, GitSource)
    assert source.repo == "acme/sample"
    (path / "sub").mkdir()
    with pytest.raises(SourceError, match="not its top level"):
        resolve_source(str(path / "sub"), settings)


def test_file_url_clone_then_fetch_incremental(repo: tuple[Path, Git], tmp_path: Path) -> None:
    path, git = repo
    settings = Settings(home=tmp_path / "home")
    url = path.resolve().as_uri()
    assert url.startswith("file://")
    source = resolve_source(url, settings)
    assert isinstance(source, GitSource)
    assert source.repo == "work/sample"
    first = commits(list(source.iter_records({})))
    assert len(first) == int(git("rev-list", "--count", "HEAD"))
    clones = list(settings.git_cache.iterdir())
    assert len(clones) == 1
    assert (clones[0] / "HEAD").is_file()
    marks = source.watermarks()

    git("commit", "--quiet", "--allow-empty", "-m", "upstream 1")
    git("commit", "--quiet", "--allow-empty", "-m", "upstream 2")
    again = resolve_source(url, settings)  # a later run: fetch into the same cache
    new = commits(list(again.iter_records(marks)))
    assert [r.message for r in new] == ["upstream 2\n", "upstream 1\n"]
    assert list(settings.git_cache.iterdir()) == clones
    assert list(resolve_source(url, settings).iter_records(again.watermarks())) == []


def test_failed_clone_reports_git_error_without_credentials(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    missing = resolve_source((tmp_path / "missing.git").as_uri(), settings)
    with pytest.raises(SourceError, match="git clone") as err:
        missing.iter_records({})
    assert "missing.git" in str(err.value)

    # Nothing listens on port 9 of localhost: fails fast, without network.
    secret = resolve_source("https://bob:hunter2@127.0.0.1:9/o/r.git", settings)
    with pytest.raises(SourceError) as err:
        secret.iter_records({})
    assert "hunter2" not in str(err.value)
    assert "***@127.0.0.1" in str(err.value)
    assert not any(settings.git_cache.iterdir())  # no half-made clone left behind


# --- the history split over several git processes ----------------------------------------------


def test_diff_tree_prints_what_git_log_prints(repo: tuple[Path, Git]) -> None:
    """The split's premise: fed rev-list's commits, `git diff-tree` prints `git log`'s bytes
    (merges without numstat, root commits, renames, binary files, empty commits, bad UTF-8)."""
    path, _ = repo
    log = subprocess.run(git_log_command(["HEAD"]), cwd=path, capture_output=True, check=True)
    listed = subprocess.run(["git", "rev-list", "HEAD"], cwd=path, capture_output=True, check=True)
    diff_tree = subprocess.run(
        ["git", "diff-tree", *GIT_DIFF_TREE_OPTIONS],
        cwd=path,
        input=listed.stdout,
        capture_output=True,
        check=True,
    )
    assert log.stdout.count(b"\x00") > 50
    assert diff_tree.stdout == log.stdout


@pytest.mark.parametrize("workers", [2, 3, 8])
def test_split_workers_yield_git_logs_records(repo: tuple[Path, Git], workers: int) -> None:
    path, git = repo
    for _ in range(300):  # enough commits for every worker to take (and steal) a share
        git("commit", "--quiet", "--allow-empty", "-m", "filler")
    old_tip = git("rev-parse", "HEAD~120").strip()
    for rev_range in (["HEAD"], ["HEAD", f"^{old_tip}"]):
        one = list(stream_git_log(path, repo="o/r", rev_range=rev_range))
        split = list(stream_git_log(path, repo="o/r", rev_range=rev_range, workers=workers))
        assert len(split) == len(one)
        key = attrgetter("commit_sha")
        assert sorted(commits(split), key=key) == sorted(commits(one), key=key)


def test_split_reports_gits_error(repo: tuple[Path, Git]) -> None:
    path, _ = repo
    with pytest.raises(SourceError, match=r"git rev-list .*no-such-branch"):
        list(stream_git_log(path, repo="o/r", rev_range=["no-such-branch"], workers=2))


def test_split_stopped_early_leaves_no_git_running(
    repo: tuple[Path, Git], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, git = repo
    for _ in range(200):
        git("commit", "--quiet", "--allow-empty", "-m", "filler")
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    records = stream_git_log(path, repo="o/r", workers=2)
    assert isinstance(next(records), CommitRecord)
    records.close()  # the consumer stops after one record
    assert len(started) == 3  # rev-list and two diff-tree
    assert all(proc.returncode is not None for proc in started)
    assert [t.name for t in threading.enumerate() if t.name.startswith("git-split")] == []


@pytest.mark.parametrize("workers", [1, 2])
def test_git_output_is_fully_buffered_even_if_the_user_asks_otherwise(
    repo: tuple[Path, Git], monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    # Into a pipe, git flushes after every commit unless GIT_FLUSH=0: a write and a reader
    # wake-up per commit, ~8 % of git's time on a large history (benchmarks/ingest.py).
    path, _ = repo
    monkeypatch.setenv("GIT_FLUSH", "1")
    expected = commits(list(stream_git_log(path, repo="o/r")))
    envs: dict[str, str] = {}
    real_popen = subprocess.Popen

    def recording_popen(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        envs[args[1]] = kwargs["env"].get("GIT_FLUSH")
        return real_popen(args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    records = commits(list(stream_git_log(path, repo="o/r", workers=workers)))
    assert sorted(r.commit_sha for r in records) == sorted(r.commit_sha for r in expected)
    if workers == 1:
        assert envs == {"log": "0"}
    else:
        assert envs == {"rev-list": "0", "diff-tree": "0"}


def test_settings_pick_git_workers(
    repo: tuple[Path, Git], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: 16)
    assert Settings(home=tmp_path).git_workers == 4  # one per core, at most 4
    monkeypatch.setattr(config, "usable_cores", lambda: 1)
    assert Settings(home=tmp_path).git_workers == 1
    settings = Settings(home=tmp_path, ingest_git_workers=3)
    assert settings.git_workers == 3
    source = resolve_source(str(repo[0]), settings)
    assert isinstance(source, GitSource)
    assert source.workers == 3
