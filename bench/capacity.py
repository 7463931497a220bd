"""Intake capacity: one default `dobby serve` (API, projections and expiry processor in one process, as `make run`
starts it) against the parse-only ceiling, beside the API-only layout, two workers, an open loop, SQLite, and
the CPU that PostgreSQL and dobby spend per 1,000 intakes — the figures docs/CAPACITY.md sizes deployments from.

    .venv/bin/python bench/capacity.py [--seconds 8] [--connections 64] [--rate 2000]

wrk (Debian package `wrk`) drives the closed-loop rows and bench/fixed_rate.py the open loop, on loopback and bounded
by time. The ceiling is measured first and last and the mean of the two is the baseline of every ratio. After each
run the projections are caught up and verified, and the stored runs counted against the 201 answers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, fresh_postgres, fresh_sqlite, record
from bench.intake import DOBBY, FAMILIES, check_after, dobby_env, open_loop, server, wrk

TICKS = os.sysconf("SC_CLK_TCK")
DOBBY_PROCESSES = "dobby (serve|process)|dobby.cli.command process|multiprocessing.spawn"  # the read side's child too


def cpu_seconds(pattern: str) -> float:
    """CPU time (user + system) of every live process whose command line matches `pattern`."""
    total = 0
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout.split()
    for pid in found:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def measured(url: str, seconds: int, connections: int, tag: str, dobby_pattern: str) -> dict[str, Any]:
    before = cpu_seconds("^postgres"), cpu_seconds(dobby_pattern)
    result = wrk(url, seconds, connections, f"{tag}-{time.time_ns()}")
    after = cpu_seconds("^postgres"), cpu_seconds(dobby_pattern)
    thousands = max(result["created"], 1) / 1000
    result["pg_cpu"] = (after[0] - before[0]) / thousands
    result["dobby_cpu"] = (after[1] - before[1]) / thousands
    return result


def layout(
    database_url: str,
    command: list[str],
    seconds: int,
    connections: int,
    tag: str,
    *,
    processor: bool = False,
    python_loop: bool = False,
) -> tuple[dict[str, Any], str]:
    port = free_port()
    env = dobby_env(database_url, port, "on")
    helper = None
    if processor:  # the API-only layout: projections and the expiry processor in a `dobby process` of their own
        helper = subprocess.Popen(
            [DOBBY, "process"],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        with server(command, env, port) as url:
            result = measured(url, seconds, connections, tag, DOBBY_PROCESSES)
            if python_loop:
                result["python"] = python_generator(url, seconds, connections)
    finally:
        if helper is not None:
            helper.terminate()
            helper.wait(15)
    python = result.get("python", {})  # its 201s and its requests in flight when it stopped count too
    created = result["created"] + python.get("created", 0)
    return result, check_after(database_url, int(created), connections * (2 if python else 1))


def python_generator(url: str, seconds: int, connections: int) -> dict[str, float]:
    """bench/fixed_rate.py --closed: the same closed loop as wrk, from a Python (uvloop) client."""
    output = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/fixed_rate.py"),
            url,
            "--closed",
            "--seconds",
            str(seconds),
            "--connections",
            str(connections),
            "--families",
            FAMILIES,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    ).stdout
    figures: dict[str, float] = json.loads(output)
    return figures


def ceiling(seconds: int, connections: int, python_loop: bool = False) -> dict[str, Any]:
    port = free_port()
    with server([sys.executable, str(ROOT / "bench/ceiling.py"), str(port)], {}, port) as url:
        before = cpu_seconds("bench/ceiling.py")
        result: dict[str, Any] = dict(wrk(url, seconds, connections, "ceiling"))
        result["server_cpu"] = (cpu_seconds("bench/ceiling.py") - before) / (result["requests"] / 1000)
        if python_loop:
            result["python"] = python_generator(url, seconds, connections)
        return result


LAYOUTS: list[tuple[str, list[str], bool]] = [
    ("default `dobby serve`", [DOBBY, "serve"], False),
    ("`serve --no-background` + `dobby process`", [DOBBY, "serve", "--no-background"], True),
    ("`serve --workers 2`", [DOBBY, "serve", "--workers", "2"], False),
]


def row(label: str, result: dict[str, float], base: float, after: str = "") -> str:
    cpu = f"{result['dobby_cpu']:.2f} | {result['pg_cpu']:.2f}" if "pg_cpu" in result else " | "
    return (
        f"| {label} | {result['rps']:,.0f} | {result['rps'] / base:.2f} | {result['p50']:.1f} | {result['p99']:.1f} | "
        f"{result['other']:.0f} | {cpu} | {after} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/capacity.py needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    seconds, connections = args.seconds, args.connections
    first = ceiling(seconds, connections, python_loop=True)
    runs: list[tuple[str, dict[str, Any], str]] = []
    for index, (label, command, processor) in enumerate(LAYOUTS):
        with fresh_postgres() as url:
            figures = layout(url, command, seconds, connections, "pg", processor=processor, python_loop=index == 0)
            runs.append((f"PostgreSQL, {label}", *figures))
    with fresh_postgres() as url:
        loop = open_loop(url, args.rate, 10, [DOBBY, "serve"])
    for label, command, processor in LAYOUTS[:2]:
        with tempfile.TemporaryDirectory() as directory, fresh_sqlite(Path(directory)) as url:
            runs.append((f"SQLite, {label}", *layout(url, command, seconds, connections, "lite", processor=processor)))
    last = ceiling(seconds, connections, python_loop=True)
    base = (first["rps"] + last["rps"]) / 2
    default = runs[0][1]
    python_base = (first["python"]["rps"] + last["python"]["rps"]) / 2
    summary = (
        f"**Default layout ÷ parse-only ceiling, this run: {default['rps'] / base:.2f} with wrk "
        f"({default['rps']:,.0f} of {base:,.0f} requests/s; p50 {default['p50']:.1f} ms, p99 {default['p99']:.1f} ms), "
        f"{default['python']['rps'] / python_base:.2f} with the Python generator ({default['python']['rps']:,.0f} of "
        f"{python_base:,.0f}; p50 {default['python']['p50']:.1f} ms, p99 {default['python']['p99']:.1f} ms).**"
    )
    lines = [
        summary,
        "",
        f"wrk -t2 -c{connections} -d{seconds}s on loopback, group commit on, fsync on; the parse-only ceiling measured "
        f"before ({first['rps']:,.0f} req/s) and after ({last['rps']:,.0f} req/s) the rows, their mean the baseline.",
        "CPU columns: seconds of CPU per 1,000 stored intakes, of the dobby processes (the ceiling's server on its "
        "row) and of every PostgreSQL process.",
        "",
        "| layout | requests/s | ÷ ceiling | p50 ms | p99 ms | non-201 | dobby CPU s / 1,000 "
        "| PostgreSQL CPU s / 1,000 | after the run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| parse-only Starlette ceiling | {base:,.0f} | 1.00 | {first['p50']:.1f} | {first['p99']:.1f} | 0 | "
        f"{(first['server_cpu'] + last['server_cpu']) / 2:.2f} | | |",
    ]
    lines += [row(label, result, base, after) for label, result, after in runs]
    lines += [
        "",
        f"Open loop, default `dobby serve` on PostgreSQL, {args.rate:,} requests/s for 10 s (bench/fixed_rate.py, "
        "latency from the moment each request was due): "
        f"achieved {loop['achieved']:,.0f}/s, p50 {loop['p50']:.1f} ms, p99 {loop['p99']:.1f} ms, "
        f"non-201 {loop['requests'] - loop['created']:.0f} of {loop['requests']:.0f}.",
    ]
    print("\n".join(lines))
    record(
        "Intake capacity",
        f".venv/bin/python bench/capacity.py --seconds {seconds} --connections {connections} --rate {args.rate}",
        lines,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
