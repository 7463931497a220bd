"""A Hypothesis state machine over the engine: random commands, Warp and Fabric answers, freezes and stops (§12),
and clock moves.

After every step it checks the invariants of SPEC §1–§4 and §12 against what is stored, not against a model:
lifecycle, one active proposal per target, governed activation, no activation inside a freeze or a stop, budgets,
re-folding and hash chains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from collections import defaultdict
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from dobby.engine.audit.history import fold
from dobby.engine.audit.verification import chain_is_valid
from dobby.engine.commands.boundary import convert
from dobby.engine.commands.policy import DeclareFreeze, TenantAction
from dobby.engine.commands.schedule import Activate
from dobby.engine.commands.watch import Observe
from dobby.engine.kernel.canonical import (
    GENESIS_HASH,
    content_hash,
    policy_id_for,
    replay_budget_id_for,
    target_id_for,
    velocity_ledger_id_for,
)
from dobby.engine.kernel.clock import parse_rfc3339
from dobby.engine.kernel.errors import DobbyError
from dobby.engine.kernel.ports import Approval, ApproverRef
from dobby.engine.model.payloads import payload_problem
from dobby.engine.model.policy import TenantPolicy, hold_on
from dobby.engine.model.proposal import Proposal
from dobby.engine.rules.lifecycle import ACTIVE, TERMINAL_STATES, next_state
from tests.support import World, make_world, propose_body, replay_body, reset_postgres

POLICY_EVENTS = TenantPolicy.events

TENANTS = ("acme", "beta")
TARGET_IDS = ("greeting", "router")
WINDOW = 600
LIMITS: dict[str, Any] = {
    "replay_budget": 3,
    "replay_budget_window_seconds": WINDOW,
    "promotion_velocity_max": 2,
    "promotion_velocity_window_seconds": WINDOW,
}
EXAMPLES = {"memory": int(os.environ.get("DOBBY_MACHINE_EXAMPLES", "150")), "sqlite": 10, "postgres": 10}
CHANGES: tuple[dict[str, Any] | None, ...] = ({"template": "Hello, {name}!"}, {"template": "Howdy"}, None)
"""What a replay names (None: no change) and what a proposal offers (None: left out, taken from the replay)."""


class EngineMachine(RuleBasedStateMachine):
    database_url: str = "memory://"
    require_judged_change: bool = True

    def __init__(self) -> None:
        super().__init__()
        fresh_storage(self.database_url)
        self._stack = ExitStack()
        self.world: World = self._stack.enter_context(self.build_world())
        self.world.uow.snapshot_interval = 3
        self.replays: list[dict[str, Any]] = []
        self.proposals: list[str] = []
        self.freezes: list[str] = []
        self.counter = 0
        self.seen_position = 0
        self.policies: dict[str, Any] = {}
        self.generated: dict[str, dict[str, Any]] = {}
        self.streams: dict[str, list[Any]] = {}
        self.streams_head: tuple[int, int] = (-1, 0)

    def build_world(self) -> Any:
        return make_world(self.database_url, require_judged_change=self.require_judged_change, **LIMITS)

    def teardown(self) -> None:
        self._stack.close()

    # ----- commands ----------------------------------------------------------------------------------

    def attempt(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DobbyError:
            return None

    @rule(
        tenant=st.sampled_from(TENANTS),
        target_id=st.sampled_from(TARGET_IDS),
        accuracy=st.sampled_from([0.70, 0.85, 0.90, 0.95]),
        similar=st.sampled_from([True, True, True, False]),
        drifted=st.sampled_from([False, False, False, True]),
        change=st.sampled_from(CHANGES),
    )
    def evaluate_replay(  # noqa: PLR0917
        self, tenant: str, target_id: str, accuracy: float, similar: bool, drifted: bool, change: Any = CHANGES[0]
    ) -> None:
        self.counter += 1
        families = dict(self.world.families)
        if drifted:
            families["runtime.traces"] = "0.9"
        body = replay_body(
            families,
            tenant_id=tenant,
            target={"type": "prompt_template", "id": target_id},
            workload_similar=similar,
            change=change,
        )
        body["metrics"]["candidate"]["accuracy"] = accuracy
        body["metrics"]["baseline"]["latency_ms"] = 100 + self.counter
        body["metrics"]["candidate"]["latency_ms"] = 100 + self.counter
        outcome = self.attempt(self.world.evaluate_replay, body, actor="submitter")
        if outcome is not None and outcome.body["verdict"] == "passed":
            self.replays.append({**outcome.body, "tenant_id": tenant, "target": body["target"]})

    @rule(
        tenant=st.sampled_from(TENANTS),
        target_id=st.sampled_from(TARGET_IDS),
        risk=st.sampled_from(["low", "medium", "high"]),
        kind=st.sampled_from(["human", "service"]),
        ttl=st.sampled_from([300, 3600]),
        activate=st.booleans(),
        judged=st.booleans(),
        bind_change=st.booleans(),
    )
    def carry_a_fresh_candidate_to_approval(  # noqa: PLR0917
        self,
        tenant: str,
        target_id: str,
        risk: str,
        kind: str,
        ttl: int,
        activate: bool,
        judged: bool,
        bind_change: bool,
    ) -> None:
        """The happy path in one step, so that deep states (approved, active) are reached often; the replay names
        its change or not, the approval binds the change_hash or not."""
        before = len(self.replays)
        replay_change = CHANGES[0] if judged else None
        self.evaluate_replay(tenant, target_id, 0.95, similar=True, drifted=False, change=replay_change)
        if len(self.replays) == before:
            return
        replay = self.replays[-1]
        body = propose_body(replay["replay_id"], tenant_id=tenant, target=replay["target"], risk=risk, ttl_seconds=ttl)
        outcome = self.attempt(self.world.propose, body, actor="proposer")
        if outcome is None or not outcome.created:
            return
        proposal_id = outcome.body["proposal_id"]
        self.proposals.append(proposal_id)
        bound = outcome.body["change_hash"] if bind_change else None
        self.world.approve(outcome.body, kind=kind, change_hash=bound)
        self.attempt(self.world.approve_check, proposal_id, actor="operator")
        if activate:
            self.attempt(self.world.activate, proposal_id, actor="operator")

    @rule(
        data=st.data(),
        risk=st.sampled_from(["low", "medium", "high", "critical"]),
        ttl=st.sampled_from([300, 3600]),
        change=st.sampled_from(CHANGES),
    )
    def propose(self, data: st.DataObject, risk: str, ttl: int, change: dict[str, Any] | None) -> None:
        if not self.replays:
            return
        replay = data.draw(st.sampled_from(self.replays))
        body = propose_body(
            replay["replay_id"],
            tenant_id=replay["tenant_id"],
            target=replay["target"],
            risk=risk,
            ttl_seconds=ttl,
            change=change,
        )
        outcome = self.attempt(self.world.propose, body, actor="proposer")
        if outcome is not None and outcome.created:
            self.proposals.append(outcome.body["proposal_id"])

    @rule(
        data=st.data(),
        decision=st.sampled_from(["approved", "approved", "rejected", "pending"]),
        kind=st.sampled_from(["human", "service"]),
        hours=st.sampled_from([-1, 0.1, 24]),
        forged=st.booleans(),
        change_hash=st.sampled_from(["none", "own", "own", "other"]),
    )
    def warp_decides(  # noqa: PLR0917
        self, data: st.DataObject, decision: str, kind: str, hours: float, forged: bool, change_hash: str
    ) -> None:
        if not self.proposals:
            return
        proposal = self.world.get_proposal(data.draw(st.sampled_from(self.proposals)))
        if forged:
            proposal = {**proposal, "provenance_hash": "sha256:forged"}
        bound = {"none": None, "own": proposal["change_hash"], "other": "sha256:" + "0" * 64}[change_hash]
        self.world.approve(proposal, kind=kind, hours=hours, decision=decision, change_hash=bound)

    @rule(
        data=st.data(),
        approvers=st.lists(st.sampled_from(["alice", "carol", "proposer", "ci-bot"]), min_size=1, max_size=3),
    )
    def warp_quorum(self, data: st.DataObject, approvers: list[str]) -> None:
        """An approval by several approvers, the proposer among them sometimes."""
        if not self.proposals:
            return
        proposal = self.world.get_proposal(data.draw(st.sampled_from(self.proposals)))
        refs = tuple(ApproverRef(name, "service" if name == "ci-bot" else "human") for name in approvers)
        now = self.world.clock()
        self.world.approvals.put(
            Approval(
                approval_id=f"quorum-{proposal['proposal_id'][:8]}",
                proposal_id=proposal["proposal_id"],
                decision="approved",
                approver_id=refs[0].id,
                approver_kind=refs[0].kind,
                candidate_hash=proposal["candidate_hash"],
                provenance_hash=proposal["provenance_hash"],
                decided_at=now,
                expires_at=now + timedelta(hours=24),
                approvers=refs,
            )
        )

    @rule(data=st.data(), accuracy=st.sampled_from([0.5, 0.79, 0.9]), latency=st.sampled_from([90, 125, 400]))
    def observe(self, data: st.DataObject, accuracy: float, latency: float) -> None:
        if self.proposals:
            body = {
                "proposal_id": data.draw(st.sampled_from(self.proposals)),
                "metrics": {"accuracy": accuracy, "latency_ms": latency},
            }
            self.attempt(self.world.engine.watch.observe, convert(body, Observe), actor="watcher")

    @rule(available=st.sampled_from([True, True, False]))
    def warp_availability(self, available: bool) -> None:
        self.world.approvals.available = available

    @rule(version=st.sampled_from(["1.0", "1.0", "1.0", "2.0", None]))
    def fabric_changes(self, version: str | None) -> None:
        self.world.governance.set_family("runtime.traces", version)

    @rule(seconds=st.sampled_from([1, 60, 400, 700, 4000]))
    def time_passes(self, seconds: int) -> None:
        self.world.clock.advance(seconds)

    @rule(data=st.data(), command=st.sampled_from(["approve_check", "activate", "activate", "expire"]))
    def proposal_command(self, data: st.DataObject, command: str) -> None:
        if self.proposals:
            self.attempt(getattr(self.world, command), data.draw(st.sampled_from(self.proposals)), actor="operator")

    @rule(data=st.data())
    def rollback(self, data: st.DataObject) -> None:
        if self.proposals:
            body = {"proposal_id": data.draw(st.sampled_from(self.proposals)), "reason": "worse in production"}
            self.attempt(self.world.rollback, body, actor="operator")

    @rule(
        tenant=st.sampled_from(TENANTS),
        pattern=st.sampled_from(["*", "prompt_template:greeting", "prompt_template:r*", "routing_rule:*"]),
        starts=st.sampled_from([None, 0, 300, -300]),
        minutes=st.sampled_from([5, 30, 120]),
    )
    def freeze(self, tenant: str, pattern: str, starts: int | None, minutes: int) -> None:
        now = self.world.clock()
        body: dict[str, Any] = {"tenant_id": tenant, "targets": pattern, "reason": "freeze", "ends_at": ""}
        if starts is not None:
            body["starts_at"] = (now + timedelta(seconds=starts)).isoformat()
        body["ends_at"] = (now + timedelta(seconds=(starts or 0) + minutes * 60)).isoformat()
        declared = self.attempt(self.world.engine.policy.declare_freeze, convert(body, DeclareFreeze), actor="ops")
        if declared is not None:
            self.freezes.append(declared[0].freeze_id)

    @rule(data=st.data())
    def lift_freeze(self, data: st.DataObject) -> None:
        if self.freezes:
            freeze_id = data.draw(st.sampled_from(self.freezes))
            self.attempt(self.world.engine.policy.lift_freeze, freeze_id, "over", tenants=None, actor="ops")

    @rule(data=st.data(), seconds=st.sampled_from([-60, 30, 400, 5000]))
    def schedule_activation(self, data: st.DataObject, seconds: int) -> None:
        if self.proposals:
            at = (self.world.clock() + timedelta(seconds=seconds)).isoformat()
            body = convert({"proposal_id": data.draw(st.sampled_from(self.proposals)), "not_before": at}, Activate)
            self.attempt(self.world.engine.schedule.activate, body, actor="operator")

    @rule()
    def scheduler_fires(self) -> None:
        for pid in self.proposals:
            self.attempt(self.world.engine.schedule.fire, pid)

    @rule(tenant=st.sampled_from(TENANTS), stop=st.booleans())
    def stop_or_resume(self, tenant: str, stop: bool) -> None:
        body = convert({"tenant_id": tenant, "reason": "incident"}, TenantAction)
        policy = self.world.engine.policy
        self.attempt(policy.stop if stop else policy.resume, body, actor="ops")

    @rule(data=st.data())
    def fabric_drift_marks(self, data: st.DataObject) -> None:
        if self.proposals:
            self.attempt(
                self.world.mark_revalidation_required, data.draw(st.sampled_from(self.proposals)), "fabric drift"
            )

    # ----- invariants --------------------------------------------------------------------------------

    def proposal_streams(self) -> dict[str, list[Any]]:
        """Every proposal's stream, read once per log head (several invariants ask after each step)."""
        head = (self.world.uow.position(), len(self.proposals))
        if head != self.streams_head:
            self.streams = {pid: self.world.uow.stream(uuid.UUID(pid)) for pid in self.proposals}
            self.streams_head = head
        return self.streams

    @invariant()
    def every_stream_follows_the_transition_table(self) -> None:
        for pid, events in self.proposal_streams().items():
            state: str | None = None
            for event in events:
                moved = next_state(state, event.type_name)
                assert moved is not None, f"{pid}: {event.type_name} from {state}"
                state = moved

    @invariant()
    def at_most_one_active_proposal_per_target(self) -> None:
        active: dict[tuple[str, str], list[str]] = defaultdict(list)
        for pid in self.proposals:
            view = self.world.get_proposal(pid)
            if view["state"] == ACTIVE:
                active[(view["tenant_id"], view["target"]["id"])].append(pid)
        for (tenant, target_id), pids in active.items():
            assert len(pids) == 1, pids
            target = self.world.get_target(tenant, "prompt_template", target_id)
            assert target is not None and target["active_proposal_id"] == pids[0]

    @invariant()
    def no_activation_without_a_matching_unexpired_approval(self) -> None:
        for events in self.proposal_streams().values():
            approval = None
            generated = events[0].payload if events else {}
            for event in events:
                if event.type_name == "Approved":
                    approval = event.payload["approval"]
                if event.type_name == "Activated":
                    assert approval is not None
                    binding = approval["binding"]
                    assert binding["candidate_hash"] == generated["candidate_hash"]
                    assert binding["provenance_hash"] == generated["provenance_hash"]
                    assert parse_rfc3339(approval["expires_at"]) > event.timestamp
                    if generated["approval_requirement"] == "human":
                        assert approval["kind"] == "human"

    @invariant()
    def what_goes_live_is_what_was_judged_and_approved(self) -> None:
        """SPEC §3, §4.4, §4.5: an active proposal's live content hash equals the change_hash its replay judged and
        its approval bound (inside candidate_hash), or, with DOBBY_REQUIRE_JUDGED_CHANGE off and a change the
        replay did not judge, the change_hash its approval bound itself; and the target serves exactly that."""
        for pid, events in self.proposal_streams().items():
            generated, approval = events[0].payload, None
            for event in events:
                if event.type_name == "Approved":
                    approval = event.payload["approval"]
                if event.type_name != "Activated":
                    continue
                assert approval is not None
                live_hash = content_hash(generated["change"])
                assert event.payload["change_hash"] == live_hash == generated["change_hash"]
                (replay,) = self.world.uow.stream(uuid.UUID(generated["replay_id"]))
                judged = replay.payload["change_hash"]
                if generated["change_judged"]:
                    assert judged == live_hash
                    assert approval["binding"]["candidate_hash"] == candidate_hash_bound(replay.payload)
                else:
                    assert not self.require_judged_change and judged is None
                    assert approval["binding"]["change_hash"] == live_hash
                if approval["binding"]["change_hash"] is not None:
                    assert approval["binding"]["change_hash"] == live_hash
            view = self.world.get_proposal(pid)
            if view["state"] == ACTIVE:
                target = self.world.get_target(view["tenant_id"], view["target"]["type"], view["target"]["id"])
                assert target is not None and content_hash(target["live_config"]) == view["change_hash"]

    @invariant()
    def no_content_goes_live_that_no_approval_bound(self) -> None:
        """Every change any target ever put live was bound by the approval of the proposal that put it there."""
        for tenant in TENANTS:
            for target_id in TARGET_IDS:
                for event in self.world.uow.stream(target_id_for(tenant, "prompt_template", target_id)):
                    if event.type_name != "ProposalWentLive":
                        continue
                    live_hash = content_hash(event.payload["change"])
                    assert event.payload["change_hash"] == live_hash
                    proposal = self.world.uow.stream(uuid.UUID(event.payload["proposal_id"]))
                    (approved,) = [e.payload["approval"] for e in proposal if e.type_name == "Approved"]
                    (replay,) = self.world.uow.stream(uuid.UUID(proposal[0].payload["replay_id"]))
                    binding = approved["binding"]
                    judged = replay.payload["change_hash"] == live_hash
                    bound_by_candidate = judged and binding["candidate_hash"] == candidate_hash_bound(replay.payload)
                    assert bound_by_candidate or binding["change_hash"] == live_hash

    @invariant()
    def no_activation_inside_a_freeze_or_a_stop(self) -> None:
        """Every Activated event, replayed in log order beside the policy streams: nothing held its target then.
        Reads only what the log gained since the last step."""
        log = self.world.log
        new = log.recorder.select_notifications(start=self.seen_position, limit=100_000, inclusive_of_start=False)
        for notification in new:
            self.seen_position = notification.id
            event: Any = log.mapper.to_domain_event(notification)
            if isinstance(event, POLICY_EVENTS):
                key = str(event.originator_id)
                self.policies[key] = TenantPolicy.evolve(self.policies.get(key), event)
            elif event.type_name == "Generated":
                self.generated[str(event.originator_id)] = event.payload
            elif event.type_name == "Activated":
                generated = self.generated[str(event.originator_id)]
                state = self.policies.get(str(policy_id_for(generated["tenant_id"])))
                hold = hold_on(state, generated["target"], event.timestamp)
                assert hold is None, f"{event.originator_id} activated while held: {hold}"

    @invariant()
    def a_scheduled_activation_fires_only_at_or_after_its_time(self) -> None:
        for events in self.proposal_streams().values():
            due = None
            for event in events:
                if event.type_name == "ActivationScheduled":
                    due = parse_rfc3339(event.payload["not_before"])
                elif event.type_name == "Activated" and event.actor == "dobby:scheduler":
                    assert due is not None and event.timestamp >= due, (due, event.timestamp)

    @invariant()
    def no_approval_counts_without_its_quorum_or_from_its_proposer(self) -> None:
        for events in self.proposal_streams().values():
            generated, proposer = events[0].payload, events[0].actor
            for event in events:
                if event.type_name == "Approved":
                    approvers = event.payload["approval"]["approvers"]
                    counted = {
                        one["id"]
                        for one in approvers
                        if one["id"] != proposer
                        and (generated["approval_requirement"] == "any" or one["kind"] == "human")
                    }
                    needed = {"high": 1, "critical": 2}.get(generated["risk"], 1)
                    assert len(counted) >= needed, (generated["risk"], approvers, proposer)

    @invariant()
    def every_regression_of_an_active_proposal_ends_in_rollback(self) -> None:
        for events in self.proposal_streams().values():
            auto = events[0].payload.get("auto_rollback", True)
            for index, event in enumerate(events):
                if event.type_name == "Observed" and event.payload["verdict"] == "regressed" and auto:
                    following = events[index + 1] if index + 1 < len(events) else None
                    assert following is not None and following.type_name == "RolledBack"
                    assert following.actor == "dobby:watch"

    @invariant()
    def velocity_breaker_and_replay_budget_are_never_overrun(self) -> None:
        activations: dict[str, list[datetime]] = defaultdict(list)
        for events in self.proposal_streams().values():
            tenant = events[0].payload["tenant_id"]
            activations[tenant] += [e.timestamp for e in events if e.type_name == "Activated"]
        for times in activations.values():
            assert_window(times, LIMITS["promotion_velocity_max"])
        for tenant in TENANTS:
            for target_id in TARGET_IDS:
                ledger = self.world.uow.stream(replay_budget_id_for(tenant, "prompt_template", target_id))
                assert_window([e.timestamp for e in ledger if e.type_name == "Spent"], LIMITS["replay_budget"])

    @invariant()
    def refolding_any_stream_gives_the_same_state(self) -> None:
        for pid, events in self.proposal_streams().items():
            stored: Any = self.world.log.repository.get(uuid.UUID(pid))
            assert isinstance(stored, Proposal)
            assert fold(events) == stored.state
            assert stored.state.version == len(events)

    @invariant()
    def every_hash_chain_verifies(self) -> None:
        streams = [uuid.UUID(pid) for pid in self.proposals]
        streams += [uuid.UUID(replay["replay_id"]) for replay in self.replays]
        for tenant in TENANTS:
            streams.append(velocity_ledger_id_for(tenant))
            for target_id in TARGET_IDS:
                streams.append(target_id_for(tenant, "prompt_template", target_id))
                streams.append(replay_budget_id_for(tenant, "prompt_template", target_id))
        for stream_id in streams:
            events = self.world.uow.stream(stream_id)
            assert not events or self.world.uow.verify_stream(stream_id)
            prev_hash = GENESIS_HASH
            for event in events:
                assert payload_problem(event.type_name, event.payload) is None, event.type_name
                assert event.prev_hash == prev_hash
                assert event.event_hash == spec_event_hash(event)
                prev_hash = event.event_hash
            if events:
                last = events[-1]
                for forged in (
                    dataclasses.replace(cast(Any, last), actor=last.actor + "-not"),
                    dataclasses.replace(cast(Any, last), timestamp=last.timestamp + timedelta(microseconds=1)),
                ):
                    assert not chain_is_valid([*events[:-1], forged]), "who and when are inside the chain"
        for pid in self.proposals:
            positions = [event["position"] for event in self.world.get_history(pid)["events"]]
            assert positions == sorted(set(positions)) and positions[0] >= 1

    @invariant()
    def snapshotted_streams_load_as_their_events_fold(self) -> None:
        streams = [velocity_ledger_id_for(tenant) for tenant in TENANTS]
        for tenant in TENANTS:
            for target_id in TARGET_IDS:
                streams += [
                    target_id_for(tenant, "prompt_template", target_id),
                    replay_budget_id_for(tenant, "prompt_template", target_id),
                ]
        for stream_id in streams:
            events = self.world.uow.stream(stream_id)
            if not events:
                continue
            stored: Any = self.world.log.repository.get(stream_id)
            folded = None
            for event in events:
                folded = type(stored).evolve(folded, event)
            assert stored.state == folded and stored.version == len(events)
            assert stored.last_hash == events[-1].event_hash

    @invariant()
    def targets_hold_exactly_the_proposals_in_play(self) -> None:
        in_play: dict[tuple[str, str], set[str]] = defaultdict(set)
        for pid in self.proposals:
            view = self.world.get_proposal(pid)
            if view["state"] not in TERMINAL_STATES:
                in_play[(view["tenant_id"], view["target"]["id"])].add(pid)
        for tenant in TENANTS:
            for target_id in TARGET_IDS:
                target = self.world.get_target(tenant, "prompt_template", target_id)
                held = target["in_play"] if target else []
                assert len(held) == len(set(held)) and set(held) == in_play[(tenant, target_id)]


