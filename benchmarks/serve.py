"""Benchmark: `dataplatform serve` vs `mlflow models serve` of the same model version.

Both run as real HTTP servers on 127.0.0.1 (separate processes, started here, stopped at the end).
Load: single-commit predictions over keep-alive HTTP/1.1 from a small asyncio client, closed loop
at concurrency 1, 16 and 64 (throughput + p50/p95/p99), then open loop at a fixed 200 req/s
(latency measured from the scheduled send time, so queueing counts; `send_lag` says how late
the generator itself was in sending, which is counted against the server). Bounded: `--seconds`
per level. Prints both tables and our/mlflow ratios.

Fairness: our server takes the ingestion record and computes the features itself; MLflow gets
the ready feature row (`dataframe_split`), which is less work than ours.

    DATAPLATFORM_HOME=/tmp/x .venv/bin/python benchmarks/serve.py --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL = "commit-classifier"
COMMIT = {
    "repo": "pallets/flask",
    "commit_sha": "0123456789abcdef0123456789abcdef01234567",
    "message": "Merge pull request #4711 from someone/fix-branch\n\nFix the thing",
    "author_name": "Someone",
    "authored_at": "2024-03-01T10:15:00+01:00",
    "committed_at": "2024-03-01T10:15:30+01:00",
    "files_changed": 0,
    "lines_added": 0,
    "lines_deleted": 0,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(port: int, path: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on :{port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server on :{port} not ready after {timeout}s")


def _request(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Conn:
    """One keep-alive HTTP/1.1 connection; `call` returns the status code."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port, self.request = port, request

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def call(self) -> int:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(
    port: int, request: bytes, concurrency: int, seconds: float
) -> dict[str, Any]:
    conns = [Conn(port, request) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(conn: Conn) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            t = time.perf_counter()
            if await conn.call() != 200:
                errors += 1
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return _summary(latencies, elapsed, errors)


async def fixed_rate(port: int, request: bytes, rate: float, seconds: float) -> dict[str, Any]:
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(64):
        conn = Conn(port, request)
        await conn.open()
        pool.put_nowait(conn)
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0
    n = int(rate * seconds)
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        conn = await pool.get()
        lags.append(time.perf_counter() - scheduled)  # generator or connection-pool wait
        try:
            if await conn.call() != 200:
                errors += 1
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - scheduled)  # from the scheduled send time

    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().close()
    lag = sorted(lags)
    return {
        **_summary(latencies, elapsed, errors),
        "send_lag_p99_ms": lag[min(len(lag) - 1, int(0.99 * len(lag)))] * 1000 if lag else 0.0,
    }


def _summary(latencies: list[float], elapsed: float, errors: int) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(p / 100 * len(ms)))] if ms else float("nan")

    return {
        "requests": len(ms),
        "errors": errors,
        "rps": len(ms) / elapsed if elapsed else 0.0,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


def _feature_row(home: Path) -> dict[str, int]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from dataplatform.serve.api.schemas import CommitIn
    from dataplatform.serve.featurize import FEATURE_COLUMNS, compute_features

    frame = compute_features([CommitIn.model_validate(COMMIT).to_record()])
    return {c: int(frame[c].iloc[0]) for c in FEATURE_COLUMNS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("DATAPLATFORM_HOME", ".dataplatform"))
    parser.add_argument("--version", default=None, help="model version (default: latest)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per load level")
    parser.add_argument("--levels", default="1,16,64")
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (cpus={os.cpu_count()})")
    home = Path(args.home).resolve()
    python = sys.executable
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    env = {**os.environ, "DATAPLATFORM_HOME": str(home), "MLFLOW_TRACKING_URI": tracking,
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           # `mlflow models serve` execs `uvicorn` from PATH: use this venv's.
           "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip

    from mlflow import MlflowClient

    client = MlflowClient(tracking, tracking)
    version = args.version or max(
        int(v.version) for v in client.search_model_versions(f"name='{MODEL}'")
    )
    client.set_registered_model_alias(MODEL, "production", str(version))
    features = _feature_row(home)

    ours_port, mlflow_port = _free_port(), _free_port()
    logs = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    ours = subprocess.Popen(
        [python, "-m", "dataplatform.serve.cli", "--port", str(ours_port),
         "--reload-interval", "0", "--canary-share", "0", "--no-shadow", "--log-level", "warning"],
        env={**env, "DATAPLATFORM_SERVE_PREDICTION_LOG_SAMPLE_RATE": "0"},
        stdout=(logs / "ours.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    mlflow_bin = str(Path(python).with_name("mlflow"))
    theirs = subprocess.Popen(
        [mlflow_bin, "models", "serve", "-m", f"models:/{MODEL}/{version}", "--env-manager",
         "local", "-h", "127.0.0.1", "-p", str(mlflow_port), "--workers", "1"],
        env=env, stdout=(logs / "mlflow.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_http(ours_port, "/ready", 120, ours)
        _wait_http(mlflow_port, "/ping", 120, theirs)
        targets = {
            "dataplatform": _request(
                ours_port, "/api/v1/predict", json.dumps({"commits": [COMMIT]}).encode()
            ),
            "mlflow": _request(
                mlflow_port, "/invocations",
                json.dumps({"dataframe_split": {"columns": list(features),
                                                "data": [list(features.values())]}}).encode(),
            ),
        }  # fmt: skip
        ports = {"dataplatform": ours_port, "mlflow": mlflow_port}
        results: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in targets}
        for name, request in targets.items():
            asyncio.run(closed_loop(ports[name], request, 4, 1.0))  # warm-up
            for level in (int(x) for x in args.levels.split(",")):
                results[name][f"c{level}"] = asyncio.run(
                    closed_loop(ports[name], request, level, args.seconds)
                )
            results[name][f"{args.rate:g}rps"] = asyncio.run(
                fixed_rate(ports[name], request, args.rate, args.seconds)
            )
    finally:
        for proc in (ours, theirs):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    _print(results, version, args)


def _print(results: dict[str, dict[str, dict[str, Any]]], version: Any, args: Any) -> None:
    print(f"\nmodel {MODEL} v{version}; {args.seconds:g}s per level; cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f}")  # fmt: skip
    print(
        f"{'server':<13}{'load':<9}{'req':>7}{'err':>5}{'req/s':>9}{'p50':>8}{'p95':>8}{'p99':>8}"
    )
    for name, levels in results.items():
        for level, r in levels.items():
            print(f"{name:<13}{level:<9}{r['requests']:>7}{r['errors']:>5}{r['rps']:>9.1f}"
                  f"{r['p50_ms']:>8.2f}{r['p95_ms']:>8.2f}{r['p99_ms']:>8.2f}")  # fmt: skip
    for name, levels in results.items():
        for level, r in levels.items():
            if "send_lag_p99_ms" in r:
                lag = r["send_lag_p99_ms"]
                print(f"{name} {level}: send lag p99 {lag:.2f} ms (generator + free-conn wait)")
    print("\nratios dataplatform / mlflow:")
    for level in results["dataplatform"]:
        ours, theirs = results["dataplatform"][level], results["mlflow"][level]
        print(f"  {level:<8} throughput x{ours['rps'] / theirs['rps']:.2f}   "
              f"p99 x{ours['p99_ms'] / theirs['p99_ms']:.2f}")  # fmt: skip
    print(json.dumps(results, indent=None))


if __name__ == "__main__":
    main()
