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
from dobby.engine.kernel.shapes import Hash, TargetRef, View
from dobby.engine.model import payloads as stored
from dobby.engine.model.chain import ChainedAggregate, ChainedCreated, ChainedEvent, named_in_log


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


class TargetOpened(ChainedCreated):
    """A target got its first proposal or replay."""


class ProposalAttached(ChainedEvent):
    """A new proposal for this target is in play."""


class ProposalDetached(ChainedEvent):
    """A proposal reached a terminal state and left play."""


class ProposalWentLive(ChainedEvent):
    """A proposal became the target's one active change; its baseline is stored for rollback."""


class BaselineRestored(ChainedEvent):
    """The active proposal was rolled back and the stored baseline is live again."""


class RevalidationDemanded(ChainedEvent):
    """A replay for this target was judged revalidate_required."""


def _evolve(state: TargetState, event: ChainedEvent) -> TargetState:
    payload = event.payload
    proposal_id = str(payload.get("proposal_id"))
    if isinstance(event, ProposalAttached):
        return replace(state, in_play=(*state.in_play, proposal_id))
    if isinstance(event, ProposalDetached):
        return replace(state, in_play=tuple(p for p in state.in_play if p != proposal_id))
    if isinstance(event, ProposalWentLive):
        return replace(state, active_proposal_id=proposal_id, live_config=payload["change"], restored_baseline=None)
    if isinstance(event, BaselineRestored):
        return replace(
            state,
            active_proposal_id=None,
            live_config=payload["baseline"],
            restored_baseline=payload["baseline"],
            in_play=tuple(p for p in state.in_play if p != proposal_id),
        )
    assert isinstance(event, RevalidationDemanded)
    return replace(state, revalidation_demanded_at=rfc3339(event.timestamp))


class Target(ChainedAggregate[TargetState]):
    @staticmethod
    def evolve(state: TargetState | None, event: ChainedEvent) -> TargetState:
        if isinstance(event, TargetOpened):
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
            TargetOpened,
            id=target_id,
            payload=stored.TargetOpened(tenant_id, TargetRef(target["type"], target["id"])),
            actor=actor,
            at=at,
        )
        return opened

    def attach(self, proposal_id: str, *, actor: str, at: datetime) -> None:
        self.record(ProposalAttached, payload=stored.ProposalAttached(proposal_id), actor=actor, at=at)

    def detach(self, proposal_id: str, *, actor: str, at: datetime) -> None:
        if proposal_id in self.state.in_play:
            self.record(ProposalDetached, payload=stored.ProposalDetached(proposal_id), actor=actor, at=at)

    def go_live(
        self, proposal_id: str, change: dict[str, Any], baseline: dict[str, Any], *, actor: str, at: datetime
    ) -> None:
        active = self.state.active_proposal_id
        if active is not None:
            raise ConflictError(f"proposal {active} is already active on this target")
        payload = stored.ProposalWentLive(proposal_id, change, baseline, content_hash(change))
        self.record(ProposalWentLive, payload=payload, actor=actor, at=at)

    def restore_baseline(self, proposal_id: str, baseline: dict[str, Any], *, actor: str, at: datetime) -> None:
        assert self.state.active_proposal_id == proposal_id
        self.record(BaselineRestored, payload=stored.BaselineRestored(proposal_id, baseline), actor=actor, at=at)

    def demand_revalidation(self, replay_id: str, *, actor: str, at: datetime) -> None:
        self.record(RevalidationDemanded, payload=stored.RevalidationDemanded(replay_id), actor=actor, at=at)


named_in_log(
    "dobby.engine.target",
    Target,
    TargetOpened,
    ProposalAttached,
    ProposalDetached,
    ProposalWentLive,
    BaselineRestored,
    RevalidationDemanded,
)
