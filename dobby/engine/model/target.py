"""The Target stream: what is live on one tenant's target, and which proposals are still in play there.

It holds the rule "at most one active proposal per tenant+target": activation saves the proposal and its
target together, so two activations on one target can never both commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from dobby.engine.kernel.canonical import content_hash
from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.errors import ConflictError
from dobby.engine.kernel.shapes import Hash, RecordId, TargetRef, View
from dobby.engine.model.chain import ChainedAggregate, ChainedEvent, EventPayload, chained


class TargetOpened(EventPayload, frozen=True):
    """A target got its first proposal or replay."""

    tenant_id: str
    target: TargetRef


class ProposalAttached(EventPayload, frozen=True):
    """A new proposal for this target is in play."""

    proposal_id: RecordId


class ProposalDetached(EventPayload, frozen=True):
    """A proposal reached a terminal state and left play."""

    proposal_id: RecordId


class ProposalWentLive(EventPayload, frozen=True):
    """A proposal became the target's one active change; its baseline is stored for rollback."""

    proposal_id: RecordId
    change: dict[str, Any]
    baseline: dict[str, Any]
    change_hash: Hash | None = None
    """The hash of `change`; absent from events stored before."""


class BaselineRestored(EventPayload, frozen=True):
    """The active proposal was rolled back and the stored baseline is live again."""

    proposal_id: RecordId
    baseline: dict[str, Any]


class RevalidationDemanded(EventPayload, frozen=True):
    """A replay for this target was judged revalidate_required."""

    replay_id: RecordId


class TargetView(View, frozen=True):
    tenant_id: str
    target: dict[str, str]
    active_proposal_id: str | None
    live_config: dict[str, Any] | None
    restored_baseline: dict[str, Any] | None
    in_play: list[str]
    revalidation_demanded_at: str | None


class TargetRead(View, frozen=True):
    """What a runtime should run now on one tenant's target (SPEC §4.1), as the targets projection serves it."""

    tenant_id: str
    target: dict[str, str]
    source: Literal["proposal", "baseline", "none"]
    live: dict[str, Any] | None
    live_hash: Hash | None
    """The hash (SPEC §3) of `live`: what a runtime names in an intake's `served`, OFREP's variant (§15), and what
    it can compare with the change_hash an approver bound."""
    active_proposal_id: str | None
    revalidate_required: bool
    updated_at: str | None
    position: int


@dataclass(frozen=True)
class TargetState:
    tenant_id: str
    target: dict[str, str]
    active_proposal_id: str | None
    live_config: dict[str, Any] | None
    restored_baseline: dict[str, Any] | None
    in_play: tuple[str, ...]
    revalidation_demanded_at: str | None

    def view(self) -> TargetView:
        return TargetView(
            tenant_id=self.tenant_id,
            target=self.target,
            active_proposal_id=self.active_proposal_id,
            live_config=self.live_config,
            restored_baseline=self.restored_baseline,
            in_play=list(self.in_play),
            revalidation_demanded_at=self.revalidation_demanded_at,
        )


def _evolve(state: TargetState, event: ChainedEvent) -> TargetState:
    payload = event.payload
    proposal_id = str(payload.get("proposal_id"))
    if isinstance(event, ProposalAttached.Event):
        return replace(state, in_play=(*state.in_play, proposal_id))
    if isinstance(event, ProposalDetached.Event):
        return replace(state, in_play=tuple(p for p in state.in_play if p != proposal_id))
    if isinstance(event, ProposalWentLive.Event):
        return replace(state, active_proposal_id=proposal_id, live_config=payload["change"], restored_baseline=None)
    if isinstance(event, BaselineRestored.Event):
        return replace(
            state,
            active_proposal_id=None,
            live_config=payload["baseline"],
            restored_baseline=payload["baseline"],
            in_play=tuple(p for p in state.in_play if p != proposal_id),
        )
    assert isinstance(event, RevalidationDemanded.Event)
    return replace(state, revalidation_demanded_at=rfc3339(event.timestamp))


class Target(ChainedAggregate[TargetState]):
    @staticmethod
    def evolve(state: TargetState | None, event: ChainedEvent) -> TargetState:
        if isinstance(event, TargetOpened.Event):
            return TargetState(
                tenant_id=event.payload["tenant_id"],
                target=event.payload["target"],
                active_proposal_id=None,
                live_config=None,
                restored_baseline=None,
                in_play=(),
                revalidation_demanded_at=None,
            )
        assert state is not None
        return _evolve(state, event)

    @classmethod
    def open(cls, target_id: UUID, tenant_id: str, target: dict[str, str], *, actor: str, at: datetime) -> Target:
        opened: Target = cls.start(
            TargetOpened(tenant_id, TargetRef(target["type"], target["id"])), id=target_id, actor=actor, at=at
        )
        return opened

    def attach(self, proposal_id: str, *, actor: str, at: datetime) -> None:
        self.record(ProposalAttached(proposal_id), actor=actor, at=at)

    def detach(self, proposal_id: str, *, actor: str, at: datetime) -> None:
        if proposal_id in self.state.in_play:
            self.record(ProposalDetached(proposal_id), actor=actor, at=at)

    def go_live(
        self, proposal_id: str, change: dict[str, Any], baseline: dict[str, Any], *, actor: str, at: datetime
    ) -> None:
        active = self.state.active_proposal_id
        if active is not None:
            raise ConflictError(f"proposal {active} is already active on this target")
        self.record(ProposalWentLive(proposal_id, change, baseline, content_hash(change)), actor=actor, at=at)

    def restore_baseline(self, proposal_id: str, baseline: dict[str, Any], *, actor: str, at: datetime) -> None:
        assert self.state.active_proposal_id == proposal_id
        self.record(BaselineRestored(proposal_id, baseline), actor=actor, at=at)

    def demand_revalidation(self, replay_id: str, *, actor: str, at: datetime) -> None:
        self.record(RevalidationDemanded(replay_id), actor=actor, at=at)


chained(
    Target,
    "dobby.engine.target",
    TargetOpened,
    ProposalAttached,
    ProposalDetached,
    ProposalWentLive,
    BaselineRestored,
    RevalidationDemanded,
)
