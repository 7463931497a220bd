"""Admission, approval outcomes, activation guards, modes, lifecycle and sliding windows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.ports import Approval, ApproverRef, GovernanceDocument
from dobby.engine.kernel.shapes import TargetRef
from dobby.engine.model.policy import Freeze, PolicyState, Stop, hold_on
from dobby.engine.model.proposal import ProposalState
from dobby.engine.rules.admission import check_admission, check_target
from dobby.engine.rules.approval import ApprovalJudgement, approval_requirement, approvers_needed, judge_approval
from dobby.engine.rules.guards import activation_guards
from dobby.engine.rules.lifecycle import OPEN_STATES, STATES, TERMINAL_STATES, TRANSITIONS, actions_in, next_state
from dobby.engine.rules.modes import Manifest, Mode, align, effective_mode
from dobby.engine.rules.windows import allowance

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FABRIC = GovernanceDocument(
    "adaptive_learning", {"f": "1", "g": "2"}, ("prompt_template",), ("prompt_template:secret*",), "green"
)
MANIFEST = Manifest("adaptive_learning", {"f": "1"}, {"g": "2"})


def approval(**overrides: object) -> Approval:
    base = Approval("a1", "p1", "approved", "alice", "human", "sha256:c", "sha256:p", NOW, NOW + timedelta(hours=1))
    return replace(base, **overrides)  # type: ignore[arg-type]


def judge(found: Approval | None, requirement: str = "human") -> str:
    return judge_approval(
        found, proposal_id="p1", candidate_hash="sha256:c", provenance_hash="sha256:p", requirement=requirement, now=NOW
    ).outcome


class TestAdmission:
    def test_weight_training_is_forbidden_whatever_fabric_says(self) -> None:
        fabric = replace(FABRIC, target_types=("weight_training_candidate",))
        assert [v.code for v in check_target(TargetRef("weight_training_candidate", "x"), fabric)] == [
            "weight_training_forbidden"
        ]

    def test_unpermitted_type(self) -> None:
        assert [v.code for v in check_target(TargetRef("router", "x"), FABRIC)] == ["target_not_permitted"]

    def test_no_learn_zone_matches_type_colon_id(self) -> None:
        assert [v.code for v in check_admission(TargetRef("prompt_template", "secret-1"), FABRIC)] == ["no_learn_zone"]
        assert check_admission(TargetRef("prompt_template", "public"), FABRIC) == []

    def test_target_id_pattern(self) -> None:
        codes = [v.code for v in check_admission(TargetRef("prompt_template", "has space"), FABRIC)]
        assert codes == ["invalid_target_id"]


class TestApprovalOutcomes:
    def test_valid_human_approval(self) -> None:
        assert judge(approval()) == "approved"

    def test_missing_or_pending_is_pending(self) -> None:
        assert judge(None) == "pending"
        assert judge(approval(decision="pending")) == "pending"

    def test_rejected(self) -> None:
        assert judge(approval(decision="rejected")) == "rejected"

    @pytest.mark.parametrize("field", ["candidate_hash", "provenance_hash", "proposal_id"])
    def test_binding_mismatch(self, field: str) -> None:
        assert judge(approval(**{field: "other"})) == "mismatched"

    def test_expired(self) -> None:
        assert judge(approval(expires_at=NOW)) == "expired"

    def test_service_approver_is_insufficient_when_a_human_is_required(self) -> None:
        assert judge(approval(approver_kind="service")) == "insufficient_approver"
        assert judge(approval(approver_kind="service"), requirement="any") == "approved"

    def test_requirement_follows_risk(self) -> None:
        assert approval_requirement("low") == "any"
        assert {approval_requirement(r) for r in ("medium", "high", "critical")} == {"human"}


class TestApprovalQuorum:
    """SPEC §12: high and critical need a quorum of distinct human approvers; the proposer never counts."""

    @staticmethod
    def by(*approvers: tuple[str, str], **extra: object) -> Approval:
        return approval(approvers=tuple(ApproverRef(i, k) for i, k in approvers), **extra)  # type: ignore[arg-type]

    @staticmethod
    def outcome(found: Approval, needed: int, proposer: str = "bob", requirement: str = "human") -> ApprovalJudgement:
        return judge_approval(
            found,
            proposal_id="p1",
            candidate_hash="sha256:c",
            provenance_hash="sha256:p",
            requirement=requirement,
            now=NOW,
            needed=needed,
            proposer=proposer,
        )

    def test_quorum_by_risk(self) -> None:
        assert [approvers_needed(r, 1, 2) for r in ("low", "medium", "high", "critical")] == [1, 1, 1, 2]
        assert approvers_needed("high", 3, 4) == 3

    def test_two_distinct_humans_make_a_quorum_of_two(self) -> None:
        assert self.outcome(self.by(("alice", "human"), ("carol", "human")), 2).outcome == "approved"

    def test_the_same_human_twice_or_a_service_does_not(self) -> None:
        assert self.outcome(self.by(("alice", "human"), ("alice", "human")), 2).outcome == "insufficient_approver"
        assert self.outcome(self.by(("alice", "human"), ("ci", "service")), 2).outcome == "insufficient_approver"

    def test_the_proposer_does_not_count(self) -> None:
        judged = self.outcome(self.by(("bob", "human"), ("alice", "human")), 2, proposer="bob")
        assert judged.outcome == "insufficient_approver"
        assert any("proposer bob" in reason for reason in judged.reasons)
        alone = self.outcome(approval(approver_id="bob"), 1, proposer="bob", requirement="any")
        assert alone.outcome == "insufficient_approver"  # not even for low risk

    def test_a_mismatched_binding_is_judged_first(self) -> None:
        found = self.by(("bob", "human"), candidate_hash="other")
        assert self.outcome(found, 2, proposer="bob").outcome == "mismatched"


def proposal_state(**overrides: object) -> ProposalState:
    base = ProposalState(
        proposal_id="p1",
        tenant_id="t",
        target={"type": "prompt_template", "id": "x"},
        risk="low",
        state="approved",
        replay_id="r",
        candidate_hash="c",
        provenance_hash="p",
        family_versions={},
        change={},
        baseline={},
        rationale=None,
        approval_requirement="any",
        approval={"id": "a", "approver": "alice", "kind": "human", "expires_at": "2026-01-01T01:00:00.000000Z"},
        revalidate_required=False,
        created_at="",
        updated_at="",
        expires_at="2026-02-01T00:00:00.000000Z",
        activated_at=None,
        version=3,
        request_hash="h",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


class TestActivationGuards:
    def test_all_pass(self) -> None:
        guards = activation_guards(
            proposal_state(),
            mode=Mode.promotion_enabled,
            other_active_id=None,
            velocity=allowance((), 5, 3600, NOW),
            drift=[],
            now=NOW,
        )
        assert all(g.passed for g in guards)
        assert [g.name for g in guards] == [
            "mode",
            "state",
            "not_frozen",
            "approval_fresh",
            "not_revalidate_required",
            "target_free",
            "velocity",
        ]

    def test_every_failure_is_reported_in_spec_order(self) -> None:
        spends = tuple(NOW - timedelta(minutes=m) for m in range(5))
        guards = activation_guards(
            proposal_state(state="replay_validated", approval=None, revalidate_required=True),
            mode=Mode.proposal_only,
            other_active_id="p9",
            velocity=allowance(spends, 5, 3600, NOW),
            drift=[],
            now=NOW,
        )
        assert [g.code for g in guards if not g.passed] == [
            "mode_forbids",
            "invalid_state",
            "approval_stale",
            "revalidate_required",
            "conflict",
            "velocity_breaker_open",
        ]

    def test_expired_approval_fails_freshness(self) -> None:
        later = NOW + timedelta(hours=2)
        guards = activation_guards(
            proposal_state(),
            mode=Mode.promotion_enabled,
            other_active_id=None,
            velocity=allowance((), 5, 3600, later),
            drift=[],
            now=later,
        )
        assert [g.name for g in guards if not g.passed] == ["approval_fresh"]

    def test_family_drift_now_holds_activation_back_without_a_flag(self) -> None:
        guards = activation_guards(
            proposal_state(),
            mode=Mode.promotion_enabled,
            other_active_id=None,
            velocity=allowance((), 5, 3600, NOW),
            drift=["family_version:f:1!=2"],
            now=NOW,
        )
        failed = [g for g in guards if not g.passed]
        assert [g.code for g in failed] == ["revalidate_required"]
        assert "family_version:f:1!=2" in failed[0].reason


class TestModes:
    def test_aligned_fabric_allows_promotion(self) -> None:
        alignment = align(MANIFEST, FABRIC)
        assert alignment.aligned and alignment.cap == Mode.promotion_enabled
        assert effective_mode(Mode.promotion_enabled, True, alignment) == Mode.promotion_enabled

    def test_requested_mode_caps_effective(self) -> None:
        assert effective_mode(Mode.observe_only, True, align(MANIFEST, FABRIC)) == Mode.observe_only

    def test_version_drift_caps_at_proposal_only(self) -> None:
        alignment = align(MANIFEST, replace(FABRIC, families={"f": "1", "g": "3"}))
        assert alignment.cap == Mode.proposal_only and alignment.drift == ("family g: manifest 2, fabric 3",)

    @pytest.mark.parametrize(
        "fabric",
        [
            None,
            replace(FABRIC, readiness="amber"),
            replace(FABRIC, capability_class="other"),
            replace(FABRIC, families={"f": "1"}),
        ],
    )
    def test_structural_problems_cap_at_observe_only(self, fabric: GovernanceDocument | None) -> None:
        assert align(MANIFEST, fabric).cap == Mode.observe_only

    def test_unreachable_persistence_means_warmup(self) -> None:
        assert effective_mode(Mode.promotion_enabled, False, align(MANIFEST, FABRIC)) == Mode.warmup

    def test_ladder_order(self) -> None:
        assert Mode.warmup < Mode.observe_only < Mode.proposal_only < Mode.promotion_enabled


class TestLifecycle:
    def test_terminal_states_have_no_way_out(self) -> None:
        for (source, _event), _target in TRANSITIONS.items():
            assert source not in TERMINAL_STATES

    def test_every_state_is_reachable(self) -> None:
        assert set(TRANSITIONS.values()) == set(STATES)

    def test_expiry_only_from_open_states(self) -> None:
        assert {s for s in STATES if next_state(s, "Expired")} == OPEN_STATES

    def test_unknown_moves_are_refused(self) -> None:
        assert next_state("active", "Approved") is None
        assert next_state("blocked", "RevalidationRequired") is None
        assert next_state("active", "RevalidationRequired") == "active"


class TestSlidingWindow:
    def test_counts_only_spends_inside_the_window(self) -> None:
        spends = (NOW - timedelta(seconds=3600), NOW - timedelta(seconds=10))
        assert allowance(spends, 2, 3600, NOW).used == 1

    def test_exhausted_reports_when_one_unit_frees_up(self) -> None:
        spends = (NOW - timedelta(seconds=100), NOW - timedelta(seconds=50))
        window = allowance(spends, 2, 3600, NOW)
        assert window.exhausted and window.remaining == 0
        assert window.retry_after == 3500
        assert window.resets_at == NOW + timedelta(seconds=3550)

    def test_empty_window_resets_now(self) -> None:
        window = allowance((), 3, 60, NOW)
        assert (window.remaining, window.retry_after, window.resets_at) == (3, 0.0, NOW)


class TestFreezesAndTheStop:
    """SPEC §12: what holds an activation back is a pure function of the tenant's policy and the moment."""

    @staticmethod
    def policy(*freezes: Freeze, stop: Stop | None = None) -> PolicyState:
        return PolicyState("acme", freezes, stop)

    @staticmethod
    def freeze(targets: str = "*", starts: float = -1, ends: float = 1, **extra: str) -> Freeze:
        at = rfc3339(NOW + timedelta(hours=starts)), rfc3339(NOW + timedelta(hours=ends))
        return Freeze("f1", "acme", targets, at[0], at[1], "holiday", "ops", at[0], **extra)

    TARGET = {"type": "prompt_template", "id": "support/greeting"}

    def test_a_freeze_in_force_over_the_target_holds_it(self) -> None:
        hold = hold_on(self.policy(self.freeze("prompt_template:support/*")), self.TARGET, NOW)
        assert hold is not None and hold.kind == "freeze" and hold.freeze_id == "f1" and hold.reason == "holiday"

    @pytest.mark.parametrize(
        "made",
        [
            {"targets": "routing_rule:*"},
            {"targets": "prompt_template:support"},  # fnmatch over the whole `type:id`, not a prefix
            {"starts": 1, "ends": 2},  # not yet
            {"starts": -2, "ends": 0},  # over at ends_at exactly
            {"lifted_at": "2026-01-01T00:00:00.000000Z"},
        ],
    )
    def test_other_targets_other_windows_and_lifted_freezes_hold_nothing(self, made: dict[str, Any]) -> None:
        assert hold_on(self.policy(self.freeze(**made)), self.TARGET, NOW) is None

    def test_the_stop_holds_every_target_and_is_named_first(self) -> None:
        stop = Stop("incident", "oncall", rfc3339(NOW))
        hold = hold_on(self.policy(self.freeze(), stop=stop), {"type": "t", "id": "x"}, NOW)
        assert hold is not None and hold.kind == "stop" and "incident" in hold.describe("acme")

    def test_no_policy_holds_nothing(self) -> None:
        assert hold_on(None, self.TARGET, NOW) is None

    def test_a_hold_fails_the_not_frozen_guard_with_code_frozen(self) -> None:
        hold = hold_on(self.policy(self.freeze()), self.TARGET, NOW)
        guards = activation_guards(
            proposal_state(),
            mode=Mode.promotion_enabled,
            other_active_id=None,
            velocity=allowance((), 5, 3600, NOW),
            drift=[],
            now=NOW,
            hold=hold,
        )
        failed = [g for g in guards if not g.passed]
        assert [(g.name, g.code) for g in failed] == [("not_frozen", "frozen")]
        assert "f1" in failed[0].reason and "holiday" in failed[0].reason


def test_the_operator_actions_a_state_offers_come_from_the_transition_table() -> None:
    offered = {state: actions_in(state) for state in STATES}
    assert offered == {
        "generated": ("approve-check",),
        "replay_validated": ("approve-check",),
        "approved": ("activate",),
        "active": ("rollback",),
        "rolled_back": (),
        "blocked": (),
        "expired": (),
    }
