"""Reading what a proposal command acts on: the proposal, its target, Fabric's view of its binding, its answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from msgspec import structs

from dobby.engine.commands.context import Context, Scope, may_see
from dobby.engine.kernel.canonical import policy_id_for, target_id_for, velocity_ledger_id_for
from dobby.engine.kernel.errors import not_found
from dobby.engine.kernel.shapes import UNSET, UnsetType
from dobby.engine.model.chain import ChainedAggregate
from dobby.engine.model.ledger import Ledger
from dobby.engine.model.policy import TenantPolicy, hold_on
from dobby.engine.model.proposal import Proposal, ProposalState, ProposalView
from dobby.engine.model.target import Target
from dobby.engine.rules.guards import Guard, activation_guards
from dobby.engine.rules.holds import Hold
from dobby.engine.rules.judgement import family_drift
from dobby.engine.rules.modes import Mode
from dobby.engine.rules.windows import Allowance, allowance
from dobby.engine.store.unit_of_work import parse_uuid


class ProposalAnswer(ProposalView, frozen=True):
    position: int
    duplicate: bool | UnsetType = UNSET


def answer(proposal: Proposal, position: int, **extra: Any) -> ProposalAnswer:
    return ProposalAnswer(**structs.asdict(proposal.state.view()), position=position, **extra)


def proposal_uuid(proposal_id: str) -> UUID:
    pid = parse_uuid(proposal_id)
    if pid is None:
        raise not_found("proposal", proposal_id)
    return pid


def load_proposal(context: Context, pid: UUID, tenants: Scope = None) -> Proposal:
    """The proposal, when it exists and its tenant is in `tenants`; else not_found, the same for both (SPEC §8)."""
    proposal = context.uow.get(Proposal, pid)
    if proposal is None or not may_see(tenants, proposal.state.tenant_id):
        raise not_found("proposal", str(pid))
    return proposal


def target_of(context: Context, proposal: Proposal) -> Target | None:
    state = proposal.state
    return context.uow.get(Target, target_id_for(state.tenant_id, state.target["type"], state.target["id"]))


def detached(context: Context, proposal: Proposal, actor: str, now: datetime) -> list[ChainedAggregate[Any]]:
    """The proposal's target with the proposal let go, when the target still holds it in play."""
    holder = target_of(context, proposal)
    if holder is None or str(proposal.id) not in holder.state.in_play:
        return []
    holder.detach(str(proposal.id), actor=actor, at=now)
    return [holder]


def drift_now(context: Context, bound: dict[str, str]) -> list[str]:
    """Bound families against Fabric's document now; nothing when Fabric cannot be read (the mode guard holds)."""
    document = context.document()
    return [] if document is None else family_drift(bound, document.families)


@dataclass(frozen=True)
class GuardInputs:
    """What the activation guards of SPEC §4.6 and §12 read, each loaded once, and their verdicts: the same for
    activate and explain, so explain shows exactly what activate would judge."""

    holder: Target | None
    velocity: Ledger | None
    allowance: Allowance
    guards: list[Guard]

    @property
    def failed(self) -> list[Guard]:
        return [guard for guard in self.guards if not guard.passed]


def guard_inputs(context: Context, proposal: Proposal, mode: Mode, now: datetime) -> GuardInputs:
    state = proposal.state
    limits = context.limits
    holder = target_of(context, proposal)
    velocity = context.uow.get(Ledger, velocity_ledger_id_for(state.tenant_id))
    spent = velocity.state.spend_times() if velocity else ()
    allowed = allowance(spent, limits.velocity_max, limits.velocity_window_seconds, now)
    active = holder.state.active_proposal_id if holder else None
    guards = activation_guards(
        state,
        mode=mode,
        other_active_id=active if active != state.proposal_id else None,
        velocity=allowed,
        drift=drift_now(context, state.family_versions),
        now=now,
        hold=hold_now(context, state, now),
    )
    return GuardInputs(holder, velocity, allowed, guards)


def hold_now(context: Context, state: ProposalState, now: datetime) -> Hold | None:
    """What the tenant's policy holds the proposal's target back with now (SPEC §12), if anything."""
    policy = context.uow.get(TenantPolicy, policy_id_for(state.tenant_id))
    return hold_on(None if policy is None else policy.state, state.target, now)
