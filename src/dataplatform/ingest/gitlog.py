"""Stream the commits of a local repository's history as records, parsed as git prints them.

The log is read with ``-z`` so every field and numstat entry ends with NUL, a byte that cannot
occur in commit messages, names or paths; parsing is done by the pure `parser.GitLogParser`.
With one worker, one `git log` process is read incrementally. With more, ``git rev-list`` lists
the range and its commits go to that many ``git diff-tree --stdin`` processes in long runs of
neighbours (the numstat is most of git's work); fed a commit, diff-tree prints exactly what
`git log` prints for it, and the records come out in arrival order.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dataplatform.contracts import QuarantinedRecord
from dataplatform.ingest.errors import SourceError
from dataplatform.ingest.git import failure_message, git_env
from dataplatform.ingest.parser import (
    GIT_LOG_FORMAT,
    GitLogParser,
    ParsedRecord,
    parse_git_log_stream,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# git may write this far ahead into its stdout pipe (Linux's default pipe-max-size). A reader
# thread needs the GIL after every read; while the parser holds it (up to the 5 ms switch
# interval), git would block on the default 64 KiB pipe after a fraction of that.
PIPE_BUFFER_BYTES = 1 << 20
# Commits a split worker takes at a time. With its stdin pipe shrunk to one page, a worker
# holds at most a few hundred commits nobody else can take, so both finish within ~20 ms.
WORKER_CLAIM_COMMITS = 32
_PAGE_BYTES = 4096
# Least bytes handed to the parser at a time (see `_read_chunk`).
READ_GRAIN_BYTES = 1 << 16
# After a short read, the reader sleeps this long before reading on, so that git's 4 KiB writes
# pile up in the pipe: a wake-up (and a turn at the GIL) per few dozen KiB instead of one per
# write, which leaves git and the parser more of the two cores (~1.5 % of the ingest's wall time
# in paired runs). It is also the most it adds after git's last byte.
READ_WAIT_SECONDS = 0.005

# Fixed options so user/system config cannot change what the numbers mean: rename detection on
# (git's default, as in the datasets) with git's default limit and diff algorithm, UTF-8 output.
_DIFF_OPTIONS = (
    "-z",
    "--numstat",
    "-M",
    "-l1000",
    "--diff-algorithm=myers",
    "--date=raw",
    "--no-show-signature",
    "--encoding=UTF-8",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    f"--format=tformat:{GIT_LOG_FORMAT}",
)
# `git log`: no mailmap, no merge diffs (its default).
GIT_LOG_OPTIONS = (*_DIFF_OPTIONS, "--no-mailmap", "--diff-merges=off")
# `git diff-tree --stdin`: the same stream for the commits it is fed. It shows merges only with
# `-m`/`-c`, so they come out as a header without numstat, as in `git log`; `--always` prints
# commits with an empty diff; `--root` diffs root commits against the empty tree (`git log`'s
# log.showRoot default); it never applies a mailmap.
GIT_DIFF_TREE_OPTIONS = ("--stdin", "--always", "-r", "--root", *_DIFF_OPTIONS)


def git_log_command(rev_range: Sequence[str]) -> list[str]:
    """The `git log` argv used by `stream_git_log`."""
    _check_revisions(rev_range)
    return ["git", "log", *GIT_LOG_OPTIONS, "--end-of-options", *rev_range, "--"]


def stream_git_log(
    repo_path: Path,
    *,
    repo: str,
    source: str | None = None,
    rev_range: Sequence[str] = ("HEAD",),
    chunk_size: int = 1 << 20,
    workers: int = 1,
) -> Iterator[ParsedRecord]:
    """Commits of ``git log <rev_range>`` in `repo_path` as records, streamed.

    One worker: newest first, from one `git log`. More: the same records from that many git
    processes (one per core is the point), in arrival order; a quarantined record's `position`
    is still its place in `git log`'s order. Memory stays bounded by `chunk_size` per worker.
    `rev_range` takes any git revisions (``["HEAD", "^<old tip>"]``, ...). Raises `SourceError`
    with git's stderr if git fails (records already yielded stay valid).
    """
    if not rev_range:
        return
    if workers > 1:
        yield from _stream_split(repo_path, repo, source or str(repo_path), rev_range, workers)
        return
    cmd = git_log_command(rev_range)
    name = source or str(repo_path)
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: git never blocks on it
        try:
            proc = subprocess.Popen(
                cmd, cwd=repo_path, env=_stream_env(), stdout=subprocess.PIPE, stderr=stderr
            )
        except FileNotFoundError as exc:
            raise SourceError(f"cannot run git in {repo_path}: {exc}") from exc
        stdout: IO[bytes] = proc.stdout  # type: ignore[assignment]
        _set_pipe_size(stdout, PIPE_BUFFER_BYTES)
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
            raise SourceError(failure_message(cmd[1:], returncode, stderr.read()))


def _stream_env() -> dict[str, str]:
    """`git_env` for a process whose stdout this module streams: output fully buffered.

    Into a pipe, `git log`, `rev-list` and `diff-tree --stdin` flush stdout after every commit
    (``GIT_FLUSH`` unset means "per record unless stdout is a file"): a write(2) and a wake-up
    of the reader per commit, ~8 % of git's own time on a large history. ``GIT_FLUSH=0`` makes
    them write full stdio buffers, as they do into a file.
    """
    return {**git_env(), "GIT_FLUSH": "0"}


def _check_revisions(rev_range: Sequence[str]) -> None:
    for rev in rev_range:
        if not rev or rev.startswith("-"):
            raise ValueError(f"invalid revision {rev!r}")


def _set_pipe_size(pipe: IO[bytes], size: int) -> None:
    """Resize a pipe's kernel buffer (Linux); elsewhere, or when refused, keep the default."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setpipe is None:
        return
    with contextlib.suppress(OSError):  # e.g. above /proc/sys/fs/pipe-max-size: keep 64 KiB
        fcntl.fcntl(pipe.fileno(), setpipe, size)


