"""Prometheus metrics of SPEC §6: durable counters (the counters projection of the log, and the durable tallies of
answers that store nothing), gauges read at scrape time, and the per-process request histogram."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dobby.engine.rules.modes import Mode

COUNTERS = {
    "dobby_intake_total": ("Signals submitted to intake, by result", ["result"]),
    "dobby_learning_signals_total": ("Accepted runs that carry target hints", []),
    "dobby_replay_evaluations_total": ("Replay evaluations, by verdict", ["verdict"]),
    "dobby_revalidate_required_total": ("Replays judged revalidate_required", []),
    "dobby_proposal_transitions_total": ("Proposal lifecycle transitions, by target state", ["to"]),
    "dobby_activation_denials_total": ("Refused activations, by reason", ["reason"]),
    "dobby_frozen_activations_total": ("Activations held back by a freeze or the emergency stop", []),
    "dobby_auto_rollbacks_total": ("Active proposals rolled back by dobby:watch on a regression", []),
}


Counts = Callable[[], Iterable[tuple[str, str, int]]]


class DobbyCollector(Collector):
    """Renders the durable counters (the sum of every source's rows) and the gauges read at scrape time."""

    def __init__(self, counts: Sequence[Counts], gauges: Callable[[], dict[str, Any]]) -> None:
        self._counts = counts
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        totals: Counter[tuple[str, str]] = Counter()
        try:
            for source in self._counts:
                for metric, labels, value in source():
                    totals[(metric, labels)] += value
        except Exception:  # the database is down: no counter at all rather than a part of them that looks lower
            totals.clear()
        for name, (documentation, label_names) in COUNTERS.items():
            family = CounterMetricFamily(name.removesuffix("_total"), documentation, labels=label_names)
            for (metric, labels), value in sorted(totals.items()):
                if metric == name:
                    decoded = json.loads(labels)
                    family.add_metric([decoded.get(label, "") for label in label_names], value)
            yield family
        yield from self._gauge_families()

    def _gauge_families(self) -> Iterator[Metric]:
        values = self._gauges()
        mode = GaugeMetricFamily("dobby_effective_mode", "1 for the current effective mode", labels=["mode"])
        for candidate in Mode:
            mode.add_metric([candidate.name], 1.0 if candidate == values["effective_mode"] else 0.0)
        yield mode
        budget = GaugeMetricFamily(
            "dobby_replay_budget_remaining",
            "Lowest remaining replay budget over the tenant's targets",
            labels=["tenant_id"],
        )
        for tenant, remaining in sorted(values.get("budget_remaining", {}).items()):
            budget.add_metric([tenant], remaining)
        yield budget
        breaker = GaugeMetricFamily(
            "dobby_velocity_breaker_open", "1 when the tenant's activations are exhausted", labels=["tenant_id"]
        )
        for tenant, is_open in sorted(values.get("breaker_open", {}).items()):
            breaker.add_metric([tenant], 1.0 if is_open else 0.0)
        yield breaker
        yield GaugeMetricFamily(
            "dobby_replay_queue_depth",
            "Open proposals flagged revalidate_required, awaiting expiry",
            value=values.get("queue_depth", 0),
        )
        flagged = GaugeMetricFamily(
            "dobby_active_revalidate_required",
            "Active proposals flagged revalidate_required (not rolled back automatically)",
            labels=["tenant_id"],
        )
        for tenant, count in sorted(values.get("active_revalidate_required", {}).items()):
            flagged.add_metric([tenant], count)
        yield flagged
        position = GaugeMetricFamily("dobby_projection_position", "Last log position folded", labels=["projection"])
        lag = GaugeMetricFamily("dobby_projection_lag_events", "Events not yet folded", labels=["projection"])
        for name, (at, behind) in sorted(values.get("projections", {}).items()):
            position.add_metric([name], at)
            lag.add_metric([name], behind)
        yield position
        yield lag
        failing = GaugeMetricFamily(
            "dobby_projection_failing", "1 while the projection's last batch failed", labels=["projection"]
        )
        restarts = CounterMetricFamily(
            "dobby_projection_restarts", "Failed batches retried by the supervisor", labels=["projection"]
        )
        for name, (is_failing, count) in sorted(values.get("runners", {}).items()):
            failing.add_metric([name], 1.0 if is_failing else 0.0)
            restarts.add_metric([name], count)
        yield failing
        yield restarts
        rebuild = GaugeMetricFamily(
            "dobby_projection_rebuild_progress",
            "How far the rebuild to the code's version has got (0-1); 1 when the stored version is current",
            labels=["projection"],
        )
        for name, share in sorted(values.get("rebuild_progress", {}).items()):
            rebuild.add_metric([name], share)
        yield rebuild
        yield from _role_families(values)


def _role_families(values: dict[str, Any]) -> Iterator[Metric]:
    """Which background roles this process holds (SPEC §6, per process), and which process holds each role as the
    database sees it (the same on every process: `holder` is its `dobby <host>:<pid>`)."""
    held = values.get("roles_held")
    mine = GaugeMetricFamily("dobby_role_held", "1 on the process holding the role, 0 elsewhere", labels=["role"])
    for role in sorted(values.get("role_names", ())):
        mine.add_metric([role], 1.0 if held is None or role in held else 0.0)
    yield mine
    holders = GaugeMetricFamily(
        "dobby_role_holder", "1 for the process that holds each background role", labels=["role", "holder"]
    )
    for role, holder in sorted(values.get("role_holders", {}).items()):
        if holder is not None:
            holders.add_metric([role, holder], 1.0)
    yield holders


def build_registry(collector: Collector) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    histogram = Histogram(
        "dobby_http_request_duration_seconds",
        "HTTP request duration",
        ["route", "method", "status"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    return registry, histogram
