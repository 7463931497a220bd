"""The replay family (SPEC §4.3): judge a candidate against its baseline, within the replay budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from msgspec import Meta

from dobby.engine.commands.context import Context, Scope, may_see, require_tenant, transaction
from dobby.engine.commands.what_if import WhatIf, WhatIfAnswer, judge_what_if
from dobby.engine.kernel.canonical import content_hash, replay_budget_id_for, replay_id_for, target_id_for
from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.errors import ConflictError, RuleViolationError, Violation, not_found
from dobby.engine.kernel.shapes import (
    UNSET,
    FamilyVersions,
    FreeObject,
    Hash,
    Identifier,
    RecordId,
    Shape,
    TargetRef,
    Timestamp,
    UnsetType,
    View,
)
from dobby.engine.model import replay as stored
from dobby.engine.model.chain import ChainedAggregate
from dobby.engine.model.ledger import Ledger
from dobby.engine.model.proposal import Proposal
from dobby.engine.model.replay import Replay
from dobby.engine.model.run import Run
from dobby.engine.model.target import Target
from dobby.engine.rules import lifecycle
from dobby.engine.rules.admission import check_sizes, check_target
from dobby.engine.rules.judgement import (
    MetricResult,
    Metrics,
    ThresholdContract,
    Verdict,
    check_contract,
    judge_replay,
)
from dobby.engine.rules.windows import Allowance, allowance
from dobby.engine.store.unit_of_work import parse_uuid


class EvaluateReplay(Shape, frozen=True):
    """A candidate's metrics beside its baseline's, to be judged under a threshold contract."""

    tenant_id: Identifier
    target: TargetRef
    family_versions: FamilyVersions
    metrics: Metrics
    threshold_contract: ThresholdContract
    workload_similar: bool
    run_ids: Annotated[list[RecordId], Meta(max_length=100)] | UnsetType = UNSET
    change: FreeObject | UnsetType = UNSET
    """The candidate configuration that was replayed (≤ 64 KiB): its change_hash enters the candidate_hash."""

    @property
    def sorted_run_ids(self) -> list[str]:
        return sorted(self.run_ids or [])

    @property
    def named_change(self) -> dict[str, Any] | None:
        return None if self.change is UNSET else self.change

    @property
    def change_hash(self) -> str | None:
        return None if self.change is UNSET else content_hash(self.change)


class Budget(View, frozen=True):
    remaining: int
    window_seconds: float
    resets_at: Timestamp


class ReplayAnswer(View, frozen=True):
    replay_id: str
    verdict: Verdict
    reasons: list[str]
    metric_results: list[MetricResult]
    candidate_hash: Hash
    change_hash: Hash | None
    provenance_hash: Hash
    budget: Budget
    duplicate: bool
    position: int


def candidate_hash_of(body: EvaluateReplay) -> str:
    """SPEC §3: with `change_hash` when the replay names its change; without, the original service's shape, so
    replays that name no change keep their hashes and ids."""
    bound: dict[str, Any] = {
        "tenant_id": body.tenant_id,
        "target": body.target,
        "family_versions": body.family_versions,
        "candidate": body.metrics.candidate,
    }
    if body.change is not UNSET:
        bound["change_hash"] = body.change_hash
    return content_hash(bound)


def replay_provenance_hash_of(body: EvaluateReplay, candidate_hash: str) -> str:
    return content_hash(
        {
            "candidate_hash": candidate_hash,
            "baseline": body.metrics.baseline,
            "threshold_contract": body.threshold_contract,
            "run_ids": body.sorted_run_ids,
        }
    )


def _budget(budget: Allowance) -> Budget:
    return Budget(budget.remaining, budget.window_seconds, rfc3339(budget.resets_at))


@dataclass(frozen=True)
class Identity:
    """What identifies one evaluation (SPEC §3): its hashes, its replay's id, its budget ledger."""

    candidate_hash: str
    change_hash: str | None
    provenance_hash: str
    replay_id: UUID
    request_hash: str
    budget_id: UUID

    @classmethod
    def of(cls, body: EvaluateReplay) -> Identity:
        candidate_hash = candidate_hash_of(body)
        provenance_hash = replay_provenance_hash_of(body, candidate_hash)
        return cls(
            candidate_hash=candidate_hash,
            change_hash=body.change_hash,
            provenance_hash=provenance_hash,
            replay_id=replay_id_for(candidate_hash, provenance_hash),
            request_hash=content_hash(body),
            budget_id=replay_budget_id_for(body.tenant_id, body.target.type, body.target.id),
        )

    def answer(self, replay: Replay, budget: Allowance, duplicate: bool, position: int) -> tuple[ReplayAnswer, bool]:
        view = replay.state.view()
        return ReplayAnswer(
            replay_id=view.replay_id,
            verdict=view.verdict,
            reasons=view.reasons,
            metric_results=view.metric_results,
            candidate_hash=self.candidate_hash,
            change_hash=self.change_hash,
            provenance_hash=self.provenance_hash,
            budget=_budget(budget),
            duplicate=duplicate,
            position=position,
        ), not duplicate


