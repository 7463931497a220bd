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
from dobby.engine.canonical import run_id_for
from dobby.engine.clock import system_clock
from dobby.engine.intake import run_hash_of, run_provenance_hash_of
from dobby.engine.run import Run
from dobby.projections.rebuild import rebuild
from dobby.projections.runner import catch_up, read_batch

SAVE_CHUNK = 500


def fill(system: object, events: int) -> None:
    engine = system.engine  # type: ignore[attr-defined]
    families = dict(engine.manifest.families)
    now = system_clock()
    for start in range(0, events, SAVE_CHUNK):
        runs = []
        for index in range(start, min(start + SAVE_CHUNK, events)):
            body = {
                "tenant_id": f"t{index % 7}",
                "trace_id": f"trace-{index}",
                "correlation_id": "bench",
                "outcome": "success",
                "guardrail_decision": "ALLOW",
                "family_versions": families,
                "target_hints": [{"type": "prompt_template", "id": f"p{index % 13}"}],
            }
            run_hash = run_hash_of(body)
            runs.append(
                Run.accept(
                    run_id_for(run_hash),
                    body,
                    run_hash=run_hash,
                    provenance_hash=run_provenance_hash_of(body),
                    sampled=False,
                    learning_signal=True,
                    evidence_digest=None,
                    actor="bench",
                    at=now,
                )
            )
        engine.log.save(*runs)


def read_rate(system: object) -> float:
    log = system.engine.log  # type: ignore[attr-defined]
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
        caught = sum(catch_up(system.store, system.engine.log, p) for p in system.store.projections.values())
        rate = caught / (time.perf_counter() - started)
        lines.append(
            f"| catch-up from 0, all 4 projections (events × projections) | {rate:,.0f} | {rate / reading:.2f} |"
        )
        for name in ("runs", "counters", "proposals"):
            report = rebuild(system.store, system.engine.log, name)
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
