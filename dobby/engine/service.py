"""The application service: every command of SPEC §4 and the audit queries, over one event store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError

from dobby.engine import lifecycle
from dobby.engine.admission import check_admission, check_target
from dobby.engine.approval import ApprovalJudgement, approval_requirement, judge_approval
from dobby.engine.audit import proposal_history
from dobby.engine.canonical import (
    canonical_json,
    content_hash,
    proposal_id_for,
    replay_budget_id_for,
    replay_id_for,
    run_id_for,
    target_id_for,
    velocity_ledger_id_for,
)
from dobby.engine.chain import ChainedAggregate
from dobby.engine.clock import parse_rfc3339, rfc3339
from dobby.engine.core import EngineCore, Outcome, parse_uuid
from dobby.engine.errors import (
    ConflictError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    RuleViolationError,
    ServiceUnavailableError,
    StaleReadError,
    Violation,
)
from dobby.engine.group_commit import BackpressureError
from dobby.engine.guards import activation_guards
from dobby.engine.intake import check_intake, is_kept, is_learning_signal, run_hash_of, run_provenance_hash_of
from dobby.engine.judgement import check_contract, family_drift, judge_replay
from dobby.engine.ledger import Allowance, Ledger, allowance
from dobby.engine.modes import Mode
from dobby.engine.ports import (
    UpstreamUnavailableError,
)
from dobby.engine.proposal import Generated, Proposal
from dobby.engine.replay import Replay
from dobby.engine.run import Run
from dobby.engine.schemas import INTAKE, MAX_CHANGE_BYTES, PROPOSE, REPLAY, ROLLBACK
from dobby.engine.target import Target
from dobby.engine.validation import check_shape

PROCESSOR_ACTOR = "expiry-processor"


@dataclass(frozen=True)
class PreparedIntake:
    """A checked, hashed intake body, ready to be recorded as a Run."""

    body: dict[str, Any]
    run_id: UUID
    run_hash: str
    provenance_hash: str

    @property
    def sampled(self) -> bool:
        return bool(self.body["outcome"] == "neutral_success")

    def run(self, evidence_digest: str | None, actor: str, at: datetime) -> Run:
        return Run.accept(
            self.run_id,
            self.body,
            run_hash=self.run_hash,
            provenance_hash=self.provenance_hash,
            sampled=self.sampled,
            learning_signal=is_learning_signal(self.body),
            evidence_digest=evidence_digest,
            actor=actor,
            at=at,
        )

    def answer(self, duplicate: bool, position: int) -> Outcome:
        body = {
            "accepted": True,
            "run_id": str(self.run_id),
            "run_hash": self.run_hash,
            "provenance_hash": self.provenance_hash,
            "sampled": self.sampled,
            "duplicate": duplicate,
            "position": position,
        }
        return Outcome(body, created=not duplicate, position=position)


@dataclass
class Engine(EngineCore):
    """The commands of SPEC §4 and the audit queries. Each loads aggregates, checks named rules, records events
    and saves every stream it touched at once."""

    # ----- intake ------------------------------------------------------------------------------------

    def prepare_intake(self, body: dict[str, Any], *, header_tenant: str | None = None) -> PreparedIntake | Outcome:
        """Every check and hash of an intake, without I/O: the prepared run, or the sampled_out answer."""
        self._require_mode("intake_signal")
        check_shape(INTAKE, body)
        violations = check_intake(body, header_tenant)
        if violations:
            raise RuleViolationError(violations)
        run_hash = run_hash_of(body)
        if not is_kept(body["outcome"], run_hash, self.limits.neutral_sample_rate):
            return Outcome({"accepted": False, "reason": "sampled_out", "run_hash": run_hash}, created=False)
        return PreparedIntake(body, run_id_for(run_hash), run_hash, run_provenance_hash_of(body))

    def intake_signal(self, body: dict[str, Any], *, header_tenant: str | None = None, actor: str) -> Outcome:
        prepared = self.prepare_intake(body, header_tenant=header_tenant)
        if isinstance(prepared, Outcome):
            return _with_position(prepared, self.position())
        digest = self._evidence_digest(body["trace_id"])

        def attempt() -> Outcome:
            """Insert first: a run's id is its content, so a version conflict means it is already stored."""
            try:
                return prepared.answer(False, self._save(prepared.run(digest, actor, self._now())))
            except IntegrityError:
                return self._stored_duplicate(prepared)

        return self._transact(attempt)

    async def intake_signal_async(
        self, body: dict[str, Any], *, header_tenant: str | None = None, actor: str
    ) -> Outcome:
        """intake_signal for an event loop: the checks run on the loop and the group commit is awaited, so no
        thread is held per request. Falls back to a worker thread when Shuttle must be asked first."""
        if self.committer is None or self.evidence is not None:
            return await asyncio.to_thread(self.intake_signal, body, header_tenant=header_tenant, actor=actor)
        prepared = self.prepare_intake(body, header_tenant=header_tenant)
        if isinstance(prepared, Outcome):
            return _with_position(prepared, await asyncio.to_thread(self.position))
        events = list(prepared.run(None, actor, self._now()).collect_events())
        try:
            answer = self.committer.submit(events)
            position = await asyncio.wait_for(asyncio.wrap_future(answer), self.save_timeout)
        except BackpressureError as error:
            raise ServiceUnavailableError(str(error), "backpressure") from error
        except TimeoutError as error:
            raise ServiceUnavailableError(
                "the database did not take the write in time", "persistence_unavailable"
            ) from error
        except IntegrityError:
            return await asyncio.to_thread(self._transact, lambda: self._stored_duplicate(prepared))
        except PersistenceError as error:
            raise ServiceUnavailableError(f"persistence unavailable: {error}", "persistence_unavailable") from error
        return prepared.answer(False, position)

    def _stored_duplicate(self, prepared: PreparedIntake) -> Outcome:
        if self._get(Run, prepared.run_id) is None:
            raise IntegrityError(f"run {prepared.run_id} conflicted but is not stored")
        return prepared.answer(True, self.position())

    def _evidence_digest(self, trace_id: str) -> str | None:
        if self.evidence is None:
            return None
        try:
            found = self.evidence.evidence_for(trace_id)
        except UpstreamUnavailableError:
            return None
        return None if found is None else found.digest

    # ----- replay ------------------------------------------------------------------------------------

    def evaluate_replay(self, body: dict[str, Any], *, actor: str) -> Outcome:
        self._require_mode("evaluate_replay")
        check_shape(REPLAY, body)
        fabric = self._fabric()
        tenant, target = body["tenant_id"], body["target"]
        violations = check_target(target, fabric)
        violations += check_contract(body["threshold_contract"], body["metrics"])
        violations += self._unknown_runs(tenant, body.get("run_ids", []))
        if violations:
            raise RuleViolationError(violations)
        candidate_hash = content_hash(
            {
                "tenant_id": tenant,
                "target": target,
                "family_versions": body["family_versions"],
                "candidate": body["metrics"]["candidate"],
            }
        )
        provenance_hash = content_hash(
            {
                "candidate_hash": candidate_hash,
                "baseline": body["metrics"]["baseline"],
                "threshold_contract": body["threshold_contract"],
                "run_ids": sorted(body.get("run_ids", [])),
            }
        )
        replay_id = replay_id_for(candidate_hash, provenance_hash)
        request_hash = content_hash(body)
        budget_id = replay_budget_id_for(tenant, target["type"], target["id"])
        limits = self.limits

        def answer(replay: Replay, budget: Allowance, duplicate: bool, position: int) -> Outcome:
            view = replay.state.view()
            return Outcome(
                {
                    "replay_id": view["replay_id"],
                    "verdict": view["verdict"],
                    "reasons": view["reasons"],
                    "metric_results": view["metric_results"],
                    "candidate_hash": candidate_hash,
                    "provenance_hash": provenance_hash,
                    "budget": _budget_json(budget),
                    "duplicate": duplicate,
                    "position": position,
                },
                created=not duplicate,
                position=position,
            )

        def attempt() -> Outcome:
            now = self._now()
            ledger = self._get(Ledger, budget_id)
            existing = self._get(Replay, replay_id)
            if existing is not None:
                if existing.state.request_hash != request_hash:
                    raise ConflictError(f"replay {replay_id} was evaluated from a different request")
                spent = ledger.state.spend_times() if ledger else ()
                budget = allowance(spent, limits.replay_budget, limits.replay_budget_window_seconds, now)
                return answer(existing, budget, True, self.position())
            if ledger is None:
                scope = {"tenant_id": tenant, "target_type": target["type"], "target_id": target["id"]}
                ledger = Ledger.open(budget_id, "replay_budget", scope, actor=actor, at=now)
            budget = ledger.allowance(limits.replay_budget, limits.replay_budget_window_seconds, now)
            if budget.exhausted:
                message = f"replay budget of {limits.replay_budget} per {limits.replay_budget_window_seconds:g} s used"
                raise RuleViolationError(
                    [Violation("replay_budget_exhausted", message, extra={"retry_after": budget.retry_after})],
                    retry_after=budget.retry_after,
                )
            judgement = judge_replay(
                body["threshold_contract"],
                body["metrics"],
                body["workload_similar"],
                body["family_versions"],
                fabric.families,
            )
            replay = Replay.evaluate(
                replay_id,
                body,
                judgement,
                candidate_hash=candidate_hash,
                provenance_hash=provenance_hash,
                request_hash=request_hash,
                actor=actor,
                at=now,
            )
            ledger.spend(str(replay_id), limits.replay_budget_window_seconds, actor=actor, at=now)
            touched: list[ChainedAggregate[Any]] = [replay, ledger]
            if judgement.verdict == "revalidate_required":
                touched += self._demand_revalidation(tenant, target, str(replay_id), actor, now)
            position = self._save(*touched)
            spent_now = ledger.allowance(limits.replay_budget, limits.replay_budget_window_seconds, now)
            return answer(replay, spent_now, False, position)

        return self._transact(attempt)

    def _unknown_runs(self, tenant: str, run_ids: list[str]) -> list[Violation]:
        found = []
        for index, raw in enumerate(run_ids):
            run_id = parse_uuid(raw)
            run = self._get(Run, run_id) if run_id else None
            if run is None or run.state.tenant_id != tenant:
                found.append(
                    Violation("unknown_run", f"run {raw!r} is unknown for tenant {tenant!r}", f"run_ids[{index}]")
                )
        return found

    def _demand_revalidation(
        self, tenant: str, target: dict[str, str], replay_id: str, actor: str, now: datetime
    ) -> list[ChainedAggregate[Any]]:
        """Flag every open or active proposal on the target, and the target itself, in the same save."""
        target_id = target_id_for(tenant, target["type"], target["id"])
        holder = self._get(Target, target_id) or Target.open(target_id, tenant, target, actor=actor, at=now)
        holder.demand_revalidation(replay_id, actor=actor, at=now)
        touched: list[ChainedAggregate[Any]] = [holder]
        for proposal_id in holder.state.in_play:
            proposal = self._get(Proposal, UUID(proposal_id))
            if proposal is None or proposal.state.revalidate_required:
                continue
            if proposal.state.is_open or proposal.state.state == lifecycle.ACTIVE:
                proposal.require_revalidation(f"replay {replay_id} judged revalidate_required", actor=actor, at=now)
                touched.append(proposal)
        return touched

    # ----- proposals ---------------------------------------------------------------------------------

    def propose(self, body: dict[str, Any], *, actor: str) -> Outcome:
        self._require_mode("propose")
        check_shape(PROPOSE, body)
        for name in ("change", "baseline"):
            if len(canonical_json(body[name])) > MAX_CHANGE_BYTES:
                raise InvalidInputError(
                    f"{name} is larger than 64 KiB",
                    [Violation("too_large", f"{name} must be at most {MAX_CHANGE_BYTES} bytes as JSON", name)],
                )
        fabric = self._fabric()
        tenant, target = body["tenant_id"], body["target"]
        violations = check_admission(target, fabric)
        replay = self._get(Replay, parse_uuid(body["replay_id"]) or UUID(int=0))
        if replay is None or replay.state.tenant_id != tenant:
            violations.append(
                Violation("replay_not_passed", f"replay {body['replay_id']} is unknown for {tenant!r}", "replay_id")
            )
        elif replay.state.target != target:
            violations.append(Violation("replay_not_passed", "the replay judged another target", "target"))
        elif replay.state.verdict != "passed":
            violations.append(
                Violation("replay_not_passed", f"the replay's verdict is {replay.state.verdict}", "replay_id")
            )
        if violations:
            raise RuleViolationError(violations)
        assert replay is not None
        proposal_id = proposal_id_for(replay.id)
        target_id = target_id_for(tenant, target["type"], target["id"])
        request_hash = content_hash(body)
        ttl = body.get("ttl_seconds", self.limits.proposal_ttl_seconds)

        def attempt() -> Outcome:
            now = self._now()
            existing = self._get(Proposal, proposal_id)
            if existing is not None:
                if existing.state.request_hash != request_hash:
                    raise ConflictError(
                        f"proposal {proposal_id} already exists for replay {replay.id} with a different request"
                    )
                return Outcome({**existing.state.view(), "duplicate": True, "position": self.position()}, created=False)
            holder = self._get(Target, target_id) or Target.open(target_id, tenant, target, actor=actor, at=now)
            demanded = holder.state.revalidation_demanded_at
            stale = demanded is not None and parse_rfc3339(demanded) >= parse_rfc3339(replay.state.evaluated_at)
            proposal = Proposal.generate(
                proposal_id,
                body,
                candidate_hash=replay.state.candidate_hash,
                provenance_hash=replay.state.provenance_hash,
                family_versions=replay.state.family_versions,
                approval_requirement=approval_requirement(body["risk"]),
                ttl_seconds=ttl,
                revalidate_required=stale,
                request_hash=request_hash,
                actor=actor,
                at=now,
            )
            holder.attach(str(proposal_id), actor=actor, at=now)
            position = self._save(proposal, holder)
            return Outcome({**proposal.state.view(), "duplicate": False, "position": position}, position=position)

        return self._transact(attempt)

    def approve_check(self, proposal_id: str, *, actor: str) -> Outcome:
        self._require_mode("approve_check")
        pid = self._proposal_uuid(proposal_id)

        def attempt() -> Outcome:
            now = self._now()
            proposal = self._load_proposal(pid)
            if proposal.state.state not in (lifecycle.GENERATED, lifecycle.REPLAY_VALIDATED):
                raise InvalidStateError(
                    f"proposal {pid} is {proposal.state.state}; approve-check needs generated or replay_validated"
                )
            if proposal.state.state == lifecycle.GENERATED:
                problems = self._evidence_problems(proposal)
                if problems:
                    proposal.block("replay_evidence_invalid", problems, actor=actor, at=now)
                    position = self._save(proposal, *self._detached(proposal, actor, now))
                    return _check_answer(proposal, None, problems, position)
                proposal.validate_replay(["replay_passed", "binding_matches", "families_current"], actor=actor, at=now)
            try:
                approval = self.approvals.approval_for(str(pid))
            except UpstreamUnavailableError as error:
                judgement = None
                reasons = [f"Warp unavailable: {error}"]
            else:
                judgement = judge_approval(
                    approval,
                    proposal_id=str(pid),
                    candidate_hash=proposal.state.candidate_hash,
                    provenance_hash=proposal.state.provenance_hash,
                    requirement=proposal.state.approval_requirement,
                    now=now,
                )
                reasons = list(judgement.reasons)
            touched: list[ChainedAggregate[Any]] = [proposal]
            if judgement is None:
                proposal.note_approval_check(
                    ApprovalJudgement("unavailable", tuple(reasons)), None, actor=actor, at=now
                )
                outcome = "unavailable"
            elif judgement.outcome == "approved":
                assert approval is not None
                proposal.approve(approval, actor=actor, at=now)
                outcome = "approved"
            elif judgement.blocks:
                proposal.block(judgement.outcome, reasons, actor=actor, at=now, approval=approval)
                touched += self._detached(proposal, actor, now)
                outcome = judgement.outcome
            else:
                proposal.note_approval_check(judgement, approval, actor=actor, at=now)
                outcome = judgement.outcome
            return _check_answer(proposal, outcome, reasons, self._save(*touched))

        return self._transact(attempt)

    def _evidence_problems(self, proposal: Proposal) -> list[str]:
        state = proposal.state
        problems = []
        replay = self._get(Replay, UUID(state.replay_id))
        if replay is None:
            problems.append("replay_missing")
        else:
            if replay.state.verdict != "passed":
                problems.append(f"replay_verdict:{replay.state.verdict}")
            if replay.state.candidate_hash != state.candidate_hash:
                problems.append("candidate_hash_mismatch")
            if replay.state.provenance_hash != state.provenance_hash:
                problems.append("provenance_hash_mismatch")
        if state.revalidate_required:
            problems.append("revalidate_required")
        problems += family_drift(state.family_versions, self._fabric().families)
        return problems

    def _detached(self, proposal: Proposal, actor: str, now: datetime) -> list[ChainedAggregate[Any]]:
        state = proposal.state
        target_id = target_id_for(state.tenant_id, state.target["type"], state.target["id"])
        holder = self._get(Target, target_id)
        if holder is None or str(proposal.id) not in holder.state.in_play:
            return []
        holder.detach(str(proposal.id), actor=actor, at=now)
        return [holder]

    def activate(self, proposal_id: str, *, actor: str) -> Outcome:
        mode = self.mode()
        if mode == Mode.warmup:
            raise ServiceUnavailableError("the service is in warmup: persistence is unreachable", "service_mode")
        pid = self._proposal_uuid(proposal_id)

        def attempt() -> Outcome:
            now = self._now()
            proposal = self._load_proposal(pid)
            state = proposal.state
            holder = self._target_of(proposal)
            velocity_id = velocity_ledger_id_for(state.tenant_id)
            velocity = self._get(Ledger, velocity_id) or Ledger.open(
                velocity_id, "promotion_velocity", {"tenant_id": state.tenant_id}, actor=actor, at=now
            )
            active = holder.state.active_proposal_id if holder else None
            guards = activation_guards(
                state,
                mode=mode,
                other_active_id=active if active != str(pid) else None,
                velocity=velocity.allowance(self.limits.velocity_max, self.limits.velocity_window_seconds, now),
                now=now,
            )
            failed = [guard for guard in guards if not guard.passed]
            if failed:
                if state.state == lifecycle.APPROVED and state.approval_expired(now):
                    proposal.block("approval_stale", ["the approval expired before activation"], actor=actor, at=now)
                    self._save(proposal, *self._detached(proposal, actor, now))
                retry = next((self._velocity_retry(velocity, now) for g in failed if g.name == "velocity"), None)
                raise RuleViolationError([guard.violation() for guard in failed], retry_after=retry)
            assert holder is not None
            proposal.activate(actor=actor, at=now)
            holder.go_live(str(pid), state.change, state.baseline, actor=actor, at=now)
            velocity.spend(str(pid), self.limits.velocity_window_seconds, actor=actor, at=now)
            position = self._save(proposal, holder, velocity)
            return Outcome({**proposal.state.view(), "position": position}, created=False, position=position)

        return self._transact(attempt)

    def _velocity_retry(self, velocity: Ledger, now: datetime) -> float:
        return velocity.allowance(self.limits.velocity_max, self.limits.velocity_window_seconds, now).retry_after

    def rollback(self, body: dict[str, Any], *, actor: str) -> Outcome:
        self._require_mode("rollback")
        check_shape(ROLLBACK, body)
        pid = self._proposal_uuid(body["proposal_id"])

        def attempt() -> Outcome:
            now = self._now()
            proposal = self._load_proposal(pid)
            proposal.roll_back(body["reason"], actor=actor, at=now)
            holder = self._target_of(proposal)
            if holder is None or holder.state.active_proposal_id != str(pid):
                raise StaleReadError(f"target of {pid} no longer shows it active")
            holder.restore_baseline(str(pid), proposal.state.baseline, actor=actor, at=now)
            position = self._save(proposal, holder)
            view = proposal.state.view()
            return Outcome(
                {**view, "restored_baseline": view["baseline"], "position": position},
                created=False,
                position=position,
            )

        return self._transact(attempt)

    def expire(self, proposal_id: str, *, actor: str = PROCESSOR_ACTOR) -> Outcome | None:
        """Expire an open proposal that is revalidate_required or past its TTL; None when there is nothing to do."""
        pid = self._proposal_uuid(proposal_id)

        def attempt() -> Outcome | None:
            now = self._now()
            proposal = self._load_proposal(pid)
            state = proposal.state
            if not state.is_open:
                return None
            if state.revalidate_required:
                reason = "revalidate_required"
            elif state.is_past_ttl(now):
                reason = "ttl"
            else:
                return None
            proposal.expire(reason, actor=actor, at=now)
            position = self._save(proposal, *self._detached(proposal, actor, now))
            return Outcome({**proposal.state.view(), "position": position}, created=False, position=position)

        return self._transact(attempt)

    def mark_revalidation_required(
        self, proposal_id: str, reason: str, *, actor: str = PROCESSOR_ACTOR
    ) -> Outcome | None:
        """Flag an open or active proposal; None when it is already flagged or no longer in play."""
        pid = self._proposal_uuid(proposal_id)

        def attempt() -> Outcome | None:
            proposal = self._load_proposal(pid)
            state = proposal.state
            if state.revalidate_required or not (state.is_open or state.state == lifecycle.ACTIVE):
                return None
            proposal.require_revalidation(reason, actor=actor, at=self._now())
            position = self._save(proposal)
            return Outcome({**proposal.state.view(), "position": position}, created=False, position=position)

        return self._transact(attempt)

    # ----- queries -----------------------------------------------------------------------------------

    def get_proposal(self, proposal_id: str) -> dict[str, Any]:
        return self._load_proposal(self._proposal_uuid(proposal_id)).state.view()

    def get_run(self, run_id: str) -> dict[str, Any]:
        run = self._get(Run, parse_uuid(run_id) or UUID(int=0))
        if run is None:
            raise NotFoundError(f"no run {run_id!r}")
        return run.state.view()

    def get_replay(self, replay_id: str) -> dict[str, Any]:
        replay = self._get(Replay, parse_uuid(replay_id) or UUID(int=0))
        if replay is None:
            raise NotFoundError(f"no replay {replay_id!r}")
        return replay.state.view()

    def get_target(self, tenant_id: str, target_type: str, target_key: str) -> dict[str, Any] | None:
        holder = self._get(Target, target_id_for(tenant_id, target_type, target_key))
        return None if holder is None else holder.state.view()

    def get_history(
        self, proposal_id: str, *, as_of_version: int | None = None, as_of: datetime | None = None
    ) -> dict[str, Any]:
        pid = self._proposal_uuid(proposal_id)
        if as_of_version is not None and as_of_version < 1:
            raise InvalidInputError(
                "as_of_version must be ≥ 1",
                [Violation("out_of_range", "as_of_version must be ≥ 1", "as_of_version")],
            )
        events = self.stream(pid)
        if not events or not isinstance(events[0], Generated):
            raise NotFoundError(f"no proposal {proposal_id!r}")
        return proposal_history(str(pid), events, as_of_version=as_of_version, as_of=as_of)

    def get_explanation(self, proposal_id: str) -> dict[str, Any]:
        now = self._now()
        proposal = self._load_proposal(self._proposal_uuid(proposal_id))
        state = proposal.state
        holder = self._target_of(proposal)
        velocity = self._get(Ledger, velocity_ledger_id_for(state.tenant_id))
        spent = velocity.state.spend_times() if velocity else ()
        active = holder.state.active_proposal_id if holder else None
        guards = activation_guards(
            state,
            mode=self.mode(),
            other_active_id=active if active != state.proposal_id else None,
            velocity=allowance(spent, self.limits.velocity_max, self.limits.velocity_window_seconds, now),
            now=now,
        )
        return {
            "proposal_id": state.proposal_id,
            "state": state.state,
            "can_activate": all(guard.passed for guard in guards),
            "guards": [guard.as_json() for guard in guards],
        }


def _with_position(outcome: Outcome, position: int) -> Outcome:
    """Every write answer carries a position, even one that stored nothing (the log's head: reads with it as
    `min_position` see everything written before)."""
    return Outcome({**outcome.body, "position": position}, created=outcome.created, position=position)


def _budget_json(budget: Allowance) -> dict[str, Any]:
    return {
        "remaining": budget.remaining,
        "window_seconds": budget.window_seconds,
        "resets_at": rfc3339(budget.resets_at),
    }


def _check_answer(proposal: Proposal, outcome: str | None, reasons: list[str], position: int) -> Outcome:
    return Outcome(
        {
            "proposal_id": str(proposal.id),
            "state": proposal.state.state,
            "approval_outcome": outcome,
            "reasons": reasons,
            "position": position,
        },
        created=False,
        position=position,
    )