def _read_chunk(
    stdout: IO[bytes],
    chunk_size: int,
    grain: int = READ_GRAIN_BYTES,
    wait: float = READ_WAIT_SECONDS,
) -> bytes:
    """What git has written so far, at least `grain` bytes (unless at EOF), at most about
    `chunk_size`; ``b""`` at EOF.

    Waiting for a full `chunk_size` would leave up to that much unparsed when git exits, all of
    it work after git's last byte; taking what is there keeps that tail to one grain. Between
    short reads it sleeps `wait` seconds, so that it wakes once per few writes of git's.
    """
    read1 = stdout.read1  # type: ignore[attr-defined]
    data = read1(chunk_size)
    if not data or len(data) >= grain:
        return bytes(data)
    buffer = bytearray(data)
    while len(buffer) < grain:
        time.sleep(wait)
        if not (more := read1(chunk_size - len(buffer))):
            break
        buffer += more
    return bytes(buffer)


def _drained(stdout: IO[bytes], chunk_size: int, ahead: int = 16) -> Iterator[bytes]:
    """Chunks of `stdout`, read by a thread so git never waits while Python parses.

    At most `ahead` chunks are buffered (bounded memory); the reads release the GIL, so git and
    the parser run on both cores instead of taking turns.
    """
    chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    reader = threading.Thread(
        target=_pump, args=(stdout, chunk_size, chunks.put, stop), name="git-log-reader"
    )
    reader.daemon = True
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
        _join_draining([reader], chunks)


def _pump(
    stdout: IO[bytes],
    chunk_size: int,
    put: Callable[[bytes | BaseException], None],
    stop: threading.Event,
) -> None:
    """Reader thread: `put` each chunk of `stdout` (``b""`` last) until EOF or `stop`."""
    try:
        while not stop.is_set():
            chunk = _read_chunk(stdout, chunk_size)
            put(chunk)
            if not chunk:
                return
    except BaseException as exc:  # surfaced to the consumer, never lost in the thread
        put(exc)


def _join_draining(threads: Sequence[threading.Thread], chunks: queue.Queue[Any]) -> None:
    """Join `threads`, emptying `chunks` meanwhile so that none stays blocked putting."""
    while any(t.is_alive() for t in threads):
        try:
            chunks.get_nowait()
        except queue.Empty:
            for thread in threads:
                thread.join(timeout=0.05)


