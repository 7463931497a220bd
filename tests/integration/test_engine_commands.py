"""Every command of SPEC §4 driven on the engine, on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from dobby.engine.commands.activation import Rollback
from dobby.engine.commands.boundary import convert
from dobby.engine.commands.policy import TenantAction
from dobby.engine.commands.promotion import ProposalRef, Propose
from dobby.engine.commands.replay import EvaluateReplay
from dobby.engine.commands.schedule import Activate
from dobby.engine.kernel.canonical import replay_budget_id_for
from dobby.engine.kernel.errors import (
    ConflictError,
    DobbyError,
    ForbiddenError,
    InvalidInputError,
    InvalidStateError,
    ModeForbidsError,
    NotFoundError,
    RuleViolationError,
    ServiceUnavailableError,
)
from dobby.engine.rules.modes import Mode
from tests.support import (
    TARGET,
    World,
    approved_proposal,
    intake_body,
    make_world,
    passed_replay,
    propose_body,
    replay_body,
)


def codes(error: DobbyError) -> list[str]:
    return [detail["code"] for detail in error.details]


def event_count(world: World) -> int:
    return world.engine.position()


class TestIntake:
    def test_accepts_and_then_finds_the_duplicate(self, world: World) -> None:
        first = world.intake(intake_body(world.families), actor="svc")
        again = world.intake(intake_body(world.families), actor="svc")
        assert first.created and first.body["duplicate"] is False and first.body["accepted"] is True
        assert not again.created and again.body["duplicate"] is True
        assert again.body["run_id"] == first.body["run_id"]
        assert world.get_run(first.body["run_id"])["learning_signal"] is True

    def test_refusal_reports_every_rule_and_stores_nothing(self, world: World) -> None:
        body = intake_body(
            world.families,
            guardrail_decision="BLOCK",
            security_critical=True,
            steps=[{"name": "s", "tenant_id": "evil"}],
        )
        with pytest.raises(RuleViolationError) as caught:
            world.intake(body, header_tenant="acme", actor="svc")
        assert sorted(codes(caught.value)) == ["guardrail_blocked", "security_critical", "tenant_inconsistent"]
        assert event_count(world) == 0

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"trace_id": None}, "trace_id"),
            ({"outcome": "great"}, "outcome"),
            ({"family_versions": {}}, "family_versions"),
            ({"extra_field": 1}, "extra_field"),
            ({"steps": [{"name": "s", "attributes": {"x": 1}}, {"name": ""}]}, "steps[1].name"),
        ],
    )
    def test_a_shape_error_names_its_field_and_stores_nothing(
        self, world: World, change: dict[str, Any], field: str
    ) -> None:
        body = {key: value for key, value in {**intake_body(world.families), **change}.items() if value is not None}
        with pytest.raises(InvalidInputError) as caught:
            world.intake(body, actor="svc")
        assert [detail.get("field") for detail in caught.value.details] == [field]
        assert event_count(world) == 0

    def test_sampled_out_neutral_success_stores_nothing(self, world: World) -> None:
        kept = dropped = 0
        for index in range(40):
            outcome = world.intake(
                intake_body(world.families, outcome="neutral_success", trace_id=f"t{index}"), actor="svc"
            )
            if outcome.body["accepted"]:
                kept += 1
                assert outcome.body["sampled"] is True
            else:
                dropped += 1
                assert outcome.body["reason"] == "sampled_out"
                assert outcome.body["position"] == world.engine.position()
        assert kept > 0 and dropped > 0
        assert event_count(world) == kept


class TestReplay:
    def test_passed_replay_spends_budget_once(self, world: World) -> None:
        first = world.evaluate_replay(replay_body(world.families), actor="svc")
        again = world.evaluate_replay(replay_body(world.families), actor="svc")
        assert first.body["verdict"] == "passed"
        assert first.body["budget"]["remaining"] == 19
        assert again.body["duplicate"] is True and again.body["budget"]["remaining"] == 19
        stored = world.get_replay(first.body["replay_id"])
        assert stored["verdict"] == "passed" and len(stored["metric_results"]) == 2

    def test_refusals_are_all_reported(self, world: World) -> None:
        body = replay_body(
            world.families,
            target={"type": "weight_training_candidate", "id": "w"},
            run_ids=["00000000-0000-0000-0000-000000000001", "nope"],
        )
        body["threshold_contract"]["veto"] = ["ghost"]
        body["metrics"]["candidate"].pop("accuracy")
        with pytest.raises(RuleViolationError) as caught:
            world.evaluate_replay(body, actor="svc")
        assert sorted(codes(caught.value)) == [
            "missing_metric",
            "unknown_run",
            "unknown_run",
            "unknown_veto_metric",
            "weight_training_forbidden",
        ]
        assert event_count(world) == 0

    def test_runs_of_another_tenant_are_unknown(self, world: World) -> None:
        run = world.intake(intake_body(world.families, tenant_id="other"), actor="svc").body
        with pytest.raises(RuleViolationError) as caught:
            world.evaluate_replay(replay_body(world.families, run_ids=[run["run_id"]]), actor="svc")
        assert codes(caught.value) == ["unknown_run"]

    def test_budget_is_exhausted_then_slides(self, database_url: str) -> None:
        with make_world(database_url, replay_budget=2, replay_budget_window_seconds=60) as world:
            for accuracy in (0.81, 0.82):
                passed_replay(world, accuracy)
            with pytest.raises(RuleViolationError) as caught:
                passed_replay(world, 0.83)
            assert caught.value.code == "replay_budget_exhausted"
            assert caught.value.retry_after == 60
            world.clock.advance(61)
            assert passed_replay(world, 0.83)["budget"]["remaining"] == 1

    def test_revalidate_required_marks_open_and_active_proposals(self, world: World) -> None:
        active = approved_proposal(world, 0.90)
        world.activate(active["proposal_id"], actor="op")
        open_one = world.propose(propose_body(passed_replay(world, 0.91)["replay_id"]), actor="p").body
        drifted = dict(world.families)
        drifted["runtime.traces"] = "9.9"
        verdict = world.evaluate_replay(replay_body(drifted), actor="svc").body
        assert verdict["verdict"] == "revalidate_required"
        for proposal in (active, open_one):
            assert world.get_proposal(proposal["proposal_id"])["revalidate_required"] is True
        assert world.get_proposal(active["proposal_id"])["state"] == "active"


class TestPropose:
    def test_generated_and_bound_to_the_replay(self, world: World) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"], risk="low"), actor="p").body
        assert proposal["state"] == "generated"
        assert proposal["candidate_hash"] == replay["candidate_hash"]
        assert proposal["approval_requirement"] == "any"
        again = world.propose(propose_body(replay["replay_id"], risk="low"), actor="p")
        assert not again.created and again.body["duplicate"] is True

    def test_a_different_request_for_the_same_replay_conflicts(self, world: World) -> None:
        replay = passed_replay(world)
        world.propose(propose_body(replay["replay_id"]), actor="p")
        with pytest.raises(ConflictError):
            world.propose(propose_body(replay["replay_id"], risk="high"), actor="p")

    def test_rejected_replay_cannot_be_proposed(self, world: World) -> None:
        rejected = world.evaluate_replay(replay_body(world.families, workload_similar=False), actor="s").body
        with pytest.raises(RuleViolationError) as caught:
            world.propose(propose_body(rejected["replay_id"]), actor="p")
        assert codes(caught.value) == ["replay_not_passed"]

    def test_other_target_other_tenant_and_no_learn_zone(self, world: World) -> None:
        replay = passed_replay(world)
        assert world.governance.document is not None
        world.governance.document = replace(world.governance.document, no_learn_zones=("prompt_template:sec*",))
        with pytest.raises(RuleViolationError) as caught:
            world.propose(
                propose_body(replay["replay_id"], target={"type": "prompt_template", "id": "secret"}), actor="p"
            )
        assert sorted(codes(caught.value)) == ["no_learn_zone", "replay_not_passed"]
        with pytest.raises(NotFoundError):  # another tenant's replay is as unknown (SPEC §4.4, §8)
            world.propose(propose_body(replay["replay_id"], tenant_id="other"), actor="p")

    def test_change_over_64_kib_is_refused(self, world: World) -> None:
        replay = passed_replay(world)
        with pytest.raises(InvalidInputError):
            world.propose(propose_body(replay["replay_id"], change={"blob": "x" * 70_000}), actor="p")


class TestApproveCheckAndActivation:
    def test_pending_then_approved_then_active_then_rolled_back(self, world: World) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"]), actor="p").body
        pending = world.approve_check(proposal["proposal_id"], actor="op").body
        assert (pending["state"], pending["approval_outcome"]) == ("replay_validated", "pending")
        world.approve(proposal)
        approved = world.approve_check(proposal["proposal_id"], actor="op").body
        assert (approved["state"], approved["approval_outcome"]) == ("approved", "approved")
        active = world.activate(proposal["proposal_id"], actor="op").body
        assert active["state"] == "active" and active["activated_at"] is not None
        rolled = world.rollback({"proposal_id": proposal["proposal_id"], "reason": "worse"}, actor="op").body
        assert rolled["state"] == "rolled_back"
        assert rolled["restored_baseline"] == proposal["baseline"]
        target = world.get_target("acme", TARGET["type"], TARGET["id"])
        assert target is not None and target["active_proposal_id"] is None
        assert target["live_config"] == proposal["baseline"]

    @pytest.mark.parametrize(
        ("approval", "outcome", "state"),
        [
            ({"decision": "rejected"}, "rejected", "blocked"),
            ({"kind": "service"}, "insufficient_approver", "replay_validated"),
            ({"hours": -1}, "expired", "blocked"),
        ],
    )
    def test_approval_outcomes(self, world: World, approval: dict[str, Any], outcome: str, state: str) -> None:
        proposal = world.propose(propose_body(passed_replay(world)["replay_id"]), actor="p").body
        world.approve(proposal, **approval)
        answer = world.approve_check(proposal["proposal_id"], actor="op").body
        assert (answer["approval_outcome"], answer["state"]) == (outcome, state)

    def test_mismatched_binding_blocks(self, world: World) -> None:
        proposal = world.propose(propose_body(passed_replay(world)["replay_id"]), actor="p").body
        world.approve({**proposal, "candidate_hash": "sha256:forged"})
        assert world.approve_check(proposal["proposal_id"], actor="op").body["state"] == "blocked"

    def test_warp_unavailable_changes_nothing_but_is_recorded(self, world: World) -> None:
        proposal = world.propose(propose_body(passed_replay(world)["replay_id"]), actor="p").body
        world.approvals.available = False
        answer = world.approve_check(proposal["proposal_id"], actor="op").body
        assert (answer["approval_outcome"], answer["state"]) == ("unavailable", "replay_validated")
        types = [e["type"] for e in world.get_history(proposal["proposal_id"])["events"]]
        assert types == ["Generated", "ReplayValidated", "ApprovalChecked"]

    def test_drifted_family_blocks_the_evidence(self, world: World) -> None:
        proposal = world.propose(propose_body(passed_replay(world)["replay_id"]), actor="p").body
        world.governance.set_family("runtime.traces", "2.0")
        answer = world.approve_check(proposal["proposal_id"], actor="op").body
        assert answer["state"] == "blocked" and answer["reasons"] == ["family_version:runtime.traces:1.0!=2.0"]

    def test_activation_judges_family_drift_now_without_any_processor(self, world: World) -> None:
        """A family the manifest does not declare drifts: the mode stays promotion_enabled and no processor has
        flagged the proposal, yet activation (and explain) see the stale binding against Fabric's document."""
        world.governance.set_family("tenant.extra", "1")
        families = {**world.families, "tenant.extra": "1"}
        replay = passed_replay(world, family_versions=families)
        proposal = world.propose(propose_body(replay["replay_id"]), actor="p").body
        world.approve(proposal)
        assert world.approve_check(proposal["proposal_id"], actor="op").body["state"] == "approved"
        world.governance.set_family("tenant.extra", "2")
        assert world.context.mode() == Mode.promotion_enabled
        before = event_count(world)
        with pytest.raises(RuleViolationError) as caught:
            world.activate(proposal["proposal_id"], actor="op")
        assert codes(caught.value) == ["revalidate_required"]
        assert event_count(world) == before
        guards = {g["name"]: g for g in world.get_explanation(proposal["proposal_id"])["guards"]}
        assert guards["not_revalidate_required"]["passed"] is False
        assert "family_version:tenant.extra:1!=2" in guards["not_revalidate_required"]["reason"]

    def test_approve_check_on_an_approved_proposal_is_invalid(self, world: World) -> None:
        proposal = approved_proposal(world)
        before = event_count(world)
        with pytest.raises(InvalidStateError):
            world.approve_check(proposal["proposal_id"], actor="op")
        assert event_count(world) == before

    def test_second_activation_on_same_target_is_refused(self, world: World) -> None:
        first, second = approved_proposal(world, 0.90), approved_proposal(world, 0.91)
        world.activate(first["proposal_id"], actor="op")
        with pytest.raises(RuleViolationError) as caught:
            world.activate(second["proposal_id"], actor="op")
        assert caught.value.code == "conflict"
        assert first["proposal_id"] in caught.value.message

    def test_stale_approval_blocks_on_activation(self, world: World) -> None:
        proposal = approved_proposal(world)
        world.clock.advance(25 * 3600)
        with pytest.raises(RuleViolationError) as caught:
            world.activate(proposal["proposal_id"], actor="op")
        assert caught.value.code == "approval_stale"
        assert world.get_proposal(proposal["proposal_id"])["state"] == "blocked"

    def test_velocity_breaker(self, database_url: str) -> None:
        with make_world(database_url, promotion_velocity_max=2) as world:
            for index in range(2):
                proposal = approved_proposal(
                    world, 0.9 + index / 100, target={"type": "prompt_template", "id": f"t{index}"}
                )
                world.activate(proposal["proposal_id"], actor="op")
            blocked = approved_proposal(world, 0.95, target={"type": "prompt_template", "id": "t9"})
            with pytest.raises(RuleViolationError) as caught:
                world.activate(blocked["proposal_id"], actor="op")
            assert caught.value.code == "velocity_breaker_open" and caught.value.retry_after == 3600
            explanation = world.get_explanation(blocked["proposal_id"])
            assert explanation["can_activate"] is False
            world.clock.advance(3601)
            assert world.activate(blocked["proposal_id"], actor="op").body["state"] == "active"

    def test_rollback_needs_an_active_proposal(self, world: World) -> None:
        proposal = approved_proposal(world)
        with pytest.raises(InvalidStateError):
            world.rollback({"proposal_id": proposal["proposal_id"], "reason": "x"}, actor="op")

    def test_unknown_proposal(self, world: World) -> None:
        with pytest.raises(NotFoundError):
            world.activate("not-a-uuid", actor="op")
        with pytest.raises(NotFoundError):
            world.approve_check("00000000-0000-0000-0000-000000000000", actor="op")


