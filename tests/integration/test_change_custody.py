"""Custody by content hash (SPEC §3, §4.3–§4.5): the change that goes live is the change the replay judged and the
approver bound, on the engine, on every backend."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from dobby.engine.kernel.canonical import content_hash, proposal_id_for
from dobby.engine.kernel.errors import DobbyError, RuleViolationError
from dobby.engine.kernel.shapes import TargetRef
from dobby.engine.model.chain import EventPayload
from dobby.engine.model.proposal import Generated, Proposal
from tests.support import CHANGE, TARGET, World, make_world, passed_replay, propose_body, replay_body

OTHER = {"template": "Something else entirely"}


def codes(error: DobbyError) -> list[str]:
    return [detail["code"] for detail in error.details]


def spec_hash(value: Any) -> str:
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


@pytest.fixture
def lenient(database_url: str) -> Iterator[World]:
    """DOBBY_REQUIRE_JUDGED_CHANGE=false."""
    with make_world(database_url, require_judged_change=False) as built:
        yield built


class TestReplayNamesItsChange:
    def test_the_change_hash_enters_the_candidate_hash(self, world: World) -> None:
        body = replay_body(world.families)
        answer = world.evaluate_replay(body, actor="s").body
        bound = {
            "tenant_id": "acme",
            "target": TARGET,
            "family_versions": world.families,
            "candidate": body["metrics"]["candidate"],
            "change_hash": spec_hash(CHANGE),
        }
        assert answer["change_hash"] == spec_hash(CHANGE)
        assert answer["candidate_hash"] == spec_hash(bound)
        assert world.get_replay(answer["replay_id"])["change_hash"] == spec_hash(CHANGE)

    def test_a_replay_without_a_change_keeps_the_original_candidate_hash(self, world: World) -> None:
        body = replay_body(world.families, change=None)
        answer = world.evaluate_replay(body, actor="s").body
        bound = {
            "tenant_id": "acme",
            "target": TARGET,
            "family_versions": world.families,
            "candidate": body["metrics"]["candidate"],
        }
        assert answer["candidate_hash"] == spec_hash(bound)
        assert answer["change_hash"] is None and world.get_replay(answer["replay_id"])["change_hash"] is None

    def test_another_change_is_another_replay(self, world: World) -> None:
        first = world.evaluate_replay(replay_body(world.families), actor="s").body
        second = world.evaluate_replay(replay_body(world.families, change=OTHER), actor="s").body
        assert first["replay_id"] != second["replay_id"] and first["candidate_hash"] != second["candidate_hash"]

    def test_a_change_over_64_kib_is_refused_and_stores_nothing(self, world: World) -> None:
        head = world.engine.position()
        with pytest.raises(DobbyError) as caught:
            world.evaluate_replay(replay_body(world.families, change={"blob": "x" * 70_000}), actor="s")
        assert codes(caught.value) == ["too_large"] and world.engine.position() == head


class TestProposeTakesTheJudgedChange:
    def test_a_left_out_change_is_taken_from_the_replay(self, world: World) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"], change=None), actor="p").body
        assert proposal["change"] == CHANGE and proposal["change_hash"] == spec_hash(CHANGE)
        assert proposal["change_judged"] is True
        assert proposal["candidate_hash"] == replay["candidate_hash"]

    def test_the_same_change_given_or_taken_is_one_request(self, world: World) -> None:
        replay = passed_replay(world)
        first = world.propose(propose_body(replay["replay_id"], change=None), actor="p")
        again = world.propose(propose_body(replay["replay_id"]), actor="p")
        assert first.created and not again.created and again.body["duplicate"] is True

    def test_another_change_is_a_mismatch_naming_both_hashes(self, world: World) -> None:
        replay = passed_replay(world)
        head = world.engine.position()
        with pytest.raises(RuleViolationError) as caught:
            world.propose(propose_body(replay["replay_id"], change=OTHER), actor="p")
        (detail,) = caught.value.details
        assert detail["code"] == "change_mismatch" and detail["field"] == "change"
        assert detail["change_hash"] == spec_hash(OTHER) and detail["judged_change_hash"] == spec_hash(CHANGE)
        assert spec_hash(OTHER) in detail["message"] and spec_hash(CHANGE) in detail["message"]
        assert world.engine.position() == head

    def test_a_replay_that_judged_no_change_is_refused_by_default(self, world: World) -> None:
        replay = passed_replay(world, change=None)
        with pytest.raises(RuleViolationError) as caught:
            world.propose(propose_body(replay["replay_id"]), actor="p")
        assert codes(caught.value) == ["change_not_judged"]


class TestUnjudgedChangesWhenAllowed:
    def test_admitted_as_not_judged_and_approved_only_with_the_change_hash_bound(self, lenient: World) -> None:
        world = lenient
        replay = passed_replay(world, change=None)
        proposal = world.propose(propose_body(replay["replay_id"]), actor="p").body
        assert proposal["change_judged"] is False and proposal["change_hash"] == spec_hash(CHANGE)
        world.approve(proposal)
        answer = world.approve_check(proposal["proposal_id"], actor="o").body
        assert answer["approval_outcome"] == "mismatched" and answer["state"] == "blocked"
        assert any("change_hash is required" in reason for reason in answer["reasons"])

    def test_an_approval_binding_the_change_hash_goes_live(self, lenient: World) -> None:
        world = lenient
        replay = passed_replay(world, change=None)
        proposal = world.propose(propose_body(replay["replay_id"]), actor="p").body
        world.approve(proposal, change_hash=proposal["change_hash"])
        assert world.approve_check(proposal["proposal_id"], actor="o").body["state"] == "approved"
        active = world.activate(proposal["proposal_id"], actor="o").body
        assert active["state"] == "active" and active["change_hash"] == spec_hash(CHANGE)

    def test_without_a_change_anywhere_the_field_is_required(self, lenient: World) -> None:
        replay = passed_replay(lenient, change=None)
        with pytest.raises(RuleViolationError) as caught:
            lenient.propose(propose_body(replay["replay_id"], change=None), actor="p")
        assert codes(caught.value) == ["required"]


class TestTheBindingsChangeHash:
    def test_a_binding_naming_another_change_is_mismatched(self, world: World) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"]), actor="p").body
        world.approve(proposal, change_hash=spec_hash(OTHER))
        answer = world.approve_check(proposal["proposal_id"], actor="o").body
        assert answer["approval_outcome"] == "mismatched" and answer["state"] == "blocked"

    def test_a_binding_naming_the_same_change_is_stored_with_the_approval(self, world: World) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"]), actor="p").body
        world.approve(proposal, change_hash=proposal["change_hash"])
        assert world.approve_check(proposal["proposal_id"], actor="o").body["state"] == "approved"
        approved = [e for e in world.get_history(proposal["proposal_id"])["events"] if e["type"] == "Approved"]
        assert approved[0]["payload"]["approval"]["binding"]["change_hash"] == spec_hash(CHANGE)

    def test_activation_records_the_live_content_hash(self, world: World) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"]), actor="p").body
        world.approve(proposal)
        world.approve_check(proposal["proposal_id"], actor="o")
        world.activate(proposal["proposal_id"], actor="o")
        events = world.get_history(proposal["proposal_id"])["events"]
        assert events[-1]["type"] == "Activated" and events[-1]["payload"]["change_hash"] == spec_hash(CHANGE)
        explained = world.get_explanation(proposal["proposal_id"])
        assert explained["change_hash"] == spec_hash(CHANGE) and explained["change_judged"] is True


class OldGenerated(EventPayload, frozen=True):
    """A Generated payload as releases before change_hash stored it (no change_hash, no change_judged)."""

    tenant_id: str
    target: TargetRef
    risk: str
    replay_id: str
    candidate_hash: str
    provenance_hash: str
    family_versions: dict[str, str]
    change: dict[str, Any]
    baseline: dict[str, Any]
    rationale: str | None
    approval_requirement: str
    revalidate_required: bool
    expires_at: str
    request_hash: str
    auto_rollback: bool = True


OldGenerated.Event = Generated.Event  # recorded as the Generated event it was then


class TestProposalsFromBeforeChangeHash:
    def old_proposal(self, world: World) -> dict[str, Any]:
        """A proposal generated as an earlier release did: from a replay that named no change."""
        replay = passed_replay(world, change=None)
        pid = proposal_id_for(UUID(replay["replay_id"]))
        payload = OldGenerated(
            tenant_id="acme",
            target=TargetRef(**TARGET),
            risk="medium",
            replay_id=replay["replay_id"],
            candidate_hash=replay["candidate_hash"],
            provenance_hash=replay["provenance_hash"],
            family_versions=world.families,
            change=CHANGE,
            baseline={"template": "Hi"},
            rationale=None,
            approval_requirement="human",
            revalidate_required=False,
            expires_at="2099-01-01T00:00:00.000000Z",
            request_hash="sha256:old",
        )
        proposal = Proposal.start(payload, id=pid, actor="p", at=world.clock())
        world.uow.save(proposal)
        return world.get_proposal(str(pid))

    def test_reads_with_its_change_hash_and_judged_unknown(self, world: World) -> None:
        view = self.old_proposal(world)
        assert view["change_hash"] == content_hash(CHANGE) and view["change_judged"] is None

    def test_keeps_the_old_binding_rules(self, world: World) -> None:
        view = self.old_proposal(world)
        world.approve(view)
        answer = world.approve_check(view["proposal_id"], actor="o").body
        assert answer["state"] == "approved", answer


@pytest.mark.backends(["sqlite", "postgres"])  # two worlds on one store
def test_a_proposal_made_before_the_rule_is_found_again_not_refused(database_url: str) -> None:
    """Re-sending the body of a proposal generated while DOBBY_REQUIRE_JUDGED_CHANGE was off (or before it existed)
    finds that proposal (a duplicate), as every re-sent request does."""
    with make_world(database_url, require_judged_change=False) as lenient:
        replay = passed_replay(lenient, change=None)
        first = lenient.propose(propose_body(replay["replay_id"]), actor="p")
        assert first.created
    with make_world(database_url) as strict:
        again = strict.propose(propose_body(replay["replay_id"]), actor="p")
        assert not again.created and again.body["duplicate"] is True
        assert again.body["proposal_id"] == first.body["proposal_id"]
        with pytest.raises(RuleViolationError) as caught:
            strict.propose(propose_body(replay["replay_id"], risk="high"), actor="p")
        assert codes(caught.value) == ["change_not_judged"]
