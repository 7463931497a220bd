"""The expiry family (SPEC §1): open proposals past their TTL or needing revalidation expire; stale ones are flagged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from dobby.engine.commands.context import PROCESSOR_ACTOR, Context, transaction
from dobby.engine.commands.loading import ProposalAnswer, answer, detached, load_proposal, proposal_uuid
from dobby.engine.model.proposal import ExpiryReason
from dobby.engine.rules import lifecycle


@dataclass
class ExpiryCommands:
    context: Context

    def expire(self, proposal_id: str, *, actor: str = PROCESSOR_ACTOR) -> ProposalAnswer | None:
        """Expire an open proposal that is revalidate_required or past its TTL; None when there is nothing to do."""
        return self._expire(proposal_uuid(proposal_id), actor)

    @transaction
    def _expire(self, now: datetime, pid: UUID, actor: str) -> ProposalAnswer | None:
        context = self.context
        proposal = load_proposal(context, pid)
        state = proposal.state
        if not state.is_open:
            return None
        reason: ExpiryReason
        if state.revalidate_required:
            reason = "revalidate_required"
        elif state.is_past_ttl(now):
            reason = "ttl"
        else:
            return None
        proposal.expire(reason, actor=actor, at=now)
        return answer(proposal, context.uow.save(proposal, *detached(context, proposal, actor, now)))

    def mark_revalidation_required(
        self, proposal_id: str, reason: str, *, actor: str = PROCESSOR_ACTOR
    ) -> ProposalAnswer | None:
        """Flag an open or active proposal; None when it is already flagged or no longer in play."""
        return self._flag(proposal_uuid(proposal_id), reason, actor)

    @transaction
    def _flag(self, now: datetime, pid: UUID, reason: str, actor: str) -> ProposalAnswer | None:
        proposal = load_proposal(self.context, pid)
        state = proposal.state
        if state.revalidate_required or not (state.is_open or state.state == lifecycle.ACTIVE):
            return None
        proposal.require_revalidation(reason, actor=actor, at=now)
        return answer(proposal, self.context.uow.save(proposal))
