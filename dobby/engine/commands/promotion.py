"""The promotion family, first half (SPEC §4.4, §4.5): propose, approve-check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from msgspec import Meta, structs

from dobby.engine.commands.context import Context, Scope, require_tenant, transaction
from dobby.engine.commands.loading import (
    ProposalAnswer,
    answer,
    detached,
    load_proposal,
    proposal_uuid,
)
from dobby.engine.kernel.canonical import content_hash, proposal_id_for, target_id_for
from dobby.engine.kernel.clock import parse_rfc3339, rfc3339
from dobby.engine.kernel.errors import (
    ConflictError,
    InvalidStateError,
    RuleViolationError,
    Violation,
    not_found,
)
from dobby.engine.kernel.ports import ApprovalSource, UpstreamUnavailableError
from dobby.engine.kernel.shapes import (
    UNSET,
    FreeObject,
    Identifier,
    Rationale,
    RecordId,
    Risk,
    Shape,
    TargetRef,
    UnsetType,
    View,
)
from dobby.engine.model import proposal as stored
from dobby.engine.model.chain import ChainedAggregate
from dobby.engine.model.proposal import Proposal
from dobby.engine.model.replay import Replay
from dobby.engine.model.target import Target
from dobby.engine.rules import lifecycle
from dobby.engine.rules.admission import check_admission, check_sizes
from dobby.engine.rules.approval import ApprovalJudgement, approval_requirement, approvers_needed, judge_approval
from dobby.engine.rules.judgement import family_drift
from dobby.engine.store.unit_of_work import parse_uuid


class Propose(Shape, frozen=True):
    """Admit a passed replay as a proposal for its target."""

    tenant_id: Identifier
    replay_id: RecordId
    target: TargetRef
    risk: Risk
    baseline: FreeObject
    change: FreeObject | UnsetType = UNSET
    """The candidate configuration; may be left out when the replay named its change, which is then taken."""
    rationale: Rationale | UnsetType = UNSET
    ttl_seconds: Annotated[int, Meta(ge=1, le=31_536_000)] | UnsetType = UNSET
    auto_rollback: bool | UnsetType = UNSET
    """False: an observed regression does not roll the proposal back by itself (SPEC §12)."""


class ProposalRef(Shape, frozen=True):
    """approve-check and activate name one proposal."""

    proposal_id: RecordId


class CheckAnswer(View, frozen=True):
    proposal_id: str
    state: str
    approval_outcome: str | None
    reasons: list[str]
    position: int


@dataclass(frozen=True)
class Judged:
    """What propose settled before it writes: the change and whether the replay judged it, the request's hash, the
    proposal's lifetime."""

    change: dict[str, Any]
    change_judged: bool
    request_hash: str
    ttl: int


