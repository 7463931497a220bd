"""The gauges of SPEC §6, read from the projections and the process at scrape time."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dobby.engine.kernel.clock import rfc3339
from dobby.engine.rules.windows import exhausted, remaining

if TYPE_CHECKING:
    from dobby.engine.service import Engine
    from dobby.projections.queries import Queries
    from dobby.runtime.follower import Follower
    from dobby.runtime.leadership import Leadership


def gauge_values(engine: Engine, follower: Follower, queries: Queries, leadership: Leadership) -> dict[str, Any]:
    """Every gauge's value; those that need the database are left out while it does not answer."""
    now = engine.context.clock()
    limits = engine.context.limits
    values: dict[str, Any] = {
        "effective_mode": engine.context.mode(),
        "roles_held": leadership.leading(),
        "role_names": list(leadership.roles),
        "runners": {name: (status.last_error is not None, status.restarts) for name, status in follower.status.items()},
    }
    try:
        health = follower.health(engine.position())
        values["projections"] = {name: (runner.position, runner.lag) for name, runner in health.items()}
        values["runners"] = {name: (runner.failing is not None, runner.restarts) for name, runner in health.items()}
        values["rebuild_progress"] = {
            name: 1.0 if runner.rebuild_progress is None else runner.rebuild_progress
            for name, runner in health.items()
            if runner.version is not None
        }
        values["queue_depth"] = queries.revalidation_queue_depth()
        values["active_revalidate_required"] = queries.active_revalidate_required()
        budget_since = rfc3339(now - timedelta(seconds=limits.replay_budget_window_seconds))
        left: dict[str, int] = {}  # per tenant, its target with the least budget left
        for tenant, spent in queries.replay_spends_since(budget_since):
            left[tenant] = min(left.get(tenant, limits.replay_budget), remaining(limits.replay_budget, spent))
        values["budget_remaining"] = left
        velocity_since = rfc3339(now - timedelta(seconds=limits.velocity_window_seconds))
        values["breaker_open"] = {
            tenant: exhausted(limits.velocity_max, count)
            for tenant, count in queries.activations_since(velocity_since).items()
        }
        values["role_holders"] = leadership.holders()
    except Exception:  # the database is down: the gauges that need it are left out
        pass
    return values
