"""OFREP bulk evaluation's query (SPEC §15): one tenant's live targets among many, with the targets table's
tenant index and without it (the baseline: the same table, the index dropped), in the same run.

.venv/bin/python bench/ofrep_bulk.py [--tenants 1000] [--targets 100] [--reads 300]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text

from bench.common import fresh_postgres, fresh_sqlite, record
from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.runtime.system import System


def fill(system: System, tenants: int, targets: int) -> None:
    table = system.queries.targets
    with system.store.writer.begin() as connection:
        for tenant in range(tenants):
            rows = [
                {
                    "target_key": str(uuid.uuid4()),
                    "tenant_id": f"tenant-{tenant}",
                    "target_type": "flag",
                    "target_id": f"flag-{index}",
                    "source": "proposal" if index % 2 else "none",
                    "live": {"variant": index},
                    "active_proposal_id": None,
                    "revalidate_required": False,
                    "updated_at": "2026-12-06T00:00:00.000000Z",
                    "position": tenant * targets + index + 1,
                }
                for index in range(targets)
            ]
            connection.execute(insert(table), rows)


def per_read_ms(system: System, tenants: int, reads: int) -> float:
    chosen = random.Random(7)
    started = time.perf_counter()
    for _ in range(reads):
        system.queries.live_targets(f"tenant-{chosen.randrange(tenants)}")
    return (time.perf_counter() - started) * 1000 / reads


def tenant_indexes(system: System) -> list[str]:
    table = system.queries.targets
    return [index.name for index in table.indexes if "tenant_id" in index.columns and index.name is not None]


def measure(database_url: str, tenants: int, targets: int, reads: int) -> str:
    system = build_system(Settings(database_url=database_url, bobbin_path=None))
    try:
        system.init_storage()
        fill(system, tenants, targets)
        indexed = per_read_ms(system, tenants, reads)
        with system.store.writer.begin() as connection:
            for name in tenant_indexes(system):
                connection.execute(text(f'DROP INDEX "{name}"'))
        scanned = per_read_ms(system, tenants, reads)
    finally:
        system.close()
    return (
        f"| {database_url.split(':', maxsplit=1)[0]} | {scanned:.2f} ms | {indexed:.2f} ms | {scanned / indexed:.1f}× |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    lines = [
        f"{args.tenants:,} tenants × {args.targets} targets (half of them live), {args.reads} bulk reads of one "
        "random tenant each:",
        "",
        "| backend | without the tenant index (baseline) | with it | faster |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as directory, fresh_sqlite(Path(directory)) as url:
        lines.append(measure(url, args.tenants, args.targets, args.reads))
    with fresh_postgres() as url:
        lines.append(measure(url, args.tenants, args.targets, args.reads))
    print("\n".join(lines))
    record("OFREP bulk: one tenant's live targets", ".venv/bin/python " + " ".join(sys.argv), lines)


if __name__ == "__main__":
    main()