@dataclass
class PromotionCommands:
    context: Context
    approvals: ApprovalSource

    def propose(self, body: Propose, *, actor: str, tenants: Scope = None) -> tuple[ProposalAnswer, bool]:
        require_tenant(tenants, body.tenant_id)
        context = self.context
        uow = context.uow
        context.require_mode("propose")
        check_sizes(change=None if body.change is UNSET else body.change, baseline=body.baseline)
        fabric = context.fabric()
        violations = check_admission(body.target, fabric)
        replay = uow.get(Replay, parse_uuid(body.replay_id))
        if replay is None or replay.state.tenant_id != body.tenant_id:  # another tenant's: as if unknown (§4.4, §8)
            raise not_found("replay", body.replay_id, "replay_id")
        if replay.state.target != structs.asdict(body.target):
            violations.append(Violation("replay_not_passed", "the replay judged another target", "target"))
        elif replay.state.verdict != "passed":
            message = f"the replay's verdict is {replay.state.verdict}"
            violations.append(Violation("replay_not_passed", message, "replay_id"))
        change, change_judged = self._judged_change(body, replay, violations)
        proposal_id = proposal_id_for(replay.id)
        request_hash = content_hash(structs.replace(body, change=change))  # the change taken or given: one request
        if violations:
            earlier = uow.get(Proposal, proposal_id)
            if earlier is not None and earlier.state.request_hash == request_hash and _only_unjudged(violations):
                return answer(earlier, uow.position(), duplicate=True), False  # proposed before the rule
            raise RuleViolationError(violations)
        ttl = context.limits.proposal_ttl_seconds if body.ttl_seconds is UNSET else body.ttl_seconds
        return self._generate(body, replay, Judged(change, change_judged, request_hash, ttl), actor=actor)

    @transaction
    def _generate(
        self, now: datetime, body: Propose, replay: Replay, judged: Judged, *, actor: str
    ) -> tuple[ProposalAnswer, bool]:
        uow = self.context.uow
        change, change_judged, request_hash, ttl = judged.change, judged.change_judged, judged.request_hash, judged.ttl
        proposal_id = proposal_id_for(replay.id)
        target_id = target_id_for(body.tenant_id, body.target.type, body.target.id)
        existing = uow.get(Proposal, proposal_id)
        if existing is not None:
            if existing.state.request_hash != request_hash:
                raise ConflictError(
                    f"proposal {proposal_id} already exists for replay {replay.id} with a different request"
                )
            return answer(existing, uow.position(), duplicate=True), False
        holder = uow.get(Target, target_id) or Target.open(
            target_id, body.tenant_id, structs.asdict(body.target), actor=actor, at=now
        )
        demanded = holder.state.revalidation_demanded_at
        stale = demanded is not None and parse_rfc3339(demanded) >= parse_rfc3339(replay.state.evaluated_at)
        generated = stored.Generated(
            tenant_id=body.tenant_id,
            target=body.target,
            risk=body.risk,
            replay_id=body.replay_id,
            candidate_hash=replay.state.candidate_hash,
            provenance_hash=replay.state.provenance_hash,
            family_versions=replay.state.family_versions,
            change=change,
            baseline=body.baseline,
            rationale=None if body.rationale is UNSET else body.rationale,
            approval_requirement=approval_requirement(body.risk),
            revalidate_required=stale,
            expires_at=rfc3339(now + timedelta(seconds=ttl)),
            request_hash=request_hash,
            auto_rollback=body.auto_rollback is not False,
            change_hash=content_hash(change),
            change_judged=change_judged,
        )
        proposal = Proposal.generate(proposal_id, generated, actor=actor, at=now)
        holder.attach(str(proposal_id), actor=actor, at=now)
        return answer(proposal, uow.save(proposal, holder), duplicate=False), True

    def _judged_change(self, body: Propose, replay: Replay, violations: list[Violation]) -> tuple[dict[str, Any], bool]:
        """The change to propose and whether the replay judged it (SPEC §4.4): the replay's own when the body leaves
        it out; a different one is `change_mismatch`; one the replay did not judge is `change_not_judged` unless
        DOBBY_REQUIRE_JUDGED_CHANGE is off. Violations are appended to `violations`."""
        judged = replay.state.change_hash
        given = None if body.change is UNSET else body.change
        if judged is not None:
            if given is None:
                return replay.state.change or {}, True
            if content_hash(given) != judged:
                message = f"the change's hash {content_hash(given)} differs from the one the replay judged, {judged}"
                extra = {"change_hash": content_hash(given), "judged_change_hash": judged}
                violations.append(Violation("change_mismatch", message, "change", extra=extra))
            return given, True
        if self.context.limits.require_judged_change:
            message = (
                f"replay {replay.id} judged no change: what goes live must be what was judged (name the change "
                "when evaluating the replay, or set DOBBY_REQUIRE_JUDGED_CHANGE=false)"
            )
            violations.append(Violation("change_not_judged", message, "replay_id"))
        elif given is None:
            violations.append(Violation("required", "the replay named no change: give `change`", "change"))
        return given or {}, False

    def approve_check(self, body: ProposalRef, *, actor: str, tenants: Scope = None) -> CheckAnswer:
        self.context.require_mode("approve_check")
        return self._check(proposal_uuid(body.proposal_id), tenants, actor=actor)

    @transaction
    def _check(self, now: datetime, pid: UUID, tenants: Scope, *, actor: str) -> CheckAnswer:
        context, uow = self.context, self.context.uow
        proposal = load_proposal(context, pid, tenants)
        if proposal.state.state not in (lifecycle.GENERATED, lifecycle.REPLAY_VALIDATED):
            raise InvalidStateError(
                f"proposal {pid} is {proposal.state.state}; approve-check needs generated or replay_validated"
            )
        if proposal.state.state == lifecycle.GENERATED:
            problems = self._evidence_problems(proposal)
            if problems:
                proposal.block("replay_evidence_invalid", problems, actor=actor, at=now)
                position = uow.save(proposal, *detached(context, proposal, actor, now))
                return _check_answer(proposal, None, problems, position)
            proposal.validate_replay(["replay_passed", "binding_matches", "families_current"], actor=actor, at=now)
        try:
            approval = self.approvals.approval_for(str(pid))
        except UpstreamUnavailableError as error:
            reasons = [f"Warp unavailable: {error}"]
            proposal.note_approval_check(ApprovalJudgement("unavailable", tuple(reasons)), None, actor=actor, at=now)
            return _check_answer(proposal, "unavailable", reasons, uow.save(proposal))
        judgement = judge_approval(
            approval,
            proposal_id=str(pid),
            candidate_hash=proposal.state.candidate_hash,
            provenance_hash=proposal.state.provenance_hash,
            requirement=proposal.state.approval_requirement,
            now=now,
            needed=approvers_needed(
                proposal.state.risk, context.limits.approval_quorum_high, context.limits.approval_quorum_critical
            ),
            proposer=proposal.state.proposed_by,
            skew_seconds=context.limits.clock_skew_seconds,
            change_hash=proposal.state.content_hash,
            change_hash_required=proposal.state.binding_needs_change_hash,
        )
        reasons = list(judgement.reasons)
        touched: list[ChainedAggregate[Any]] = [proposal]
        if judgement.outcome == "approved":
            assert approval is not None
            proposal.approve(approval, actor=actor, at=now)
        elif judgement.blocks:
            proposal.block(judgement.outcome, reasons, actor=actor, at=now, approval=approval)
            touched += detached(context, proposal, actor, now)
        else:
            proposal.note_approval_check(judgement, approval, actor=actor, at=now)
        return _check_answer(proposal, judgement.outcome, reasons, uow.save(*touched))

    def _evidence_problems(self, proposal: Proposal) -> list[str]:
        state = proposal.state
        problems = []
        replay = self.context.uow.get(Replay, UUID(state.replay_id))
        if replay is None:
            problems.append("replay_missing")
        else:
            if replay.state.verdict != "passed":
                problems.append(f"replay_verdict:{replay.state.verdict}")
            if replay.state.candidate_hash != state.candidate_hash:
                problems.append("candidate_hash_mismatch")
            if replay.state.provenance_hash != state.provenance_hash:
                problems.append("provenance_hash_mismatch")
            if state.change_judged and replay.state.change_hash != state.content_hash:
                problems.append("change_hash_mismatch")
        if state.revalidate_required:
            problems.append("revalidate_required")
        problems += family_drift(state.family_versions, self.context.fabric().families)
        return problems


def _only_unjudged(violations: list[Violation]) -> bool:
    return all(violation.code == "change_not_judged" for violation in violations)


def _check_answer(proposal: Proposal, outcome: str | None, reasons: list[str], position: int) -> CheckAnswer:
    return CheckAnswer(str(proposal.id), proposal.state.state, outcome, reasons, position)
