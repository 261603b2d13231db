"""How the split hands out a history: `_CommitList` (work stealing) and quarantine positions."""

from __future__ import annotations

import itertools
import os
import random
import threading
import time

from dataplatform.contracts import QuarantinedRecord
from dataplatform.ingest.gitlog import _CommitList, _read_chunk, _Worker
from dataplatform.ingest.parser import GitLogParser

SHAS = [f"{i:040x}".encode() + b"\n" for i in range(1000)]


def _append_in_random_cuts(commits: _CommitList, rng: random.Random) -> None:
    data = b"".join(SHAS)
    at = 0
    while at < len(data):
        step = rng.randint(1, 300)  # cuts anywhere, also inside a sha
        commits.append(data[at : at + step])
        at += step
    commits.close()


def _take_all(commits: _CommitList, worker: int, out: list[tuple[int, bytes]]) -> None:
    while True:
        start, shas = commits.take(worker)
        if not shas:
            return
        out.append((start, shas))


def test_every_commit_is_handed_out_once_in_long_runs() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        commits = _CommitList(workers=3, claim=16)
        taken: list[list[tuple[int, bytes]]] = [[], [], []]
        threads = [
            threading.Thread(target=_take_all, args=(commits, w, taken[w])) for w in range(3)
        ]
        for thread in threads:
            thread.start()
        _append_in_random_cuts(commits, rng)
        for thread in threads:
            thread.join(timeout=10)
            assert not thread.is_alive()
        handed: dict[int, bytes] = {}
        for claims in taken:
            for start, shas in claims:
                for offset, sha in enumerate(shas.splitlines(keepends=True)):
                    assert start + offset not in handed  # never twice
                    handed[start + offset] = sha
        assert [handed[i] for i in range(len(SHAS))] == SHAS  # all, at their list index
        assert commits.count == len(SHAS)
        # Runs of neighbours, not claims dealt out in turn: a handful of runs per worker.
        for claims in taken:
            jumps = [b[0] - (a[0] + a[1].count(b"\n")) for a, b in itertools.pairwise(claims)]
            assert sum(1 for jump in jumps if jump) <= 6


def test_first_worker_follows_the_list_and_others_wait_for_its_end() -> None:
    commits = _CommitList(workers=2, claim=4)
    commits.append(b"".join(SHAS[:10]))
    assert commits.take(0) == (0, b"".join(SHAS[:4]))
    second: list[tuple[int, bytes]] = []
    waiting = threading.Thread(target=lambda: second.append(commits.take(1)))
    waiting.start()
    waiting.join(timeout=0.2)
    assert waiting.is_alive()  # nothing to steal until the list is complete
    commits.append(b"".join(SHAS[10:200]))
    commits.close()
    waiting.join(timeout=5)
    start, shas = second[0]
    assert start == 4 + (200 - 4) // 2  # the older half of what worker 0 had left
    assert shas == b"".join(SHAS[start : start + 4])


def test_stop_releases_waiting_workers() -> None:
    commits = _CommitList(workers=2)
    result: list[tuple[int, bytes]] = []
    waiting = threading.Thread(target=lambda: result.append(commits.take(1)))
    waiting.start()
    commits.stop()
    waiting.join(timeout=5)
    assert result == [(0, b"")]


def test_quarantined_record_keeps_its_place_in_git_log_order() -> None:
    worker = _Worker(proc=None, parser=GitLogParser(repo="o/r", source="s"))  # type: ignore[arg-type]
    for start, count in ((0, 32), (32, 32), (500, 10), (700, 5)):
        worker.starts.append(start)
        worker.handed += count
        worker.ends.append(worker.handed)
    assert worker.position(1) == 1
    assert worker.position(32) == 32
    assert worker.position(33) == 33
    assert worker.position(65) == 501  # first of the claim that starts at index 500
    assert worker.position(74) == 510
    assert worker.position(75) == 701
    record = QuarantinedRecord(source="s", position=65, reason="r", raw="x")
    assert worker.position(record.position) == 501


def test_read_chunk_takes_what_git_wrote_without_waiting_for_a_full_chunk() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        writer.write(b"a" * 100)
        writer.flush()
        got: list[bytes] = []
        thread = threading.Thread(target=lambda: got.append(_read_chunk(reader, 1 << 20, 300)))
        thread.start()
        thread.join(timeout=0.2)
        assert thread.is_alive()  # 100 bytes are less than the 300-byte grain: it waits
        writer.write(b"b" * 250)
        writer.flush()
        thread.join(timeout=5)
        assert got == [b"a" * 100 + b"b" * 250]  # at least a grain, without waiting for 1 MiB
        writer.write(b"c" * 1000)
        writer.flush()
        assert _read_chunk(reader, 400, 300) == b"c" * 400  # never more than the chunk size
        writer.close()
        assert _read_chunk(reader, 1 << 20, 300) == b"c" * 600  # EOF: the rest, then b""
        assert _read_chunk(reader, 1 << 20, 300) == b""


def test_read_chunk_lets_small_writes_pile_up_between_reads() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as pipe, os.fdopen(write_fd, "wb", buffering=0) as writer:
        reads: list[int] = []

        class CountingReader:
            def read1(self, size: int) -> bytes:
                data = pipe.read1(size)
                reads.append(len(data))
                return data

        def write_slowly() -> None:
            for _ in range(10):  # like git's 4 KiB writes, a few milliseconds apart
                writer.write(b"x" * 100)
                time.sleep(0.002)

        thread = threading.Thread(target=write_slowly)
        thread.start()
        chunk = _read_chunk(CountingReader(), 1 << 20, 1000, wait=0.5)  # type: ignore[arg-type]
        thread.join()
        assert chunk == b"x" * 1000
        # The first write, then the nine that came while it slept (one read per write without
        # the sleep); a writer slowed down by a busy machine may need one more.
        assert len(reads) <= 3
