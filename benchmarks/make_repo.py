"""Build a large git repository by replaying the real commit datasets with `git fast-import`.

    python benchmarks/make_repo.py /tmp/bench-repo.git [--datasets FILE ...]

Each dataset (default: the four files shipped in data/commits) is replayed oldest first
on its own branch, under its own folder (``<owner>__<name>/``), with the real author names,
e-mails, dates (including psf/requests' malformed ``+051800``) and messages, byte for byte.
Every non-merge commit gets file changes whose ``git log --numstat`` matches the record's
files_changed / insertions / deletions (deletions can fall short when the replayed files hold
fewer lines; binary files are not reproduced). Merges are ``--no-ff`` merges of the commits
since the previous merge, made on a side branch. ``main`` is an octopus merge of the replayed
histories, so ``git log main`` walks all of them. Committers are the authors (datasets have no
committer). The result is a bare repository; an existing one is reused (idempotent).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dataplatform.ingest.parser import parse_iso_timestamp

DEFAULT_DATASETS = Path(__file__).resolve().parents[1] / "data" / "commits"  # shipped copy
CAP_LINES = 200  # when replayed files average more lines than this, new files are created
_TZ_RE = re.compile(r"([+-])(\d+):(\d\d)\Z")


@dataclass
class FileState:
    lines: list[bytes]
    mark: int = 0
    executable: bool = False


@dataclass
class RepoReplay:
    """Replays one dataset into fast-import commands; tracks files and branch tips."""

    prefix: str
    ref: str
    out: IO[bytes]
    marks: Iterator[int]
    files: dict[str, FileState] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    cursor: int = 0
    line_counter: int = 0
    total_lines: int = 0
    main_tip: int | None = None  # last commit on the main line (a merge or the root)
    run_tip: int | None = None  # last commit of the current side run (not merged yet)
    merged_tip: int | None = None  # second parent of the last merge
    run_touched: set[str] = field(default_factory=set)
    commits: int = 0
    deletions_missed: int = 0

    # --- files ---------------------------------------------------------------------------
    def _new_lines(self, count: int) -> list[bytes]:
        start = self.line_counter
        self.line_counter += count
        return [b"%x\n" % n for n in range(start, start + count)]

    def _emit_blob(self, state: FileState) -> None:
        data = b"".join(state.lines)
        state.mark = next(self.marks)
        self.out.write(b"blob\nmark :%d\ndata %d\n%s\n" % (state.mark, len(data), data))

    def _pick_existing(self, count: int, need_lines: int) -> list[str]:
        if count <= 0 or not self.order:
            return []
        size = len(self.order)
        window = [self.order[(self.cursor + k) % size] for k in range(min(size, count))]
        self.cursor = (self.cursor + count) % size
        if need_lines and sum(len(self.files[p].lines) for p in window) < need_lines:
            # Deletions need lines to delete: take the largest files instead.
            window = sorted(self.order, key=lambda p: len(self.files[p].lines), reverse=True)
        return window[:count]

    def modify_command(self, path: str) -> bytes:
        """fast-import ``M`` line putting the file's latest blob and mode at `path`."""
        state = self.files[path]
        mode = b"100755" if state.executable else b"100644"
        return b"M %s :%d %s\n" % (mode, state.mark, path.encode())

    def _changes(self, files: int, added: int, deleted: int) -> list[str]:
        """Emit blobs for one commit; return the paths it changes."""
        if files == 0:
            return []
        n_new = max(0, files - len(self.order))
        average = self.total_lines / len(self.order) if self.order else 0
        if added > deleted and average > CAP_LINES and n_new < files:
            n_new = max(n_new, min(files - 1, 1 + added // (4 * CAP_LINES))) or 1
        targets = self._pick_existing(files - n_new, deleted)
        for _ in range(n_new):
            path = f"{self.prefix}/f{len(self.order):05d}.txt"
            self.files[path] = FileState(lines=[])
            self.order.append(path)
            targets.append(path)
        remaining = deleted
        share, extra = divmod(added, len(targets))
        for index, path in enumerate(targets):
            state = self.files[path]
            new_file = state.mark == 0
            cut = min(remaining, len(state.lines))
            remaining -= cut
            adds = share + (1 if index < extra else 0)
            if cut or adds or new_file:
                del state.lines[:cut]
                state.lines.extend(self._new_lines(adds))
                self.total_lines += adds - cut
                self._emit_blob(state)
            else:  # a 0/0 numstat line: flip the executable bit
                state.executable = not state.executable
        self.deletions_missed += remaining
        return targets

    # --- commits -------------------------------------------------------------------------
    def _commit(self, row: dict[str, Any], parents: list[int], commands: list[bytes]) -> int:
        mark = next(self.marks)
        name = _person(str(row["author_name"]), str(row["author_email"]))
        message = str(row["message"]).encode("utf-8", errors="surrogateescape")
        out = self.out
        out.write(b"commit %s\nmark :%d\n" % (self.ref.encode(), mark))
        out.write(b"author %s %s\n" % (name, _raw_date(str(row["author_time"]))))
        out.write(b"committer %s %s\n" % (name, _raw_date(str(row["committer_time"]))))
        out.write(b"data %d\n%s\n" % (len(message), message))
        if parents:
            out.write(b"from :%d\n" % parents[0])
            for parent in parents[1:]:
                out.write(b"merge :%d\n" % parent)
        out.writelines(commands)
        out.write(b"\n")
        self.commits += 1
        return mark

    def replay(self, row: dict[str, Any]) -> None:
        parent_count: int = row["parent_count"]
        if parent_count >= 2 and self.main_tip is not None:
            self._merge(row, parent_count)
            return
        paths = self._changes(row["files_changed"], row["insertions"], row["deletions"])
        commands = [self.modify_command(p) for p in paths]
        if self.main_tip is None:  # the root commit (diffed against the empty tree)
            self.main_tip = self._commit(row, [], commands)
            return
        base = self.run_tip if self.run_tip is not None else self.main_tip
        self.run_tip = self._commit(row, [base], commands)
        self.run_touched.update(paths)

    def _merge(self, row: dict[str, Any], parent_count: int) -> None:
        assert self.main_tip is not None
        if self.run_tip is not None:
            second = self.run_tip
            # The merge's tree = main + the side run: list the touched files' latest blobs.
            commands = [self.modify_command(p) for p in sorted(self.run_touched)]
        else:  # nothing since the last merge: re-merge an ancestor (still a 2-parent commit)
            second = self.merged_tip if self.merged_tip is not None else self.main_tip
            commands = []
        parents = [self.main_tip]
        for candidate in (second, self.merged_tip):
            if candidate is not None and candidate not in parents:
                parents.append(candidate)
            if len(parents) >= parent_count:
                break
        self.main_tip = self._commit(row, parents, commands)
        self.merged_tip = second
        self.run_tip = None
        self.run_touched = set()

    def finish(self) -> int | None:
        """Merge a trailing side run (fast-forward) and return the branch tip."""
        if self.run_tip is not None:
            self.main_tip = self.run_tip
            self.run_tip = None
        if self.main_tip is not None:
            self.out.write(b"reset %s\nfrom :%d\n\n" % (self.ref.encode(), self.main_tip))
        return self.main_tip


def _person(name: str, email: str) -> bytes:
    clean_name = re.sub(r"[<>\n]", "", name).strip()
    clean_email = re.sub(r"[<>\n]", "", email)
    return f"{clean_name} <{clean_email}>".encode("utf-8", errors="surrogateescape")


def _raw_date(iso: str) -> bytes:
    """ISO date of a dataset → fast-import raw ``<seconds> <±HHMM>`` (malformed kept as git had)."""
    at, _ = parse_iso_timestamp(iso)
    match = _TZ_RE.search(iso)
    if match is None:
        tz = "+0000"
    else:
        sign, hours, minutes = match.groups()
        tz = f"{sign}{hours.zfill(2 if len(hours) <= 2 else 4)}{minutes}"
    return b"%d %s" % (int(at.timestamp()), tz.encode())


def _read_rows(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if compressed else path.open("rb") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    rows.reverse()  # datasets are newest first; replay oldest first
    return rows


def build(output: Path, datasets: list[Path]) -> dict[str, int]:
    """Write the repository at `output`; return commit counts per dataset."""
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    subprocess.run(["git", "init", "--quiet", "--bare", str(work)], check=True)
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--date-format=raw-permissive"],
        cwd=work,
        stdin=subprocess.PIPE,
        bufsize=1 << 20,
    )
    try:
        assert proc.stdin is not None
        counts = _replay_all(proc.stdin, datasets)
        proc.stdin.close()
        if proc.wait() != 0:
            raise SystemExit(f"git fast-import failed (exit {proc.returncode})")
        subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], cwd=work, check=True)
        work.rename(output)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return counts


