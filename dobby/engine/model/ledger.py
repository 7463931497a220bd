"""Sliding-window ledgers: the replay budget per tenant+target and the promotion velocity breaker per tenant.

Each ledger is its own stream, saved in the same atomic save as the command it limits, so optimistic
concurrency makes the limit hold under any interleaving.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from dobby.engine.kernel.clock import parse_rfc3339, rfc3339
from dobby.engine.kernel.shapes import Timestamp
from dobby.engine.model.chain import ChainedAggregate, ChainedEvent, EventPayload, chained
from dobby.engine.rules.windows import Allowance, allowance

LedgerKind = Literal["replay_budget", "promotion_velocity"]


class LedgerOpened(EventPayload, frozen=True):
    """A ledger started counting for its scope."""

    kind: LedgerKind
    scope: dict[str, str]


class Spent(EventPayload, frozen=True):
    """One unit of the ledger's limit was used (a replay evaluation, an activation)."""

    at: Timestamp
    ref: str
    window_seconds: float


@dataclass(frozen=True)
class LedgerState:
    kind: str
    scope: dict[str, str]
    spends: tuple[str, ...]

    def spend_times(self) -> tuple[datetime, ...]:
        return tuple(parse_rfc3339(at) for at in self.spends)


class Ledger(ChainedAggregate[LedgerState]):
    @staticmethod
    def evolve(state: LedgerState | None, event: ChainedEvent) -> LedgerState:
        if isinstance(event, LedgerOpened.Event):
            return LedgerState(kind=event.payload["kind"], scope=event.payload["scope"], spends=())
        assert state is not None and isinstance(event, Spent.Event)
        at = parse_rfc3339(event.payload["at"])
        horizon = at - timedelta(seconds=event.payload["window_seconds"])
        kept = tuple(s for s in state.spends if parse_rfc3339(s) > horizon)
        return replace(state, spends=(*kept, event.payload["at"]))

    @classmethod
    def open(cls, ledger_id: UUID, kind: LedgerKind, scope: dict[str, str], *, actor: str, at: datetime) -> Ledger:
        ledger: Ledger = cls.start(LedgerOpened(kind, scope), id=ledger_id, actor=actor, at=at)
        return ledger

    def allowance(self, limit: int, window_seconds: float, now: datetime) -> Allowance:
        return allowance(self.state.spend_times(), limit, window_seconds, now)

    def spend(self, ref: str, window_seconds: float, *, actor: str, at: datetime) -> None:
        self.record(Spent(rfc3339(at), ref, window_seconds), actor=actor, at=at)


chained(Ledger, "dobby.engine.ledger", LedgerOpened, Spent)
