"""Intake over HTTP: requests/s and latency with and without group commit, on PostgreSQL and SQLite, next to
the parse-only ceiling; then the audit history latency of a 100-event proposal and projection catch-up.

    .venv/bin/python bench/intake.py [--seconds 8] [--connections 64]

wrk (Debian package `wrk`) drives the load on loopback, bounded by time. After each run the script checks that
the number of stored runs equals the number of 201 answers and that `dobby projections verify` passes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, fresh_postgres, fresh_sqlite, record
from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.resources import read_manifest

DOBBY = str(Path(sys.executable).parent / "dobby")
FAMILIES = json.dumps(dict(read_manifest().families), separators=(",", ":"))
RESULT = re.compile(r"RESULT requests=(\d+) created=(\d+) other=(\d+) rps=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+)")


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, cwd: Path = ROOT) -> Iterator[str]:
    process = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                probe = httpx.post(
                    f"{url}/api/v1/learning/signals/intake",
                    content=b"{}",
                    headers={"content-type": "application/json"},
                    timeout=1,
                )
                if probe.status_code != 503:  # up, and out of warmup
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(15)


def wrk(url: str, seconds: int, connections: int, tag: str) -> dict[str, float]:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(ROOT / "bench/lua/intake.lua"), url],
        capture_output=True,
        text=True,
        env={**os.environ, "DOBBY_BENCH_FAMILIES": FAMILIES, "DOBBY_BENCH_TAG": tag},
        timeout=seconds + 60,
        check=True,
    ).stdout
    found = RESULT.search(output)
    assert found, output
    requests, created, other, rps, p50, p99 = found.groups()
    return {
        "requests": int(requests),
        "created": int(created),
        "other": int(other),
        "rps": float(rps),
        "p50": float(p50),
        "p99": float(p99),
    }


def dobby_env(database_url: str, port: int, group_commit: str) -> dict[str, str]:
    return {
        "DOBBY_DATABASE_URL": database_url,
        "DOBBY_PORT": str(port),
        "DOBBY_GROUP_COMMIT": group_commit,
        "DOBBY_BOBBIN_PATH": "",
        "DOBBY_SERVICE_MODE": "promotion_enabled",
    }


def check_after(database_url: str, created: int, connections: int) -> str:
    env = {**os.environ, "DOBBY_DATABASE_URL": database_url, "DOBBY_BOBBIN_PATH": ""}
    subprocess.run([DOBBY, "process", "--seconds", "0.1"], env=env, cwd=ROOT, capture_output=True, check=True)
    deadline = time.monotonic() + 120
    while True:
        status = subprocess.run(
            [DOBBY, "projections", "status"], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        lags = [int(line.split()[2]) for line in status.splitlines()[1:] if line.strip()]
        if all(lag == 0 for lag in lags) or time.monotonic() > deadline:
            break
        subprocess.run([DOBBY, "process", "--seconds", "2"], env=env, cwd=ROOT, capture_output=True, check=True)
    verify = subprocess.run(
        [DOBBY, "projections", "verify"], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    stored = _accepted(database_url)
    in_flight = stored - created
    ok = verify.returncode == 0 and 0 <= in_flight <= connections
    return (
        f"verify {'passed' if verify.returncode == 0 else 'FAILED'}; stored runs {stored:,} = 201 answers "
        f"{created:,} + {in_flight} in flight when wrk stopped" + ("" if ok else "  ← LOSS OR EXCESS")
    )


def _accepted(database_url: str) -> int:
    system = build_system(Settings(database_url=database_url, bobbin_path=None))
    try:
        log = system.engine.context.uow.log
        count, after = 0, 0
        while batch := log.recorder.select_notifications(start=after, limit=5000, inclusive_of_start=False):
            count += sum(1 for n in batch if n.topic.endswith(":RunRecorded"))
            after = batch[-1].id
        return count
    finally:
        system.close()


def intake_rows(backend: str, database_url: str, seconds: int, connections: int) -> list[str]:
    rows = []
    figures: dict[str, dict[str, float]] = {}
    for group_commit in ("on", "off"):
        port = free_port()
        with server([DOBBY, "serve", "--no-background"], dobby_env(database_url, port, group_commit), port) as url:
            result = wrk(url, seconds, connections, f"{backend}-{group_commit}-{time.time_ns()}")
        figures[group_commit] = result
        checked = check_after(database_url, int(sum(f["created"] for f in figures.values())), 2 * connections)
        rows.append((group_commit, result, checked))
    ratio = figures["on"]["rps"] / figures["off"]["rps"]
    lines = []
    for group_commit, result, checked in rows:
        lines.append(
            f"| {backend}, group commit {group_commit} | {result['rps']:,.0f} | {result['p50']:.1f} | "
            f"{result['p99']:.1f} | {result['other']} | {checked} |"
        )
    lines.append(f"| {backend}: group commit on ÷ off | {ratio:.1f}× | | | | |")
    return lines


def two_workers(database_url: str, seconds: int, connections: int) -> str:
    port = free_port()
    command = [DOBBY, "serve", "--no-background", "--workers", "2"]
    with server(command, dobby_env(database_url, port, "on"), port) as url:
        result = wrk(url, seconds, connections, f"workers-{time.time_ns()}")
    return (
        f"| PostgreSQL, group commit on, `--workers 2` | {result['rps']:,.0f} | {result['p50']:.1f} | "
        f"{result['p99']:.1f} | {result['other']} | |"
    )


def open_loop(database_url: str, rate: int, seconds: int, command: list[str]) -> dict[str, Any]:
    """bench/fixed_rate.py against a dobby started with `command`: achieved rate, p50, p99, requests, created."""
    port = free_port()
    with server(command, dobby_env(database_url, port, "on"), port) as url:
        output = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench/fixed_rate.py"),
                url,
                "--rate",
                str(rate),
                "--seconds",
                str(seconds),
                "--families",
                FAMILIES,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 120,
        ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def fixed_rate(database_url: str, rate: int, seconds: int) -> str:
    result = open_loop(database_url, rate, seconds, [DOBBY, "serve", "--no-background"])
    return (
        f"| PostgreSQL, group commit on, open loop at {rate:,}/s | {result['achieved']:,.0f} | "
        f"{result['p50']:.1f} | {result['p99']:.1f} | {result['requests'] - result['created']} | |"
    )


def history_latency(database_url: str) -> str:
    """p50/p99 over HTTP of GET …/history for a proposal with 100 events (approve-checks that stay pending)."""
    port = free_port()
    env = dobby_env(database_url, port, "on")
    with tempfile.TemporaryDirectory() as approvals:
        env["DOBBY_WARP_APPROVALS_DIR"] = approvals
        with server([DOBBY, "serve", "--no-background"], env, port) as url, httpx.Client(base_url=url) as client:
            families = json.loads(FAMILIES)
            target = {"type": "prompt_template", "id": f"h{time.time_ns()}"}
            replay = client.post(
                "/api/v1/learning/replay/evaluate",
                json={
                    "tenant_id": "hist",
                    "target": target,
                    "family_versions": families,
                    "metrics": {"baseline": {"a": 1}, "candidate": {"a": 2}},
                    "threshold_contract": {"mode": "all", "metrics": {"a": {"direction": "increase"}}},
                    "workload_similar": True,
                },
            ).json()
            proposal = client.post(
                "/api/v1/learning/promotions/propose",
                json={
                    "tenant_id": "hist",
                    "replay_id": replay["replay_id"],
                    "target": target,
                    "risk": "low",
                    "change": {"c": 1},
                    "baseline": {"c": 0},
                },
            ).json()
            pid = proposal.get("proposal_id")
            if pid is None:
                return f"history: could not create a proposal: {proposal}"
            for _ in range(99):
                client.post("/api/v1/learning/promotions/approve-check", json={"proposal_id": pid})
            timings = []
            for _ in range(200):
                started = time.perf_counter()
                answer = client.get(f"/api/v1/learning/proposals/{pid}/history")
                timings.append((time.perf_counter() - started) * 1000)
            events = len(answer.json()["events"])
            health = []
            for _ in range(200):
                started = time.perf_counter()
                client.get("/health")
                health.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p50, p99 = statistics.median(timings), timings[int(len(timings) * 0.99) - 1]
    baseline = statistics.median(health)
    return (
        f"| audit history, {events} events | p50 {p50:.1f} ms | p99 {p99:.1f} ms | "
        f"GET /health p50 {baseline:.2f} ms (ratio {p50 / baseline:.0f}×) |"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/intake.py needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    port = free_port()
    with server([sys.executable, str(ROOT / "bench/ceiling.py"), str(port)], {}, port) as url:
        ceiling = wrk(url, args.seconds, args.connections, "ceiling")
    lines = [
        f"wrk -t2 -c{args.connections} -d{args.seconds}s on loopback; API served by `dobby serve --no-background`",
        "(uvicorn + httptools, one process); projections caught up afterwards by `dobby process`.",
        "",
        "| what | requests/s | p50 ms | p99 ms | non-201 | after the run |",
        "|---|---:|---:|---:|---:|---|",
        f"| parse-only Starlette ceiling | {ceiling['rps']:,.0f} | {ceiling['p50']:.1f} | {ceiling['p99']:.1f} | "
        f"{ceiling['other']} | |",
    ]
    with fresh_postgres() as url:
        pg = intake_rows("PostgreSQL", url, args.seconds, args.connections)
        lines += pg
        lines.append(fixed_rate(url, 1000, args.seconds))
        workers = two_workers(url, args.seconds, args.connections)
        lines.append(workers)
        history = history_latency(url)
    with tempfile.TemporaryDirectory() as directory, fresh_sqlite(Path(directory)) as url:
        lines += intake_rows("SQLite", url, args.seconds, args.connections)
    on = float(pg[0].split("|")[2].replace(",", ""))
    two = float(workers.split("|")[2].replace(",", ""))
    lines += [
        "",
        f"PostgreSQL with group commit = {on / ceiling['rps'] * 100:.0f}% of the parse-only ceiling with one "
        f"process, {two / ceiling['rps'] * 100:.0f}% with two worker processes.",
        "",
        "| audit | p50 | p99 | baseline |",
        "|---|---:|---:|---|",
        history,
    ]
    print("\n".join(lines))
    record(
        "Intake and audit over HTTP",
        f".venv/bin/python bench/intake.py --seconds {args.seconds} --connections {args.connections}",
        lines,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
