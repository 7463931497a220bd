"""Projection rebuild speed on PostgreSQL and SQLite, next to the rate of merely reading the same log.

.venv/bin/python bench/rebuild.py [--events 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fresh_postgres, fresh_sqlite, record
from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.engine.kernel.clock import system_clock
from dobby.projections.batches import catch_up, read_batch
from dobby.projections.rebuild import rebuild
from dobby.runtime.system import System
from tests.support import record_runs

SAVE_CHUNK = 500


def fill(system: System, events: int) -> None:
    record_runs(
        system.engine.context.uow.log,
        dict(system.engine.context.manifest.families),
        events,
        system_clock(),
        tag="bench",
    )


def read_rate(system: object) -> float:
    log = system.engine.context.uow.log  # type: ignore[attr-defined]
    started, after, count = time.perf_counter(), 0, 0
    while batch := read_batch(log, after, 500):
        after, count = batch[-1].position, count + len(batch)
    return count / (time.perf_counter() - started)


def measure(database_url: str, events: int) -> list[str]:
    settings = Settings(database_url=database_url, bobbin_path=None)
    system = build_system(settings)
    try:
        system.init_storage()
        fill(system, events)
        reading = read_rate(system)
        lines = [f"| read only (decode, no writes) | {reading:,.0f} | 1.00 |"]
        started = time.perf_counter()
        caught = sum(
            catch_up(system.store, system.engine.context.uow.log, p) for p in system.store.projections.values()
        )
        rate = caught / (time.perf_counter() - started)
        lines.append(
            f"| catch-up from 0, every projection (events × projections) | {rate:,.0f} | {rate / reading:.2f} |"
        )
        for name in ("runs", "counters", "proposals"):
            report = rebuild(system.store, system.engine.context.uow.log, name)
            lines.append(f"| rebuild `{name}` | {report.rate:,.0f} | {report.rate / reading:.2f} |")
        return lines
    finally:
        system.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    lines = []
    with fresh_postgres() as url:
        lines += [f"PostgreSQL, {args.events:,} events", "", "| what | events/s | ratio to read |", "|---|---:|---:|"]
        lines += measure(url, args.events)
    with tempfile.TemporaryDirectory() as directory, fresh_sqlite(Path(directory)) as url:
        lines += ["", f"SQLite, {args.events:,} events", "", "| what | events/s | ratio to read |", "|---|---:|---:|"]
        lines += measure(url, args.events)
    print("\n".join(lines))
    record("Projection rebuild", f".venv/bin/python bench/rebuild.py --events {args.events}", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