@dataclass
class ReplayCommands:
    context: Context

    def evaluate(self, body: EvaluateReplay, *, actor: str, tenants: Scope = None) -> tuple[ReplayAnswer, bool]:
        """The answer, and whether it created the replay (False for a duplicate submission)."""
        require_tenant(tenants, body.tenant_id)
        context = self.context
        context.require_mode("evaluate_replay")
        check_sizes(change=body.named_change)
        fabric = context.fabric()
        tenant, target = body.tenant_id, body.target
        violations = check_target(target, fabric)
        violations += check_contract(body.threshold_contract, body.metrics)
        violations += self._unknown_runs(tenant, body.run_ids or [])
        if violations:
            raise RuleViolationError(violations)
        return self._evaluate(body, Identity.of(body), fabric.families, actor=actor)

    @transaction
    def _evaluate(
        self, now: datetime, body: EvaluateReplay, identity: Identity, families: dict[str, str], *, actor: str
    ) -> tuple[ReplayAnswer, bool]:
        uow, limits = self.context.uow, self.context.limits
        tenant, target = body.tenant_id, body.target
        ledger = uow.get(Ledger, identity.budget_id)
        existing = uow.get(Replay, identity.replay_id)
        if existing is not None:
            if existing.state.request_hash != identity.request_hash:
                raise ConflictError(f"replay {identity.replay_id} was evaluated from a different request")
            spent = ledger.state.spend_times() if ledger else ()
            budget = allowance(spent, limits.replay_budget, limits.replay_budget_window_seconds, now)
            return identity.answer(existing, budget, True, uow.position())
        if ledger is None:
            scope = {"tenant_id": tenant, "target_type": target.type, "target_id": target.id}
            ledger = Ledger.open(identity.budget_id, "replay_budget", scope, actor=actor, at=now)
        budget = ledger.allowance(limits.replay_budget, limits.replay_budget_window_seconds, now)
        if budget.exhausted:
            message = f"replay budget of {limits.replay_budget} per {limits.replay_budget_window_seconds:g} s used"
            raise RuleViolationError(
                [Violation("replay_budget_exhausted", message, extra={"retry_after": budget.retry_after})],
                retry_after=budget.retry_after,
            )
        judgement = judge_replay(
            body.threshold_contract,
            body.metrics,
            body.workload_similar,
            body.family_versions,
            families,
            default_confidence=limits.confidence,
        )
        evaluated = stored.ReplayEvaluated(
            tenant_id=body.tenant_id,
            target=body.target,
            family_versions=body.family_versions,
            metrics=body.metrics,
            threshold_contract=body.threshold_contract,
            workload_similar=body.workload_similar,
            run_ids=body.sorted_run_ids,
            verdict=judgement.verdict,
            reasons=list(judgement.reasons),
            metric_results=list(judgement.metric_results),
            candidate_hash=identity.candidate_hash,
            provenance_hash=identity.provenance_hash,
            request_hash=identity.request_hash,
            evaluated_at=rfc3339(now),
            change=body.named_change,
            change_hash=identity.change_hash,
        )
        replay = Replay.evaluate(identity.replay_id, evaluated, actor=actor, at=now)
        ledger.spend(str(identity.replay_id), limits.replay_budget_window_seconds, actor=actor, at=now)
        touched: list[ChainedAggregate[Any]] = [replay, ledger]
        if judgement.verdict == "revalidate_required":
            touched += self._demand_revalidation(tenant, target, str(identity.replay_id), actor, now)
        position = uow.save(*touched)
        spent_now = ledger.allowance(limits.replay_budget, limits.replay_budget_window_seconds, now)
        return identity.answer(replay, spent_now, False, position)

    def what_if(self, replay_id: str, body: WhatIf, *, tenants: frozenset[str] | None = None) -> WhatIfAnswer:
        """SPEC §4.3a, a dry run: the stored replay re-judged under `body` against Fabric's current document.
        `tenants` are those the caller may see (None: any)."""
        context = self.context
        context.require_mode("what_if")
        replay = context.uow.get(Replay, parse_uuid(replay_id))
        if replay is None or not may_see(tenants, replay.state.tenant_id):
            raise not_found("replay", replay_id)
        return judge_what_if(replay.state, body, context.fabric().families, context.limits.confidence)

    def _unknown_runs(self, tenant: str, run_ids: list[str]) -> list[Violation]:
        found = []
        for index, raw in enumerate(run_ids):
            run = self.context.uow.get(Run, parse_uuid(raw))
            if run is None or run.state.tenant_id != tenant:
                message = f"run {raw!r} is unknown for tenant {tenant!r}"
                found.append(Violation("unknown_run", message, f"run_ids[{index}]"))
        return found

    def _demand_revalidation(
        self, tenant: str, target: TargetRef, replay_id: str, actor: str, now: datetime
    ) -> list[ChainedAggregate[Any]]:
        """Flag every open or active proposal on the target, and the target itself, in the same save."""
        uow = self.context.uow
        target_id = target_id_for(tenant, target.type, target.id)
        holder = uow.get(Target, target_id) or Target.open(
            target_id, tenant, {"type": target.type, "id": target.id}, actor=actor, at=now
        )
        holder.demand_revalidation(replay_id, actor=actor, at=now)
        touched: list[ChainedAggregate[Any]] = [holder]
        for proposal_id in holder.state.in_play:
            proposal = uow.get(Proposal, UUID(proposal_id))
            if proposal is None or proposal.state.revalidate_required:
                continue
            if proposal.state.is_open or proposal.state.state == lifecycle.ACTIVE:
                proposal.require_revalidation(f"replay {replay_id} judged revalidate_required", actor=actor, at=now)
                touched.append(proposal)
        return touched