def _stream_split(
    repo_path: Path, repo: str, name: str, rev_range: Sequence[str], workers: int
) -> Iterator[ParsedRecord]:
    """`stream_git_log` over `workers` ``git diff-tree --stdin`` processes fed by ``rev-list``."""
    _check_revisions(rev_range)
    with contextlib.ExitStack() as stack:
        errors = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(workers + 1)]
        try:
            lister = subprocess.Popen(
                ["git", "rev-list", "--end-of-options", *rev_range, "--"],
                cwd=repo_path,
                env=_stream_env(),
                stdout=subprocess.PIPE,
                stderr=errors[0],
            )
            procs = [
                subprocess.Popen(
                    ["git", "diff-tree", *GIT_DIFF_TREE_OPTIONS],
                    cwd=repo_path,
                    env=_stream_env(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                )
                for stderr in errors[1:]
            ]
        except FileNotFoundError as exc:
            raise SourceError(f"cannot run git in {repo_path}: {exc}") from exc
        split = _Split(lister, procs, repo=repo, source=name)
        try:
            yield from split.records()
        finally:
            split.stop()
        _check_exit(lister, errors[0])
        for proc, stderr in zip(procs, errors[1:], strict=True):
            _check_exit(proc, stderr)
        split.check_complete()


def _check_exit(proc: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
    if proc.returncode:
        stderr.seek(0)
        argv = [str(a) for a in proc.args[1:]]  # type: ignore[index]
        raise SourceError(failure_message(argv, proc.returncode, stderr.read()))


@dataclass
class _Worker:
    """One ``git diff-tree --stdin``: the commits handed to it, in order, and its parser."""

    proc: subprocess.Popen[bytes]
    parser: GitLogParser
    starts: list[int] = field(default_factory=list)  # rev-list index of each claim's first
    ends: list[int] = field(default_factory=list)  # commits handed out up to each claim
    handed: int = 0
    emitted: int = 0

    def position(self, ordinal: int) -> int:
        """1-based place in `git log` order of this worker's `ordinal`-th (1-based) record."""
        claim = bisect.bisect_left(self.ends, ordinal)
        if claim == len(self.ends):  # more records than commits: `check_complete` will say so
            return ordinal
        before = self.ends[claim - 1] if claim else 0
        return self.starts[claim] + (ordinal - before)


class _CommitList:
    """``rev-list``'s shas as they arrive, and the part of the list each worker works on.

    Worker 0 starts at the newest commit and follows the list as it grows. Once the list is
    complete, a worker with nothing left takes the older half of the largest remaining part
    (work stealing), so every worker reads long runs of neighbouring commits: git's object
    caches work best on those (claims dealt out in turn cost ~20 % more git CPU). Holds
    41 bytes per commit (65 with SHA-256), not the history.
    """

    def __init__(self, workers: int, claim: int = WORKER_CLAIM_COMMITS) -> None:
        self._claim = claim
        self._data = bytearray()
        self._line = 0  # bytes per listed sha, newline included
        self._count = 0  # complete lines so far
        self._complete = self._stopped = False
        self._cond = threading.Condition()
        self._lo = [0] * workers
        self._hi: list[int | None] = [None] + [0] * (workers - 1)  # None: up to the list's end

    def append(self, data: bytes) -> None:
        """More of rev-list's output (cut anywhere)."""
        with self._cond:
            self._data += data
            if not self._line and b"\n" in self._data:
                self._line = self._data.index(b"\n") + 1
            if self._line:
                self._count = len(self._data) // self._line
            self._cond.notify_all()

    def close(self) -> None:
        """rev-list has ended: the list is complete."""
        with self._cond:
            self._complete = True
            self._hi = [self._count if hi is None else hi for hi in self._hi]
            self._cond.notify_all()

    def stop(self) -> None:
        """Hand out nothing more."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def count(self) -> int:
        """Commits listed so far."""
        return self._count

    def take(self, worker: int) -> tuple[int, bytes]:
        """(index in the list, newline-ended shas) of `worker`'s next few commits; ``b""`` at
        the end. Blocks while the list is still growing and nothing is free."""
        with self._cond:
            while not self._stopped:
                hi = self._hi[worker]
                end = self._count if hi is None else hi
                lo = self._lo[worker]
                if lo < end:
                    stop = min(lo + self._claim, end)
                    self._lo[worker] = stop
                    return lo, bytes(self._data[lo * self._line : stop * self._line])
                if not self._complete:
                    self._cond.wait()
                    continue
                if not self._steal(worker):
                    break
        return 0, b""

    def _steal(self, worker: int) -> bool:
        left = [int(hi or 0) - lo for lo, hi in zip(self._lo, self._hi, strict=True)]
        victim = max(range(len(left)), key=left.__getitem__)
        if left[victim] < 4 * self._claim:  # the owner finishes it before a split would pay
            return False
        middle = self._lo[victim] + left[victim] // 2
        self._lo[worker], self._hi[worker] = middle, self._hi[victim]
        self._hi[victim] = middle
        return True


class _Split:
    """Hands ``rev-list``'s commits to the workers and parses their output as it arrives.

    A thread reads rev-list into a `_CommitList`; a feeder thread per worker takes its next
    commits from it and writes them to the worker's stdin; a reader thread per worker queues
    its stdout chunks; `records` parses them on the caller's thread.
    """

    def __init__(
        self,
        lister: subprocess.Popen[bytes],
        procs: list[subprocess.Popen[bytes]],
        *,
        repo: str,
        source: str,
        chunk_size: int = 1 << 18,
    ) -> None:
        self._lister = lister
        self._listed: IO[bytes] = lister.stdout  # type: ignore[assignment]
        self._list = _CommitList(len(procs))
        self._workers = [_Worker(proc, GitLogParser(repo=repo, source=source)) for proc in procs]
        self._chunks: queue.Queue[tuple[int, bytes | BaseException]] = queue.Queue(
            maxsize=16 * len(procs)
        )
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._list_commits, name="git-split-list", daemon=True)
        ]
        for number, worker in enumerate(self._workers):
            stdin: IO[bytes] = worker.proc.stdin  # type: ignore[assignment]
            stdout: IO[bytes] = worker.proc.stdout  # type: ignore[assignment]
            _set_pipe_size(stdin, _PAGE_BYTES)
            _set_pipe_size(stdout, PIPE_BUFFER_BYTES)
            put = functools.partial(self._put, number)
            self._threads += [
                threading.Thread(
                    target=self._feed, args=(number, worker), name="git-split-feed", daemon=True
                ),
                threading.Thread(
                    target=_pump,
                    args=(stdout, chunk_size, put, self._stop),
                    name="git-split-read",
                    daemon=True,
                ),
            ]
        for thread in self._threads:
            thread.start()

    def _list_commits(self) -> None:
        try:
            while data := self._listed.read1(1 << 16):  # type: ignore[attr-defined]
                self._list.append(data)
        except (OSError, ValueError):
            pass  # killed or stopping; rev-list's exit status says why
        finally:
            self._list.close()

    def _feed(self, number: int, worker: _Worker) -> None:
        stdin: IO[bytes] = worker.proc.stdin  # type: ignore[assignment]
        try:
            while not self._stop.is_set():
                start, shas = self._list.take(number)
                if not shas:
                    break
                worker.starts.append(start)
                worker.handed += shas.count(b"\n")
                worker.ends.append(worker.handed)  # appended before git can print them
                stdin.write(shas)
                stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the worker died (its exit status says why) or we are stopping
        finally:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

    def _put(self, number: int, item: bytes | BaseException) -> None:
        self._chunks.put((number, item))

    def records(self) -> Iterator[ParsedRecord]:
        """Every worker's records, parsed as their output arrives."""
        running = len(self._workers)
        while running:
            number, item = self._chunks.get()
            if isinstance(item, BaseException):
                raise item
            worker = self._workers[number]
            if item:
                records = worker.parser.feed(item)
            else:
                running -= 1
                records = worker.parser.finish()
            for record in records:
                worker.emitted += 1
                if isinstance(record, QuarantinedRecord):
                    record = dataclasses.replace(record, position=worker.position(record.position))
                yield record
        for worker in self._workers:
            worker.proc.wait()
        self._lister.wait()

    def check_complete(self) -> None:
        """`SourceError` unless every worker printed one record per commit handed to it."""
        handed = sum(w.handed for w in self._workers)
        if handed != self._list.count:
            raise SourceError(f"git rev-list listed {self._list.count} commits, {handed} were read")
        for worker in self._workers:
            if worker.emitted != worker.handed:
                raise SourceError(
                    f"git diff-tree printed {worker.emitted} commits for the {worker.handed} "
                    "it was given"
                )

    def stop(self) -> None:
        """Kill what still runs (the consumer stopped early or failed) and join the threads."""
        self._stop.set()
        self._list.stop()
        for proc in (self._lister, *(w.proc for w in self._workers)):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        _join_draining(self._threads, self._chunks)
        for stream in (self._listed, *(w.proc.stdout for w in self._workers)):
            if stream is not None:
                stream.close()