class TestModes:
    def test_proposal_only_forbids_activation_naming_both_modes(self, database_url: str) -> None:
        with make_world(database_url, mode=Mode.proposal_only) as world:
            proposal = approved_proposal(world)
            with pytest.raises(RuleViolationError) as caught:
                world.activate(proposal["proposal_id"], actor="op")
            assert caught.value.code == "mode_forbids"

    def test_observe_only_forbids_propose(self, database_url: str) -> None:
        with make_world(database_url, mode=Mode.observe_only) as world:
            replay = passed_replay(world)
            with pytest.raises(ModeForbidsError) as caught:
                world.propose(propose_body(replay["replay_id"]), actor="p")
            assert caught.value.details[0]["effective_mode"] == "observe_only"
            assert caught.value.details[0]["required_mode"] == "proposal_only"

    def test_fabric_drift_lowers_the_effective_mode(self, world: World) -> None:
        assert world.context.mode() == Mode.promotion_enabled
        world.governance.set_family("dobby.replays", "2.0")
        assert world.context.mode() == Mode.proposal_only
        world.governance.reachable = False
        assert world.context.mode() == Mode.observe_only

    def test_warmup_refuses_writes(self, world: World) -> None:
        world.context.persistence_reachable = lambda: False
        with pytest.raises(ServiceUnavailableError) as caught:
            world.intake(intake_body(world.families), actor="svc")
        assert caught.value.code == "service_mode"


