"""Intake over HTTP, an earlier build beside this one in the same run: requests/s, p50 and p99, as ratios to
the parse-only ceiling measured in that run too.

    .venv/bin/python bench/before_after.py --before REV [--seconds 8] [--connections 64] [--rounds 2]

The earlier build is `git archive REV`, unpacked into a temporary directory and served from there by the same
interpreter (PYTHONPATH first). Rounds alternate before and after, each on a fresh PostgreSQL database with group
commit on; the median of the rounds is reported. After each run the stored runs are counted against the 201s.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, fresh_postgres, record
from bench.intake import _accepted, dobby_env, server, wrk


def unpack(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run(build: Path, seconds: int, connections: int, tag: str) -> dict[str, float]:
    with fresh_postgres() as url:
        port = free_port()
        env = {**dobby_env(url, port, "on"), "PYTHONPATH": str(build)}
        command = [sys.executable, "-m", "dobby.cli", "serve", "--no-background"]
        with server(command, env, port, cwd=build) as address:
            result = wrk(address, seconds, connections, f"{tag}-{time.time_ns()}")
        stored = _accepted(url)
    result["lost"] = max(result["created"] - stored, 0)
    return result


def median(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(result[key] for result in results)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="the earlier build's git revision")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/before_after.py needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    port = free_port()
    with server([sys.executable, str(ROOT / "bench/ceiling.py"), str(port)], {}, port) as url:
        ceiling = wrk(url, args.seconds, args.connections, "ceiling")
    figures: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as directory:
        before = unpack(args.before, Path(directory))
        for _ in range(args.rounds):
            figures["before"].append(run(before, args.seconds, args.connections, "before"))
            figures["after"].append(run(ROOT, args.seconds, args.connections, "after"))
    short = subprocess.run(
        ["git", "rev-parse", "--short", args.before], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = [
        f"wrk -t2 -c{args.connections} -d{args.seconds}s on loopback, PostgreSQL, group commit on, one "
        f"`dobby serve --no-background`; median of {args.rounds} alternating rounds.",
        "",
        "| build | requests/s | ÷ ceiling | p50 ms | p99 ms | non-201 | 201s not stored |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| parse-only Starlette ceiling | {ceiling['rps']:,.0f} | 1.00 | {ceiling['p50']:.1f} | "
        f"{ceiling['p99']:.1f} | {ceiling['other']} | |",
    ]
    for name, label in (("before", f"before ({short.stdout.strip()})"), ("after", "after (this build)")):
        results = figures[name]
        rps = median(results, "rps")
        lines.append(
            f"| {label} | {rps:,.0f} | {rps / ceiling['rps']:.2f} | {median(results, 'p50'):.1f} | "
            f"{median(results, 'p99'):.1f} | {sum(r['other'] for r in results):.0f} | "
            f"{sum(r['lost'] for r in results):.0f} |"
        )
    ratio = median(figures["after"], "rps") / median(figures["before"], "rps")
    lines += ["", f"after ÷ before: {ratio:.2f}× requests/s."]
    print("\n".join(lines))
    record(
        "Intake before and after",
        f".venv/bin/python bench/before_after.py --before {args.before} --seconds {args.seconds} "
        f"--connections {args.connections} --rounds {args.rounds}",
        lines,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
