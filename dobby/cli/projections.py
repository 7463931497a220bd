"""`dobby projections status | rebuild | verify`: the query tables against the log."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from dobby.bootstrap import system_from_environment
from dobby.cli.store import require_store
from dobby.projections.rebuild import rebuild, verify


def projections_status(_: argparse.Namespace) -> int:
    require_store()
    system = system_from_environment()
    try:
        system.init_storage()
        postgres = system.settings.backend == "postgres"
        holders = system.leadership.holders() if postgres else dict.fromkeys(system.leadership.roles, SINGLE)
        print(f"{'projection':<12} {'position':>10} {'lag':>8} {'version':>8}  {'rebuild':<22} {'failing':<10} held by")
        health = system.projection_health()
        for name, runner in health.items():
            print(
                f"{name:<12} {runner['position']:>10} {runner['lag']:>8} {_version(runner):>8}  "
                f"{_rebuild(runner):<22} {runner['failing'] or '-':<10} {holders.get(name) or '-'}"
            )
        for role in sorted(set(holders) - set(health)):
            print(f"{role:<12} {'-':>10} {'-':>8} {'-':>8}  {'-':<22} {'-':<10} {holders[role] or '-'}")
    finally:
        system.close()
    return 0


SINGLE = "the-serving-process"
"""On SQLite (or in memory) one process serves a store and runs every role."""


def _version(runner: dict[str, Any]) -> str:
    """The stored version, and the code's when they differ ('-' for the Bobbin publisher, which has none)."""
    if "version" not in runner:
        return "-"
    stored, code = runner["stored_version"], runner["version"]
    return str(code) if stored == code else f"{stored}->{code}"


def _rebuild(runner: dict[str, Any]) -> str:
    if runner.get("rebuilding") is not None:
        return f"{runner['rebuilding']:.0%} rebuilt"
    if runner.get("stored_version") is not None and runner["stored_version"] > runner.get("version", 0):
        return "newer code stored it"
    return "-"


def projections_rebuild(args: argparse.Namespace) -> int:
    require_store()
    system = system_from_environment()
    try:
        system.init_storage()
        names = [args.name] if args.name else sorted(system.store.projections)
        unknown = [name for name in names if name not in system.store.projections]
        if unknown:
            print(
                f"dobby: no projection {unknown[0]!r}; one of {', '.join(sorted(system.store.projections))}",
                file=sys.stderr,
            )
            return 2
        head = system.engine.position()
        for name in names:
            bar = ProgressBar(name, head)
            report = rebuild(system.store, system.engine.context.uow.log, name, progress=bar.advance)
            bar.finish(f"{report.events} events in {report.seconds:.2f} s, {report.rate:,.0f} events/s")
    finally:
        system.close()
    return 0


def projections_verify(_: argparse.Namespace) -> int:
    require_store()
    system = system_from_environment()
    failed = False
    try:
        system.init_storage()
        for name in sorted(system.store.projections):
            differences = verify(system.store, system.engine.context.uow.log, name)
            print(f"{name}: {'ok' if not differences else f'{len(differences)} difference(s)'}")
            for line in differences[:50]:
                print(f"  {line}")
            failed = failed or bool(differences)
    finally:
        system.close()
    return 1 if failed else 0


class ProgressBar:
    """A one-line progress bar on stderr with an events/s figure."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, max(total, 1), 0
        self.started = time.perf_counter()

    def advance(self, count: int) -> None:
        self.done += count
        share = min(self.done / self.total, 1.0)
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        bar = "#" * int(share * 30)
        print(f"\r{self.name:<10} [{bar:<30}] {self.done}/{self.total} {rate:,.0f} ev/s", end="", file=sys.stderr)

    def finish(self, summary: str) -> None:
        print(file=sys.stderr)
        print(f"{self.name}: rebuilt, {summary}")
