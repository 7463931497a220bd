"""Flame graphs of the intake path: py-spy samples one default `dobby serve` on PostgreSQL under wrk load, for an
earlier build and for this one, and writes bench/flame-<name>.svg.

    .venv/bin/python bench/flame.py --before REV [--seconds 10] [--connections 64]

The earlier build is `git archive REV` served from a temporary directory (as bench/before_after.py does). py-spy
samples every thread that is not idle, 200 times a second; the load is wrk's, bounded by time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.before_after import unpack
from bench.common import ROOT, free_port, fresh_postgres
from bench.intake import dobby_env, server, wrk

PY_SPY = Path(sys.executable).parent / "py-spy"


def sample(build: Path, name: str, seconds: int, connections: int) -> str:
    output = ROOT / "bench" / f"flame-{name}.svg"
    with fresh_postgres() as url:
        port = free_port()
        env = {**dobby_env(url, port, "on"), "PYTHONPATH": str(build)}
        with server([sys.executable, "-m", "dobby.cli", "serve"], env, port, cwd=build) as address:
            pid = subprocess.run(
                ["pgrep", "-f", "-n", "dobby.cli.command serve"], capture_output=True, text=True, check=True
            ).stdout.strip()
            spy = subprocess.Popen(
                [str(PY_SPY), "record", "-p", pid, "-d", str(seconds), "-r", "200", "-o", str(output), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            result = wrk(address, seconds, connections, f"flame-{name}-{time.time_ns()}")
            spy.wait(seconds + 60)
    return f"{name}: {result['rps']:,.0f} requests/s under py-spy, written to {output.relative_to(ROOT)}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None or not PY_SPY.exists():
        print("bench/flame.py needs wrk (apt-get install -y wrk) and py-spy (make test installs it)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as directory:
        print(sample(unpack(args.before, Path(directory)), "before", args.seconds, args.connections))
    print(sample(ROOT, "after", args.seconds, args.connections))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
