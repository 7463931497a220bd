"""One projection per table: each folds batches of recorded events into its rows. Dispatch is on event type only."""

from __future__ import annotations

import dataclasses
import functools
import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from msgspec import to_builtins
from sqlalchemy import Connection, MetaData, Table, bindparam, insert, select, update

from dobby.engine.commands.watch import WATCH_ACTOR
from dobby.engine.model.chain import ChainedEvent
from dobby.engine.model.proposal import PROPOSAL_EVENTS, Blocked, Generated, Proposal, ProposalState, RolledBack
from dobby.engine.model.replay import Replay, ReplayEvaluated
from dobby.engine.model.run import Run, RunRecorded
from dobby.engine.rules.lifecycle import TRANSITIONS
from dobby.projections.database import copy_rows
from dobby.projections.tables import (
    counters_table,
    encode_labels,
    proposals_table,
    replays_table,
    run_served_table,
    runs_table,
)

TRANSITION_TARGETS = {event_type: state for (_, event_type), state in TRANSITIONS.items()}


@dataclass(frozen=True)
class Recorded:
    """An event with its global position in the notification log."""

    position: int
    event: ChainedEvent


class Projection(ABC):
    """A fold of the log into tables. `version` names the shape of what it stores (SPEC §13): bump it by one
    whenever a change alters its rows or views (a new field, another fold), and every upgraded deployment rebuilds
    the projection by itself at start (dobby.projections.upgrade). 0 is "unversioned": rows written by releases
    before versions (40654e9, c517a40)."""

    name: str
    version: int

    @abstractmethod
    def tables(self, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        """This projection's tables under physical names `<live name><suffix>`."""

    @abstractmethod
    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        """Fold one batch into the tables, inside the caller's transaction."""


class RecordProjection(Projection):
    """A table of one-event streams (runs, replays): each creation event becomes one row, never updated."""

    event_type: type[ChainedEvent]

    @abstractmethod
    def row(self, event: ChainedEvent) -> dict[str, Any]:
        """The row's columns besides `seq`."""

    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        rows = [
            {**self.row(recorded.event), "seq": recorded.position}
            for recorded in batch
            if isinstance(recorded.event, self.event_type)
        ]
        if rows:
            copy_rows(connection, tables[self.name], rows)


class RunsProjection(RecordProjection):
    name = "runs"
    version = 2
    """2: run views carry `served`, and dobby_run_served indexes it by live_hash (SPEC §15)."""
    event_type = RunRecorded.Event

    def tables(self, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return {
            "runs": runs_table(metadata, "dobby_runs" + suffix),
            "run_served": run_served_table(metadata, "dobby_run_served" + suffix),
        }

    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        super().apply(connection, tables, batch)
        served = [
            {"seq": recorded.position, "item": index, "tenant_id": item["tenant_id"], "live_hash": item["live_hash"]}
            for recorded in batch
            if isinstance(recorded.event, RunRecorded.Event)
            for index, item in enumerate(_served(recorded.event))
        ]
        if served:
            copy_rows(connection, tables["run_served"], served)

    def row(self, event: ChainedEvent) -> dict[str, Any]:
        view = to_builtins(Run.evolve(None, event).view())
        columns = ("run_id", "tenant_id", "trace_id", "outcome", "learning_signal", "recorded_at")
        return {**{name: view[name] for name in columns}, "view": view}


def _served(event: ChainedEvent) -> list[dict[str, str]]:
    body = event.payload["body"]
    return [{"tenant_id": body["tenant_id"], "live_hash": item["live_hash"]} for item in body.get("served", ())]


class ReplaysProjection(RecordProjection):
    name = "replays"
    version = 3
    """2: views carry change_hash (SPEC §4.8); 3: metric results carry estimate, interval, confidence, inconclusive
    and needed_n (SPEC §14)."""
    event_type = ReplayEvaluated.Event

    def tables(self, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return {"replays": replays_table(metadata, "dobby_replays" + suffix)}

    def row(self, event: ChainedEvent) -> dict[str, Any]:
        view = to_builtins(Replay.evolve(None, event).view())
        columns = ("replay_id", "tenant_id", "verdict", "evaluated_at")
        target = {"target_type": view["target"]["type"], "target_id": view["target"]["id"]}
        return {**{name: view[name] for name in columns}, **target, "view": view}


class ProposalsProjection(Projection):
    """Proposal rows carry the engine's fold, so each event is applied with Proposal.evolve."""

    name = "proposals"
    version = 3  # 2: views and folds carry change_hash and change_judged (issue 22); 3: created_at column (since/until)

    def tables(self, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return {"proposals": proposals_table(metadata, "dobby_proposals" + suffix)}

    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        table = tables["proposals"]
        events = [r for r in batch if isinstance(r.event, PROPOSAL_EVENTS)]
        if not events:
            return
        wanted = {str(r.event.originator_id) for r in events if not isinstance(r.event, Generated.Event)}
        states: dict[str, ProposalState] = {}
        seqs: dict[str, int] = {}
        if wanted:
            stored = connection.execute(
                select(table.c.proposal_id, table.c.fold).where(table.c.proposal_id.in_(wanted))
            )
            states = {pid: ProposalState(**_loads(fold)) for pid, fold in stored}
        existing = set(states)
        for recorded in events:
            pid = str(recorded.event.originator_id)
            if pid not in states:
                seqs[pid] = recorded.position
            states[pid] = Proposal.evolve(states.get(pid), recorded.event)
        new_rows = [_proposal_row(state, seqs[pid]) for pid, state in states.items() if pid not in existing]
        changed = [_proposal_row(state, 0) | {"pid": pid} for pid, state in states.items() if pid in existing]
        if new_rows:
            connection.execute(insert(table), new_rows)
        if changed:
            columns = ("state", "revalidate_required", "expires_at", "activated_at", "version", "view", "fold")
            statement = (
                update(table)
                .where(table.c.proposal_id == bindparam("pid"))
                .values({name: bindparam(name) for name in columns})
            )
            connection.execute(statement, [{k: row[k] for k in (*columns, "pid")} for row in changed])


def _loads(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def _proposal_row(state: ProposalState, seq: int) -> dict[str, Any]:
    return {
        "proposal_id": state.proposal_id,
        "seq": seq,
        "tenant_id": state.tenant_id,
        "target_type": state.target["type"],
        "target_id": state.target["id"],
        "state": state.state,
        "revalidate_required": state.revalidate_required,
        "expires_at": state.expires_at,
        "activated_at": state.activated_at,
        "created_at": state.created_at,
        "version": state.version,
        "view": to_builtins(state.view()),
        "fold": _fold(state),
    }


def _fold(state: ProposalState) -> dict[str, Any]:
    """The engine's state as stored; `observed_n` only once summaries were observed, so rows of proposals that never
    were keep the shape earlier releases wrote."""
    fold = dataclasses.asdict(state)
    if fold["observed_n"] is None:
        del fold["observed_n"]
    return fold


def counter_deltas(batch: Sequence[Recorded]) -> Counter[tuple[str, str]]:
    """The durable counters of SPEC §6 that follow from a batch: (metric, canonical labels) → increment."""
    deltas: Counter[tuple[str, str]] = Counter()
    for recorded in batch:
        event, name = recorded.event, type(recorded.event).__name__
        if isinstance(event, RunRecorded.Event):
            deltas[("dobby_intake_total", _labels(result="accepted"))] += 1
            if event.payload["learning_signal"]:
                deltas[("dobby_learning_signals_total", _labels())] += 1
        elif isinstance(event, ReplayEvaluated.Event):
            verdict = event.payload["verdict"]
            deltas[("dobby_replay_evaluations_total", _labels(verdict=verdict))] += 1
            if verdict == "revalidate_required":
                deltas[("dobby_revalidate_required_total", _labels())] += 1
        elif isinstance(event, PROPOSAL_EVENTS) and name in TRANSITION_TARGETS:
            deltas[("dobby_proposal_transitions_total", _labels(to=TRANSITION_TARGETS[name]))] += 1
            if isinstance(event, RolledBack.Event) and event.actor == WATCH_ACTOR:
                deltas[("dobby_auto_rollbacks_total", _labels())] += 1
            if isinstance(event, Blocked.Event) and event.payload["reason"] == "approval_stale":
                deltas[("dobby_activation_denials_total", _labels(reason="approval_stale"))] += 1
    return deltas


def _labels(**labels: str) -> str:
    return _encoded(tuple(sorted(labels.items())))


@functools.cache
def _encoded(labels: tuple[tuple[str, str], ...]) -> str:
    """Label sets come from a handful of values (results, verdicts, states): each is encoded once."""
    return encode_labels(dict(labels))


class CountersProjection(Projection):
    name = "counters"
    version = 1

    def tables(self, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return {"counters": counters_table(metadata, "dobby_counters" + suffix)}

    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        table = tables["counters"]
        for (metric, labels), amount in counter_deltas(batch).items():
            bumped = connection.execute(
                update(table)
                .where(table.c.metric == metric, table.c.labels == labels)
                .values(value=table.c.value + amount)
            )
            if bumped.rowcount == 0:
                connection.execute(insert(table).values(metric=metric, labels=labels, value=amount))


PROJECTIONS: tuple[Projection, ...] = (
    RunsProjection(),
    ReplaysProjection(),
    ProposalsProjection(),
    CountersProjection(),
)
