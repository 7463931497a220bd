"""Queries for the HTTP layer: get and list (filters, keyset pagination, newest first) over projected tables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, get_args

from sqlalchemy import Select, Table, and_, case, func, select

from dobby.engine.kernel.canonical import content_hash, target_id_for
from dobby.engine.kernel.clock import RANGE, parse_timestamp, rfc3339
from dobby.engine.kernel.errors import InvalidInputError, Violation, not_found
from dobby.engine.kernel.shapes import HASH_PATTERN, integer_of, is_ascii_digits, is_identifier
from dobby.engine.rules.judgement import Verdict
from dobby.engine.rules.lifecycle import OPEN_STATES
from dobby.projections.store import ProjectionStore

_HASH = re.compile(HASH_PATTERN)
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def as_json(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


class Queries:
    def __init__(self, store: ProjectionStore) -> None:
        self.store = store
        self.runs = store.table("runs", "runs")
        self.run_served = store.table("runs", "run_served")
        self.replays = store.table("replays", "replays")
        self.proposals = store.table("proposals", "proposals")
        self.counters = store.table("counters", "counters")
        self.targets = store.table("targets", "targets")

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._get(self.runs, self.runs.c.run_id, run_id, "run")

    def get_replay(self, replay_id: str) -> dict[str, Any]:
        return self._get(self.replays, self.replays.c.replay_id, replay_id, "replay")

    def get_proposal(self, proposal_id: str) -> dict[str, Any]:
        return self._get(self.proposals, self.proposals.c.proposal_id, proposal_id, "proposal")

    def _get(self, table: Table, key: Any, value: str, kind: str) -> dict[str, Any]:
        if not is_identifier(value, 64):  # no record has such an id (and PostgreSQL could not even compare it)
            raise not_found(kind, value)
        with self.store.engine.connect() as connection:
            view = connection.execute(select(table.c.view).where(key == value)).scalar_one_or_none()
        if view is None:
            raise not_found(kind, value)
        return dict(view)

    def get_target(self, tenant_id: str, target_type: str, target_id: str) -> dict[str, Any]:
        """What the target runs now (SPEC §4.1); a target never proposed answers source "none"."""
        table = self.targets
        key = str(target_id_for(tenant_id, target_type, target_id))
        with self.store.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.target_key == key)).mappings().one_or_none()
        if row is None:
            return _target_read(tenant_id, {"type": target_type, "id": target_id}, None)
        return _target_read(tenant_id, {"type": target_type, "id": target_id}, row)

    def live_targets(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every target of `tenant_id` whose source is not "none", as the targets read shows it, by type and id."""
        table = self.targets
        statement = (
            select(table)
            .where(table.c.tenant_id == tenant_id, table.c.source != "none")
            .order_by(table.c.target_type, table.c.target_id)
        )
        with self.store.engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [_target_read(tenant_id, {"type": row["target_type"], "id": row["target_id"]}, row) for row in rows]

    def proposal_counts(self, tenants: set[str] | frozenset[str] | None = None) -> dict[str, int]:
        """How many proposals are in each state (of the given tenants only, when given)."""
        table = self.proposals
        statement = select(table.c.state, func.count()).group_by(table.c.state)
        if tenants is not None:
            statement = statement.where(table.c.tenant_id.in_(sorted(tenants)))
        with self.store.engine.connect() as connection:
            return {state: int(count) for state, count in connection.execute(statement)}

    def tenants(self) -> list[str]:
        """Every tenant with a replay or a proposal."""
        statement = select(self.replays.c.tenant_id).union(select(self.proposals.c.tenant_id))
        with self.store.engine.connect() as connection:
            return sorted(row[0] for row in connection.execute(statement))

    def list_runs(self, filters: dict[str, str], tenants: set[str] | None = None) -> Page:
        """Runs, newest first; `live_hash` keeps those whose `served` names that content (SPEC §15)."""
        live_hash = filters.get("live_hash")
        extra = []
        if live_hash is not None:
            if not _HASH.match(live_hash):
                message = "live_hash must be sha256: and 64 lowercase hex digits"
                raise InvalidInputError(message, [Violation("invalid_value", message, "live_hash")])
            served = self.run_served
            extra.append(self.runs.c.seq.in_(select(served.c.seq).where(served.c.live_hash == live_hash)))
        rest = {key: value for key, value in filters.items() if key != "live_hash"}
        allowed = {"tenant_id", "outcome", "trace_id"}
        return self._list(self.runs, rest, allowed, tenants, self.runs.c.recorded_at, extra)

    def list_replays(self, filters: dict[str, str], tenants: set[str] | None = None) -> Page:
        allowed = {"tenant_id", "verdict", "target_type", "target_id"}
        return self._list(self.replays, filters, allowed, tenants, self.replays.c.evaluated_at)

    def list_proposals(self, filters: dict[str, str], tenants: set[str] | None = None) -> Page:
        allowed = {"tenant_id", "state", "target_type", "target_id", "revalidate_required"}
        return self._list(self.proposals, filters, allowed, tenants, self.proposals.c.created_at)

    def _list(  # noqa: PLR0917
        self,
        table: Table,
        filters: dict[str, str],
        allowed: set[str],
        tenants: set[str] | None,
        created: Any,
        extra: list[Any] | None = None,
    ) -> Page:
        limit, cursor, conditions = _parse(table, filters, allowed, created)
        conditions += extra or []
        if tenants is not None:
            conditions.append(table.c.tenant_id.in_(sorted(tenants)))
        statement: Select[Any] = select(table.c.seq, table.c.view)
        if cursor is not None:
            conditions.append(table.c.seq < cursor)
        statement = statement.where(and_(True, *conditions)).order_by(table.c.seq.desc()).limit(limit + 1)
        with self.store.engine.connect() as connection:
            rows = connection.execute(statement).all()
        items = [dict(view) for _, view in rows[:limit]]
        next_cursor = str(rows[limit - 1][0]) if len(rows) > limit else None
        return Page(items, next_cursor)

    def counters_by_metric(self) -> list[tuple[str, str, int]]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(select(self.counters.c.metric, self.counters.c.labels, self.counters.c.value))
            return [(metric, labels, int(value)) for metric, labels, value in rows]

    def due_for_expiry(self, now_text: str, limit: int = 200) -> list[str]:
        """Open proposals that are revalidate_required or past their TTL, oldest deadline first."""
        table = self.proposals
        statement = (
            select(table.c.proposal_id)
            .where(
                table.c.state.in_(sorted(OPEN_STATES)), (table.c.revalidate_required) | (table.c.expires_at <= now_text)
            )
            .order_by(table.c.expires_at)
            .limit(limit)
        )
        with self.store.engine.connect() as connection:
            return [row[0] for row in connection.execute(statement)]

    def proposal_views(self, tenant_id: str, states: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every proposal view of `tenant_id` in `states` (the decision queue's candidates)."""
        table = self.proposals
        statement = select(table.c.view).where(table.c.tenant_id == tenant_id, table.c.state.in_(states))
        with self.store.engine.connect() as connection:
            return [dict(row[0]) for row in connection.execute(statement)]

    def scheduled(self) -> list[tuple[str, str]]:
        """(proposal_id, scheduled_for) of every approved proposal with a scheduled activation, soonest first."""
        table = self.proposals
        with self.store.engine.connect() as connection:
            views = [
                dict(row[0]) for row in connection.execute(select(table.c.view).where(table.c.state == "approved"))
            ]
        found = [(view["proposal_id"], view["scheduled_for"]) for view in views if view.get("scheduled_for")]
        return sorted(found, key=lambda item: item[1])

    def in_play(self) -> list[dict[str, Any]]:
        """Open and active proposals not yet flagged for revalidation, with their bound family versions."""
        table = self.proposals
        statement = select(table.c.view).where(
            table.c.state.in_([*sorted(OPEN_STATES), "active"]), table.c.revalidate_required.is_(False)
        )
        with self.store.engine.connect() as connection:
            return [dict(row[0]) for row in connection.execute(statement)]

    def replay_spends_since(self, since_text: str) -> list[tuple[str, int]]:
        """(tenant, evaluations) per tenant+target evaluated after `since_text`: every stored replay spent budget."""
        table = self.replays
        statement = (
            select(table.c.tenant_id, func.count())
            .where(table.c.evaluated_at > since_text)
            .group_by(table.c.tenant_id, table.c.target_type, table.c.target_id)
        )
        with self.store.engine.connect() as connection:
            return [(tenant, int(count)) for tenant, count in connection.execute(statement)]

    def activations_since(self, since_text: str) -> dict[str, int]:
        table = self.proposals
        statement = (
            select(table.c.tenant_id, func.count()).where(table.c.activated_at > since_text).group_by(table.c.tenant_id)
        )
        with self.store.engine.connect() as connection:
            return {tenant: int(count) for tenant, count in connection.execute(statement)}

    def revalidation_queue_depth(self) -> int:
        """Open proposals flagged revalidate_required: the ones waiting for the expiry processor."""
        table = self.proposals
        statement = select(func.count()).where(
            table.c.state.in_(sorted(OPEN_STATES)), table.c.revalidate_required.is_(True)
        )
        with self.store.engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())

    def active_revalidate_required(self) -> dict[str, int]:
        """Per tenant with an active proposal: how many of its active proposals are flagged revalidate_required
        (they stay active; nothing rolls them back automatically)."""
        table = self.proposals
        flagged = func.sum(case((table.c.revalidate_required.is_(True), 1), else_=0))
        statement = select(table.c.tenant_id, flagged).where(table.c.state == "active").group_by(table.c.tenant_id)
        with self.store.engine.connect() as connection:
            return {tenant: int(count or 0) for tenant, count in connection.execute(statement)}


VERDICTS: tuple[str, ...] = get_args(Verdict)
"""The verdicts of SPEC §4.3 and §14: a filter on another finds nothing, so it is refused as the contract says."""


TARGET_COLUMNS = ("source", "live", "active_proposal_id", "revalidate_required", "updated_at", "position")


def _target_read(tenant_id: str, target: dict[str, str], row: Any) -> dict[str, Any]:
    """The targets read of SPEC §4.1 from a targets row (None: never proposed). `live_hash` is computed here, the one
    place, from the `live` object exactly as it is served (§3), so a runtime can compute it too."""
    answer: dict[str, Any] = {
        "tenant_id": tenant_id,
        "target": target,
        "source": "none",
        "live": None,
        "live_hash": None,
        "active_proposal_id": None,
        "revalidate_required": False,
        "updated_at": None,
        "position": 0,
    }
    if row is not None:
        answer.update({name: row[name] for name in TARGET_COLUMNS})
        answer["live_hash"] = None if row["live"] is None else content_hash(row["live"])
    return answer


def _parse(table: Table, filters: dict[str, str], allowed: set[str], created: Any) -> tuple[int, int | None, list[Any]]:
    violations = []
    conditions: list[Any] = []
    limit = DEFAULT_LIMIT
    cursor = None
    for key, value in filters.items():
        if key == "limit":
            given = integer_of(value)  # `50.0` is 50, as JSON Schema reads numbers
            if given is None or not 1 <= given <= MAX_LIMIT:
                violations.append(Violation("out_of_range", f"limit must be an integer in 1..{MAX_LIMIT}", "limit"))
            else:
                limit = given
        elif key == "cursor":
            if not is_ascii_digits(value) or len(value) > 18:
                violations.append(Violation("invalid_format", "cursor is not one this service issued", "cursor"))
            else:
                cursor = int(value)
        elif key == "min_position":
            continue
        elif key in ("since", "until"):  # records created at or after `since` and before `until` (SPEC §4.8)
            try:
                moment = rfc3339(parse_timestamp(value))
            except ValueError:
                violations.append(Violation("invalid_timestamp", f"{key} must be {RANGE}", key))
            else:
                conditions.append(created >= moment if key == "since" else created < moment)
        elif key not in allowed:
            violations.append(Violation("unknown_field", f"{key[:80]!r} is not a filter here", key[:80]))
        elif not is_identifier(value):
            message = f"{key} must be 1 to 200 characters without control characters"
            violations.append(Violation("invalid_value", message, key))
        elif key == "verdict" and value not in VERDICTS:
            violations.append(Violation("invalid_value", f"verdict must be one of {', '.join(VERDICTS)}", key))
        elif key == "revalidate_required":
            if value not in ("true", "false"):
                violations.append(Violation("invalid_value", "revalidate_required must be true or false", key))
            else:
                conditions.append(table.c.revalidate_required.is_(value == "true"))
        else:
            conditions.append(table.c[key] == value)
    if violations:
        raise InvalidInputError("; ".join(v.message for v in violations), violations)
    return limit, cursor, conditions
