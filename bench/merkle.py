"""What keeping the log digest costs: the merkle projection's fold and a signed checkpoint, per 1,000 events,
next to the rate of merely reading the same log.

.venv/bin/python bench/merkle.py [--events 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fresh_postgres, fresh_sqlite, record
from bench.rebuild import fill, read_rate
from dobby.adapters.settings import Settings
from dobby.adapters.signing import generate_key_file
from dobby.bootstrap import build_system
from dobby.projections.batches import catch_up
from dobby.projections.merkle_tree import MERKLE

CHECKPOINTS = 50


def measure(database_url: str, events: int, key: Path) -> list[str]:
    system = build_system(Settings(database_url=database_url, bobbin_path=None, audit_signing_key=key))
    try:
        system.init_storage()
        fill(system, events)
        reading = read_rate(system)
        log = system.engine.context.uow.log
        started = time.perf_counter()
        folded = catch_up(system.store, log, system.store.projections[MERKLE])
        seconds = time.perf_counter() - started
        rate = folded / seconds
        signing = 0.0
        for _ in range(CHECKPOINTS):
            with system.store.writer.begin() as connection:  # a fresh checkpoint each time: forget the last one
                connection.execute(system.store.checkpoints.delete())
            started = time.perf_counter()
            system.digest.refresh()
            signing += time.perf_counter() - started
        per_checkpoint = signing / CHECKPOINTS * 1000
        fold = f"{rate:,.0f} | {rate / reading:.2f} | {1000 / rate * 1000:.1f} ms"
        return [
            f"| read only (decode, no writes) | {reading:,.0f} | 1.00 | {1000 / reading * 1000:.1f} ms |",
            f"| merkle projection, catch-up from 0 (reads included) | {fold} |",
            f"| one signed checkpoint of {events:,} events (root + Ed25519 + insert) | | | {per_checkpoint:.2f} ms |",
        ]
    finally:
        system.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    header = ["| what | events/s | ratio to read | per 1,000 events |", "|---|---:|---:|---:|"]
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as directory:
        key = Path(directory) / "signing.key"
        generate_key_file(key)
        with fresh_postgres() as url:
            lines += [f"PostgreSQL, {args.events:,} events", "", *header, *measure(url, args.events, key)]
        with fresh_sqlite(Path(directory)) as url:
            lines += ["", f"SQLite, {args.events:,} events", "", *header, *measure(url, args.events, key)]
    lines += [
        "",
        "The signer stores one checkpoint every 5 s while the log grows, so its own cost is per checkpoint, not per",
        "event; the fold is what the log digest adds to the read side per event.",
    ]
    print("\n".join(lines))
    record("Log digest (Merkle projection and checkpoints)", f"bench/merkle.py --events {args.events}", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
