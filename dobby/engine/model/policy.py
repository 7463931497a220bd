"""A tenant's promotion policy (SPEC §12): change freezes and the emergency stop, one stream per tenant.

A freeze holds back activations of the targets its pattern matches (fnmatch over `type:id`) from `starts_at` until
`ends_at` or until it is lifted; a stop holds back every activation of the tenant until it is resumed. Rollback is
never held back. What holds an activation back is a pure function of the stream's state and the moment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from datetime import datetime
from fnmatch import fnmatchcase
from uuid import UUID

from dobby.engine.kernel.clock import parse_rfc3339, rfc3339
from dobby.engine.kernel.shapes import RecordId, Timestamp, View
from dobby.engine.model.chain import ChainedAggregate, ChainedEvent, EventPayload, chained
from dobby.engine.rules.holds import Hold


class PolicyOpened(EventPayload, frozen=True):
    """The tenant's policy stream began (with its first freeze or stop)."""

    tenant_id: str


class FreezeDeclared(EventPayload, frozen=True):
    """Activations of the matching targets are held back for a window."""

    freeze_id: RecordId
    targets: str
    starts_at: Timestamp
    ends_at: Timestamp
    reason: str


class FreezeLifted(EventPayload, frozen=True):
    """A freeze ended before its time."""

    freeze_id: RecordId
    reason: str


class ActivationsStopped(EventPayload, frozen=True):
    """Every activation of the tenant is held back until resumed (the emergency stop)."""

    reason: str


class ActivationsResumed(EventPayload, frozen=True):
    """The emergency stop ended."""

    reason: str


class FreezeFiled(EventPayload, frozen=True):
    """A freeze's id names this one-event stream, which says whose policy holds it (a DELETE names only the id)."""

    tenant_id: str


class FreezeView(View, frozen=True):
    """A freeze as every answer shows it."""

    freeze_id: str
    tenant_id: str
    targets: str
    starts_at: str
    ends_at: str
    reason: str
    declared_by: str
    declared_at: str
    lifted_at: str | None
    lifted_by: str | None
    lift_reason: str | None


@dataclass(frozen=True)
class Freeze:
    freeze_id: str
    tenant_id: str
    targets: str
    starts_at: str
    ends_at: str
    reason: str
    declared_by: str
    declared_at: str
    lifted_at: str | None = None
    lifted_by: str | None = None
    lift_reason: str | None = None

    def in_force(self, now: datetime) -> bool:
        return self.lifted_at is None and parse_rfc3339(self.starts_at) <= now < parse_rfc3339(self.ends_at)

    def is_past(self, now: datetime) -> bool:
        return self.lifted_at is not None or parse_rfc3339(self.ends_at) <= now

    def covers(self, target: dict[str, str]) -> bool:
        return fnmatchcase(f"{target['type']}:{target['id']}", self.targets)

    def view(self) -> FreezeView:
        return FreezeView(**dataclasses.asdict(self))


@dataclass(frozen=True)
class Stop:
    reason: str
    stopped_by: str
    stopped_at: str


@dataclass(frozen=True)
class PolicyState:
    tenant_id: str
    freezes: tuple[Freeze, ...] = ()
    stop: Stop | None = None

    def freeze(self, freeze_id: str) -> Freeze | None:
        return next((freeze for freeze in self.freezes if freeze.freeze_id == freeze_id), None)


def hold_on(state: PolicyState | None, target: dict[str, str], now: datetime) -> Hold | None:
    """The stop if the tenant is stopped, else the first freeze in force over `target`, else None."""
    if state is None:
        return None
    if state.stop is not None:
        return Hold("stop", state.stop.reason, state.stop.stopped_at, None)
    for freeze in state.freezes:
        if freeze.in_force(now) and freeze.covers(target):
            return Hold("freeze", freeze.reason, freeze.starts_at, freeze.ends_at, freeze.freeze_id)
    return None


class TenantPolicy(ChainedAggregate[PolicyState]):
    @staticmethod
    def evolve(state: PolicyState | None, event: ChainedEvent) -> PolicyState:
        payload, at = event.payload, rfc3339(event.timestamp)
        if isinstance(event, PolicyOpened.Event):
            return PolicyState(tenant_id=payload["tenant_id"])
        assert state is not None
        if isinstance(event, FreezeDeclared.Event):
            freeze = Freeze(tenant_id=state.tenant_id, declared_by=event.actor, declared_at=at, **payload)
            return replace(state, freezes=(*state.freezes, freeze))
        if isinstance(event, FreezeLifted.Event):
            lifted = [
                replace(f, lifted_at=at, lifted_by=event.actor, lift_reason=payload["reason"])
                if f.freeze_id == payload["freeze_id"]
                else f
                for f in state.freezes
            ]
            return replace(state, freezes=tuple(lifted))
        if isinstance(event, ActivationsStopped.Event):
            return replace(state, stop=Stop(payload["reason"], event.actor, at))
        assert isinstance(event, ActivationsResumed.Event)
        return replace(state, stop=None)

    @classmethod
    def open(cls, policy_id: UUID, tenant_id: str, *, actor: str, at: datetime) -> TenantPolicy:
        policy: TenantPolicy = cls.start(PolicyOpened(tenant_id), id=policy_id, actor=actor, at=at)
        return policy

    def declare(self, freeze: FreezeDeclared, *, actor: str, at: datetime) -> None:
        self.record(freeze, actor=actor, at=at)

    def lift(self, freeze_id: str, reason: str, *, actor: str, at: datetime) -> None:
        self.record(FreezeLifted(freeze_id, reason), actor=actor, at=at)

    def stop(self, reason: str, *, actor: str, at: datetime) -> None:
        self.record(ActivationsStopped(reason), actor=actor, at=at)

    def resume(self, reason: str, *, actor: str, at: datetime) -> None:
        self.record(ActivationsResumed(reason), actor=actor, at=at)


class FreezeFile(ChainedAggregate[str]):
    @staticmethod
    def evolve(state: str | None, event: ChainedEvent) -> str:
        assert isinstance(event, FreezeFiled.Event)
        return str(event.payload["tenant_id"])

    @classmethod
    def open(cls, freeze_id: UUID, tenant_id: str, *, actor: str, at: datetime) -> FreezeFile:
        filed: FreezeFile = cls.start(FreezeFiled(tenant_id), id=freeze_id, actor=actor, at=at)
        return filed


chained(
    TenantPolicy,
    "dobby.engine.policy",
    PolicyOpened,
    FreezeDeclared,
    FreezeLifted,
    ActivationsStopped,
    ActivationsResumed,
)
chained(FreezeFile, "dobby.engine.policy", FreezeFiled)