def _replay_all(out: IO[bytes], datasets: list[Path]) -> dict[str, int]:
    marks = iter(range(1, 1 << 62))
    counts: dict[str, int] = {}
    tips: list[tuple[RepoReplay, int]] = []
    for path in datasets:
        rows = _read_rows(path)
        repo = str(rows[0]["repo"]) if rows else path.stem
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "__", repo)
        replay = RepoReplay(prefix=slug, ref=f"refs/heads/{slug}", out=out, marks=marks)
        for row in rows:
            replay.replay(row)
        tip = replay.finish()
        if tip is not None:
            tips.append((replay, tip))
        counts[repo] = replay.commits
        if replay.deletions_missed:
            print(f"{repo}: {replay.deletions_missed} deleted lines could not be replayed")
    if tips:
        _octopus(out, tips, next(marks))
    return counts


def _octopus(out: IO[bytes], tips: list[tuple[RepoReplay, int]], mark: int) -> None:
    """``main``: one commit whose parents are all replayed histories, tree = their union."""
    out.write(b"commit refs/heads/main\nmark :%d\n" % mark)
    when = b"%d +0000" % int(time.time())
    person = b"make_repo <make_repo@localhost>"
    out.write(b"author %s %s\ncommitter %s %s\n" % (person, when, person, when))
    message = b"Merge the replayed histories\n"
    out.write(b"data %d\n%s\n" % (len(message), message))
    out.write(b"from :%d\n" % tips[0][1])
    for _, tip in tips[1:]:
        out.write(b"merge :%d\n" % tip)
    for replay, _ in tips[1:]:
        out.writelines(replay.modify_command(path) for path in replay.files)
    out.write(b"\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="path of the bare repository to create")
    parser.add_argument(
        "--datasets",
        type=Path,
        nargs="+",
        default=sorted(DEFAULT_DATASETS.glob("*.jsonl.gz")),
        help="commit dataset files to replay (default: the four shared ones)",
    )
    args = parser.parse_args(argv)
    output: Path = args.output.resolve()
    if output.exists() and _has_main(output):
        print(f"reusing {output}")
        return 0
    if output.exists():
        print(f"{output} exists and is not a repository made by this script", file=sys.stderr)
        return 1
    started = time.perf_counter()
    counts = build(output, list(args.datasets))
    elapsed = time.perf_counter() - started
    total = sum(counts.values())
    print(f"built {output}: {total} replayed commits + 1 octopus merge in {elapsed:.1f}s")
    for repo, count in counts.items():
        print(f"  {repo}: {count}")
    return 0


def _has_main(path: Path) -> bool:
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "refs/heads/main"],
        cwd=path,
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


if __name__ == "__main__":
    raise SystemExit(main())