def candidate_hash_bound(replay: dict[str, Any]) -> str:
    """SPEC §3 read literally: the candidate_hash of a replay that named its change binds its change_hash."""
    bound = {
        "tenant_id": replay["tenant_id"],
        "target": replay["target"],
        "family_versions": replay["family_versions"],
        "candidate": replay["metrics"]["candidate"],
    }
    if replay["change_hash"] is not None:
        bound["change_hash"] = replay["change_hash"]
    encoded = json.dumps(bound, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def spec_event_hash(event: Any) -> str:
    """SPEC §3 read literally: the hash of {stream id, version, event type, occurred_at, actor, payload, prev_hash}."""
    content = {
        "stream_id": str(event.originator_id),
        "version": event.originator_version,
        "type": type(event).__name__,
        "occurred_at": event.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": event.actor,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def fresh_storage(database_url: str) -> None:
    """Each example starts on empty storage."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    elif database_url.startswith("postgresql://"):
        reset_postgres(database_url)


def assert_window(times: list[datetime], limit: int) -> None:
    ordered = sorted(times)
    for index, moment in enumerate(ordered):
        inside = [t for t in ordered[: index + 1] if t > moment - timedelta(seconds=WINDOW)]
        assert len(inside) <= limit, (moment, inside)


def run_machine(database_url: str, examples: int, base: type[EngineMachine] = EngineMachine) -> None:
    class Machine(base):  # type: ignore[valid-type,misc]
        pass

    Machine.database_url = database_url
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_engine_state_machine_in_memory() -> None:
    run_machine("memory://", EXAMPLES["memory"])


def test_engine_state_machine_on_sqlite(tmp_path: Path) -> None:
    run_machine(f"sqlite:///{tmp_path / 'machine.db'}", EXAMPLES["sqlite"])


def test_engine_state_machine_on_postgres(postgres_database: str) -> None:
    run_machine(postgres_database, EXAMPLES["postgres"])


class UnjudgedChangesAllowed(EngineMachine):
    """DOBBY_REQUIRE_JUDGED_CHANGE off: a change the replay did not judge is admitted, and only an approval that
    binds its change_hash may put it live."""

    require_judged_change = False


def test_engine_state_machine_with_unjudged_changes_allowed() -> None:
    run_machine("memory://", max(EXAMPLES["memory"] // 4, 20), UnjudgedChangesAllowed)
