"""The promotion family, second half (SPEC §4.6, §4.7): activate behind every guard, roll back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from msgspec import structs

from dobby.engine.commands.context import Context, Scope, transaction
from dobby.engine.commands.loading import (
    ProposalAnswer,
    answer,
    detached,
    guard_inputs,
    load_proposal,
    proposal_uuid,
    target_of,
)
from dobby.engine.commands.promotion import ProposalRef
from dobby.engine.kernel.canonical import velocity_ledger_id_for
from dobby.engine.kernel.errors import RuleViolationError, StaleReadError
from dobby.engine.kernel.shapes import Reason, RecordId, Shape
from dobby.engine.model.ledger import Ledger
from dobby.engine.model.proposal import Proposal
from dobby.engine.rules import lifecycle
from dobby.engine.rules.guards import Guard
from dobby.engine.rules.modes import Mode

DENIALS_TOTAL = "dobby_activation_denials_total"
FROZEN_TOTAL = "dobby_frozen_activations_total"


class Rollback(Shape, frozen=True):
    proposal_id: RecordId
    reason: Reason


class RollbackAnswer(ProposalAnswer, frozen=True):
    restored_baseline: dict[str, Any] = {}


@dataclass
class ActivationCommands:
    context: Context

    def activate(self, body: ProposalRef, *, actor: str, tenants: Scope = None) -> ProposalAnswer:
        mode = self.context.mode()
        if mode == Mode.warmup:
            raise self.context.warmup_error()
        return self._activate(proposal_uuid(body.proposal_id), mode, tenants, actor=actor)

    @transaction
    def _activate(self, now: datetime, pid: UUID, mode: Mode, tenants: Scope, *, actor: str) -> ProposalAnswer:
        context = self.context
        proposal = load_proposal(context, pid, tenants)
        state = proposal.state
        judged = guard_inputs(context, proposal, mode, now)
        if judged.failed:
            self._refuse(proposal, judged.failed, actor, now, judged.allowance.retry_after)
        holder = judged.holder
        assert holder is not None
        velocity_id = velocity_ledger_id_for(state.tenant_id)
        velocity = judged.velocity or Ledger.open(
            velocity_id, "promotion_velocity", {"tenant_id": state.tenant_id}, actor=actor, at=now
        )
        proposal.activate(actor=actor, at=now)
        holder.go_live(str(pid), state.change, state.baseline, actor=actor, at=now)
        velocity.spend(str(pid), context.limits.velocity_window_seconds, actor=actor, at=now)
        return answer(proposal, context.uow.save(proposal, holder, velocity))

    def _refuse(self, proposal: Proposal, failed: list[Guard], actor: str, now: datetime, retry: float) -> None:
        """An approval that expired blocks the proposal (unless the mode forbids writing); every failed guard is
        counted and reported."""
        state = proposal.state
        if state.state == lifecycle.APPROVED and state.approval_expired(now) and failed[0].name != "mode":
            proposal.block("approval_stale", ["the approval expired before activation"], actor=actor, at=now)
            self.context.uow.save(proposal, *detached(self.context, proposal, actor, now))
        for guard in failed:
            if guard.code != "approval_stale":
                self.context.observer.count(DENIALS_TOTAL, {"reason": guard.code})
            if guard.code == "frozen":
                self.context.observer.count(FROZEN_TOTAL, {})
        velocity_failed = any(guard.name == "velocity" for guard in failed)
        raise RuleViolationError(
            [guard.violation() for guard in failed], retry_after=retry if velocity_failed else None
        )

    def rollback(self, body: Rollback, *, actor: str, tenants: Scope = None) -> RollbackAnswer:
        self.context.require_mode("rollback")
        return self._roll_back(proposal_uuid(body.proposal_id), body.reason, tenants, actor=actor)

    @transaction
    def _roll_back(self, now: datetime, pid: UUID, reason: str, tenants: Scope, *, actor: str) -> RollbackAnswer:
        context = self.context
        proposal = load_proposal(context, pid, tenants)
        proposal.roll_back(reason, actor=actor, at=now)
        holder = target_of(context, proposal)
        if holder is None or holder.state.active_proposal_id != str(pid):
            raise StaleReadError(f"target of {pid} no longer shows it active")
        holder.restore_baseline(str(pid), proposal.state.baseline, actor=actor, at=now)
        position = context.uow.save(proposal, holder)
        view = structs.asdict(proposal.state.view())
        return RollbackAnswer(**view, position=position, restored_baseline=proposal.state.baseline)