class TestExpiry:
    def test_ttl_expiry_is_recorded_once(self, world: World) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"], ttl_seconds=60), actor="p").body
        assert world.expire(proposal["proposal_id"]) is None
        world.clock.advance(61)
        expired = world.expire(proposal["proposal_id"])
        assert expired is not None and expired.body["state"] == "expired"
        assert world.expire(proposal["proposal_id"]) is None
        history = world.get_history(proposal["proposal_id"])
        assert [e["type"] for e in history["events"]] == ["Generated", "Expired"]
        assert history["events"][-1]["actor"] == "expiry-processor"

    def test_revalidation_expires_open_proposals_but_not_active_ones(self, world: World) -> None:
        proposal = approved_proposal(world)
        world.mark_revalidation_required(proposal["proposal_id"], "fabric drift")
        assert world.mark_revalidation_required(proposal["proposal_id"], "again") is None
        assert world.expire(proposal["proposal_id"]) is not None


class TestAudit:
    def test_history_as_of_version_and_time(self, world: World) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"]), actor="p").body
        created_at = world.clock.now
        world.clock.advance(10)
        world.approve(proposal)
        world.approve_check(proposal["proposal_id"], actor="op")
        full = world.get_history(proposal["proposal_id"])
        assert full["chain_valid"] is True
        assert [(e["state_before"], e["state_after"]) for e in full["events"]] == [
            (None, "generated"),
            ("generated", "replay_validated"),
            ("replay_validated", "approved"),
        ]
        assert full["events"][1]["prev_hash"] == full["events"][0]["event_hash"]
        assert full["events"][0]["prev_hash"] == "0" * 64
        first = world.get_history(proposal["proposal_id"], as_of_version=1)
        assert len(first["events"]) == 1 and first["as_of"]["state"] == "generated"
        then = world.get_history(proposal["proposal_id"], as_of=created_at)
        assert then["as_of"]["state"] == "generated"
        explained = world.get_explanation(proposal["proposal_id"])
        assert explained["can_activate"] is True

    def test_history_of_unknown_proposal(self, world: World) -> None:
        with pytest.raises(NotFoundError):
            world.get_history("00000000-0000-0000-0000-000000000000")


