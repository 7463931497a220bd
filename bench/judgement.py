"""What judging with statistics (SPEC §14) costs: the pure judgement and a stored replay with plain numbers beside the
same contract with sample summaries, interleaved in one run; the quantile routines scipy offers; the import.

    .venv/bin/python bench/judgement.py [--replays 600] [--calls 20000]

A replay here is the engine's command (decode, judge, append to a fresh SQLite log, spend budget), without HTTP.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec
import scipy.special
import scipy.stats

from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.engine.commands.boundary import convert, decode
from dobby.engine.commands.replay import EvaluateReplay
from dobby.engine.rules.judgement import Metrics, ThresholdContract, judge_replay
from dobby.engine.rules.modes import Mode
from dobby.resources import read_manifest

CONTRACT = {
    "mode": "all",
    "metrics": {"success": {"direction": "increase"}, "latency_ms": {"direction": "decrease"}},
}
KINDS = ("plain numbers", "mean summaries", "proportion summaries")


def metrics(kind: str, index: int) -> dict[str, Any]:
    """Baseline and candidate of one kind; `index` makes each replay distinct."""
    if kind == "plain numbers":
        return {
            "baseline": {"success": 0.40, "latency_ms": 120},
            "candidate": {"success": 0.44 + index * 1e-9, "latency_ms": 110},
        }
    if kind == "mean summaries":
        return {
            "baseline": {
                "success": {"mean": 0.40, "sd": 0.2, "n": 1000},
                "latency_ms": {"mean": 120, "sd": 30, "n": 1000},
            },
            "candidate": {
                "success": {"mean": 0.44 + index * 1e-9, "sd": 0.2, "n": 1000},
                "latency_ms": {"mean": 110, "sd": 30, "n": 1000},
            },
        }
    return {
        "baseline": {"success": {"successes": 400, "n": 1000}, "latency_ms": {"successes": 120, "n": 1000}},
        "candidate": {"success": {"successes": 440, "n": 1000 + index}, "latency_ms": {"successes": 110, "n": 1000}},
    }


def per_call_us(action: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        action()
    return (time.perf_counter() - started) / calls * 1e6


def pure(calls: int) -> list[tuple[str, float]]:
    contract = convert(CONTRACT, ThresholdContract)
    families = {"f": "1"}
    figures = []
    for kind in KINDS:
        judged = convert(metrics(kind, 0), Metrics)
        figures.append((kind, per_call_us(partial(judge_replay, contract, judged, True, families, families), calls)))
    return figures


def stored(replays: int) -> dict[str, list[float]]:
    families = dict(read_manifest().families)
    with tempfile.TemporaryDirectory() as workdir:
        settings = Settings(
            database_url=f"sqlite:///{workdir}/bench.db",
            service_mode=Mode.promotion_enabled,
            replay_budget=10**9,
            bobbin_path=None,
        )
        system = build_system(settings)
        system.init_storage()
        commands = system.engine.replays
        timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
        try:
            for index in range(replays):
                for kind in KINDS:  # interleaved, so drift in the machine's load falls on every kind alike
                    body = {
                        "tenant_id": "bench",
                        "target": {"type": "prompt_template", "id": "judgement"},
                        "family_versions": families,
                        "metrics": metrics(kind, index),
                        "threshold_contract": CONTRACT,
                        "workload_similar": True,
                    }
                    raw = msgspec.json.encode(body)
                    started = time.perf_counter()
                    commands.evaluate(decode(raw, EvaluateReplay), actor="bench")
                    timings[kind].append((time.perf_counter() - started) * 1e3)
        finally:
            system.close()
    return timings


def imports() -> list[tuple[str, float]]:
    """Median wall seconds of a fresh interpreter importing each (5 runs)."""
    figures = []
    for label, code in (
        ("python -c pass", "pass"),
        ("import dobby.engine.rules.judgement", "import dobby.engine.rules.judgement"),
        ("… + scipy.special (first summary judged)", "import dobby.engine.rules.judgement, scipy.special"),
        ("… + scipy.stats (had we used it)", "import dobby.engine.rules.judgement, scipy.stats"),
    ):
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            runs.append(time.perf_counter() - started)
        figures.append((label, statistics.median(runs)))
    return figures


def quantiles(calls: int) -> list[tuple[str, float]]:
    return [
        ("scipy.special.stdtrit(df, p)", per_call_us(lambda: scipy.special.stdtrit(37.5, 0.975), calls)),
        ("scipy.stats.t.ppf(p, df)", per_call_us(lambda: scipy.stats.t.ppf(0.975, 37.5), calls // 10)),
        ("scipy.special.ndtri(p)", per_call_us(lambda: scipy.special.ndtri(0.975), calls)),
        ("scipy.stats.norm.ppf(p)", per_call_us(lambda: scipy.stats.norm.ppf(0.975), calls // 10)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replays", type=int, default=600)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()

    print("Pure judgement, one contract of two metrics (µs per judge_replay call)\n")
    print("| values | µs per call | ratio to plain numbers |\n|---|---:|---:|")
    figures = pure(args.calls)
    plain = figures[0][1]
    for kind, micros in figures:
        print(f"| {kind} | {micros:.1f} | {micros / plain:.2f} |")

    timings = stored(args.replays)
    print(f"\nStored replay on SQLite, {args.replays} of each kind interleaved (ms)\n")
    print("| values | p50 ms | p99 ms | p50 ratio to plain numbers |\n|---|---:|---:|---:|")
    plain_p50 = statistics.median(timings["plain numbers"])
    for kind in KINDS:
        ordered = sorted(timings[kind])
        p50, p99 = statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]
        print(f"| {kind} | {p50:.2f} | {p99:.2f} | {p50 / plain_p50:.2f} |")

    print("\nQuantile routines (µs per call)\n\n| routine | µs per call |\n|---|---:|")
    for label, micros in quantiles(args.calls):
        print(f"| {label} | {micros:.2f} |")

    print("\nImport, a fresh interpreter (median of 5, s)\n\n| what | s |\n|---|---:|")
    for label, seconds in imports():
        print(f"| {label} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
