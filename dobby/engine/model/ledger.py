"""Sliding-window ledgers: the replay budget per tenant+target and the promotion velocity breaker per tenant.

Each ledger is its own stream, saved in the same atomic save as the command it limits, so optimistic
concurrency makes the limit hold under any interleaving.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from dobby.engine.kernel.clock import parse_rfc3339, rfc3339
from dobby.engine.model import payloads as stored
from dobby.engine.model.chain import ChainedAggregate, ChainedCreated, ChainedEvent, named_in_log
from dobby.engine.rules.windows import Allowance, allowance


@dataclass(frozen=True)
class LedgerState:
    kind: str
    scope: dict[str, str]
    spends: tuple[str, ...]

    def spend_times(self) -> tuple[datetime, ...]:
        return tuple(parse_rfc3339(at) for at in self.spends)


class LedgerOpened(ChainedCreated):
    """A ledger started counting for its scope."""


class Spent(ChainedEvent):
    """One unit of the ledger's limit was used (a replay evaluation, an activation)."""


class Ledger(ChainedAggregate[LedgerState]):
    @staticmethod
    def evolve(state: LedgerState | None, event: ChainedEvent) -> LedgerState:
        if isinstance(event, LedgerOpened):
            return LedgerState(kind=event.payload["kind"], scope=event.payload["scope"], spends=())
        assert state is not None and isinstance(event, Spent)
        at = parse_rfc3339(event.payload["at"])
        horizon = at - timedelta(seconds=event.payload["window_seconds"])
        kept = tuple(s for s in state.spends if parse_rfc3339(s) > horizon)
        return replace(state, spends=(*kept, event.payload["at"]))

    @classmethod
    def open(
        cls, ledger_id: UUID, kind: stored.LedgerKind, scope: dict[str, str], *, actor: str, at: datetime
    ) -> Ledger:
        ledger: Ledger = cls.start(
            LedgerOpened, id=ledger_id, payload=stored.LedgerOpened(kind, scope), actor=actor, at=at
        )
        return ledger

    def allowance(self, limit: int, window_seconds: float, now: datetime) -> Allowance:
        return allowance(self.state.spend_times(), limit, window_seconds, now)

    def spend(self, ref: str, window_seconds: float, *, actor: str, at: datetime) -> None:
        self.record(Spent, payload=stored.Spent(rfc3339(at), ref, window_seconds), actor=actor, at=at)


named_in_log("dobby.engine.ledger", Ledger, LedgerOpened, Spent)