class TestSnapshots:
    def test_long_streams_load_from_snapshots_equal_to_their_fold(self, database_url: str) -> None:
        with make_world(database_url, replay_budget=100) as world:
            world.uow.snapshot_interval = 3
            for index in range(7):
                passed_replay(world, 0.81 + index / 100)
            ledger_id = replay_budget_id_for("acme", TARGET["type"], TARGET["id"])
            snapshots = list(world.log.snapshots.get(ledger_id)) if world.log.snapshots else []
            assert [s.originator_version for s in snapshots] == [3, 6]
            stored: Any = world.log.repository.get(ledger_id)
            folded = None
            for event in world.uow.stream(ledger_id):
                folded = type(stored).evolve(folded, event)
            assert stored.state == folded and stored.version == 8
            assert passed_replay(world, 0.95)["budget"]["remaining"] == 100 - 8


class TestTenantScope:
    """Every proposal command and query takes the caller's tenants itself: another tenant's proposal answers exactly
    as an unknown one and nothing is written (SPEC §8)."""

    def test_another_tenants_proposal_is_unknown_to_every_command_and_writes_nothing(self, world: World) -> None:
        proposal = approved_proposal(world)
        pid, unknown = proposal["proposal_id"], "00000000-0000-4000-8000-000000000000"
        engine, elsewhere = world.engine, frozenset({"someone-else"})
        before = event_count(world)
        commands: list[Callable[[str], object]] = [
            lambda ref: engine.promotions.approve_check(ProposalRef(ref), actor="op", tenants=elsewhere),
            lambda ref: engine.activations.activate(ProposalRef(ref), actor="op", tenants=elsewhere),
            lambda ref: engine.schedule.activate(Activate(ref), actor="op", tenants=elsewhere),
            lambda ref: engine.schedule.unschedule(ProposalRef(ref), actor="op", tenants=elsewhere),
            lambda ref: engine.activations.rollback(Rollback(ref, "no"), actor="op", tenants=elsewhere),
            lambda ref: engine.audit.get_explanation(ref, tenants=elsewhere),
            lambda ref: engine.audit.get_history(ref, tenants=elsewhere),
        ]
        for command in commands:
            answers = []
            for ref in (pid, unknown):
                with pytest.raises(NotFoundError) as caught:
                    command(ref)
                answers.append((caught.value.code, caught.value.message.replace(ref, "ID")))
            assert answers[0] == answers[1]
        assert event_count(world) == before
        assert world.activate(pid, actor="op").body["state"] == "active"  # in scope (None: every tenant) it goes on

    def test_a_command_naming_a_tenant_outside_the_callers_is_forbidden_before_anything_is_read(
        self, world: World
    ) -> None:
        replay = passed_replay(world)
        elsewhere, before = frozenset({"someone-else"}), event_count(world)
        engine = world.engine
        commands: list[Callable[[], object]] = [
            lambda: engine.replays.evaluate(
                convert(replay_body(world.families), EvaluateReplay), actor="s", tenants=elsewhere
            ),
            lambda: engine.promotions.propose(
                convert(propose_body(replay["replay_id"]), Propose), actor="p", tenants=elsewhere
            ),
            lambda: engine.policy.stop(TenantAction("acme", "no"), actor="op", tenants=elsewhere),
            lambda: engine.policy.resume(TenantAction("acme", "no"), actor="op", tenants=elsewhere),
        ]
        for command in commands:
            with pytest.raises(ForbiddenError) as caught:
                command()
            assert "'acme'" in caught.value.message
        assert event_count(world) == before
