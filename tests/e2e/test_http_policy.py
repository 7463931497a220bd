"""SPEC §12 over HTTP, on SQLite and PostgreSQL: freezes and the emergency stop hold activation back with the freeze
or stop named (explain shows `not_frozen`, rollback never waits, every act is in the policy stream), and approvals
need their quorum of distinct humans, never counting the proposer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    FAMILIES,
    LEARNING,
    TARGET,
    InProcess,
    approved,
    eventually,
    metric,
    post,
    propose_body,
    refused,
    replay_body,
    serve_in_process,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


def moment(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def freeze(app: InProcess, **overrides: Any) -> dict[str, Any]:
    body = {"tenant_id": "acme", "ends_at": moment(hours=1), "reason": "holiday freeze", **overrides}
    return post(app.client, "/freezes", body, 201, **{"X-Actor": "ops-lead"})


def guard(app: InProcess, proposal_id: str, name: str) -> dict[str, Any]:
    explained = app.client.get(f"{LEARNING}/proposals/{proposal_id}/explain").json()
    found: dict[str, Any] = next(g for g in explained["guards"] if g["name"] == name)
    return found


def test_a_freeze_holds_activation_back_until_it_is_lifted(app: InProcess) -> None:
    proposal = approved(app)
    pid = proposal["proposal_id"]
    declared = freeze(app, targets=f"{TARGET['type']}:*")
    assert declared["targets"] == "prompt_template:*" and declared["declared_by"] == "ops-lead"
    assert (
        post(
            app.client,
            "/freezes",
            {k: declared[k] for k in ("tenant_id", "targets", "ends_at", "reason")}
            | {"starts_at": declared["starts_at"]},
            200,
        )["duplicate"]
        is True
    )

    answer = refused(app.client, "/promotions/activate", {"proposal_id": pid}, 422, "frozen")
    failed = answer.json()["error"]["details"]
    assert failed[0]["guard"] == "not_frozen"
    assert declared["freeze_id"] in failed[0]["message"] and "holiday freeze" in failed[0]["message"]
    assert declared["ends_at"] in failed[0]["message"]
    held = guard(app, pid, "not_frozen")
    assert held["passed"] is False and declared["freeze_id"] in held["reason"]

    listed = app.client.get(f"{LEARNING}/freezes", params={"tenant_id": "acme"}).json()
    assert [f["freeze_id"] for f in listed["items"]] == [declared["freeze_id"]] and listed["next_cursor"] is None

    lifted = app.client.delete(f"{LEARNING}/freezes/{declared['freeze_id']}", params={"reason": "incident over"})
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["lift_reason"] == "incident over" and lifted.json()["lifted_at"] is not None
    assert app.client.get(f"{LEARNING}/freezes", params={"tenant_id": "acme"}).json()["items"] == []
    past = app.client.get(f"{LEARNING}/freezes", params={"tenant_id": "acme", "include": "past"}).json()
    assert [f["freeze_id"] for f in past["items"]] == [declared["freeze_id"]]

    assert guard(app, pid, "not_frozen")["passed"] is True
    assert post(app.client, "/promotions/activate", {"proposal_id": pid}, 200)["state"] == "active"
    app.flush_tallies()
    assert metric(app.client, "dobby_frozen_activations_total") == 1


def test_a_freeze_covers_only_its_targets_and_its_window(app: InProcess) -> None:
    proposal = approved(app)
    freeze(app, targets="routing_rule:*")
    freeze(app, starts_at=moment(hours=1), ends_at=moment(hours=2), reason="later")
    freeze(app, tenant_id="other", reason="another tenant's freeze")
    assert guard(app, proposal["proposal_id"], "not_frozen")["passed"] is True
    assert post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)["state"] == "active"


def test_the_stop_holds_every_activation_and_rollback_still_works(app: InProcess) -> None:
    active = approved(app, 0.90)
    post(app.client, "/promotions/activate", {"proposal_id": active["proposal_id"]}, 200)
    waiting = approved(app, 0.91)

    stopped = post(app.client, "/stop", {"tenant_id": "acme", "reason": "incident 42"}, 200)
    assert stopped["stopped"] is True and stopped["reason"] == "incident 42"
    again = post(app.client, "/stop", {"tenant_id": "acme", "reason": "twice"}, 200)
    assert again["reason"] == "incident 42"  # already stopped: nothing written

    answer = refused(app.client, "/promotions/activate", {"proposal_id": waiting["proposal_id"]}, 422, "frozen")
    assert "stopped" in answer.json()["error"]["message"] and "incident 42" in answer.json()["error"]["message"]
    rolled = post(app.client, "/promotions/rollback", {"proposal_id": active["proposal_id"], "reason": "bad"}, 200)
    assert rolled["state"] == "rolled_back"

    resumed = post(app.client, "/resume", {"tenant_id": "acme", "reason": "fixed"}, 200)
    assert resumed["stopped"] is False and resumed["position"] > stopped["position"]
    assert post(app.client, "/promotions/activate", {"proposal_id": waiting["proposal_id"]}, 200)["state"] == "active"


def test_bad_freezes_are_refused_and_change_nothing(app: InProcess) -> None:
    client = app.client
    refused(client, "/freezes", {"tenant_id": "acme", "reason": "r"}, 422, "invalid_input")
    refused(client, "/freezes", {"tenant_id": "acme", "ends_at": "tomorrow", "reason": "r"}, 422, "invalid_input")
    refused(client, "/freezes", {"tenant_id": "acme", "ends_at": moment(hours=-1), "reason": "r"}, 422, "invalid_input")
    naive = datetime.now() + timedelta(hours=1)
    refused(
        client, "/freezes", {"tenant_id": "acme", "ends_at": naive.isoformat(), "reason": "r"}, 422, "invalid_input"
    )
    assert client.delete(f"{LEARNING}/freezes/not-a-freeze", params={"reason": "r"}).status_code == 404
    declared = freeze(app)
    assert client.delete(f"{LEARNING}/freezes/{declared['freeze_id']}").status_code == 422  # a reason is required
    first = client.delete(f"{LEARNING}/freezes/{declared['freeze_id']}", params={"reason": "done"})
    assert first.status_code == 200
    assert client.delete(f"{LEARNING}/freezes/{declared['freeze_id']}", params={"reason": "again"}).status_code == 409
    assert client.get(f"{LEARNING}/freezes").status_code == 422  # tenant_id is required


def test_the_policy_stream_holds_who_did_what(app: InProcess) -> None:
    declared = freeze(app)
    post(app.client, "/stop", {"tenant_id": "acme", "reason": "incident"}, 200, **{"X-Actor": "oncall"})
    app.client.delete(f"{LEARNING}/freezes/{declared['freeze_id']}", params={"reason": "over"})
    policy = app.system.engine.policy.policy_state("acme")
    assert policy is not None and policy.stop is not None and policy.stop.stopped_by == "oncall"
    assert policy.freezes[0].declared_by == "ops-lead" and policy.freezes[0].lift_reason == "over"


def test_a_critical_change_needs_two_humans_and_never_its_proposer(app: InProcess) -> None:
    replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
    body = propose_body(replay["replay_id"], risk="critical")
    proposal = post(app.client, "/promotions/propose", body, 201, **{"X-Actor": "bob"})
    pid = proposal["proposal_id"]

    app.write_approval(proposal, approvers=[{"id": "bob", "kind": "human"}, {"id": "alice", "kind": "human"}])
    checked = post(app.client, "/promotions/approve-check", {"proposal_id": pid}, 200)
    assert (checked["state"], checked["approval_outcome"]) == ("replay_validated", "insufficient_approver")
    assert any("proposer bob" in reason for reason in checked["reasons"])

    app.write_approval(proposal, approvers=[{"id": "alice", "kind": "human"}, {"id": "carol", "kind": "human"}])
    checked = post(app.client, "/promotions/approve-check", {"proposal_id": pid}, 200)
    assert (checked["state"], checked["approval_outcome"]) == ("approved", "approved")
    history = app.client.get(f"{LEARNING}/proposals/{pid}/history").json()
    granted = history["events"][-1]["payload"]["approval"]
    assert granted["approvers"] == [{"id": "alice", "kind": "human"}, {"id": "carol", "kind": "human"}]


def test_the_quorum_is_a_setting(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path, approval_quorum_high=2) as app:
        replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
        proposal = post(app.client, "/promotions/propose", propose_body(replay["replay_id"], risk="high"), 201)
        app.write_approval(proposal)  # one human
        checked = post(app.client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)
        assert checked["approval_outcome"] == "insufficient_approver"


def active_proposal(
    app: InProcess, accuracy: float = 0.86, target: dict[str, str] = TARGET, **propose: Any
) -> dict[str, Any]:
    body = replay_body(FAMILIES, target=target)
    body["metrics"]["candidate"]["accuracy"] = accuracy
    replay = post(app.client, "/replay/evaluate", body, 201)
    proposal = post(app.client, "/promotions/propose", propose_body(replay["replay_id"], target=target, **propose), 201)
    app.write_approval(proposal)
    post(app.client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)
    post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
    return proposal


def observe(app: InProcess, proposal: dict[str, Any], status: int = 200, **metrics: float) -> dict[str, Any]:
    return post(app.client, "/promotions/observe", {"proposal_id": proposal["proposal_id"], "metrics": metrics}, status)


def test_a_healthy_observation_changes_nothing_but_the_history(app: InProcess) -> None:
    proposal = active_proposal(app)
    # latency only a little better than the baseline: short of nothing, regressed in nothing
    seen = observe(app, proposal, accuracy=0.82, latency_ms=119)
    assert seen["verdict"] == "healthy" and seen["rolled_back"] is False
    assert {r["name"]: r["regressed"] for r in seen["metric_results"]} == {"accuracy": False, "latency_ms": False}
    history = app.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}/history").json()
    assert history["events"][-1]["type"] == "Observed" and history["events"][-1]["state_after"] == "active"


def test_a_veto_regression_rolls_back_at_once_and_the_baseline_is_live(app: InProcess) -> None:
    proposal = active_proposal(app)
    seen = observe(app, proposal, accuracy=0.70, latency_ms=100)
    assert seen["verdict"] == "regressed" and seen["rolled_back"] is True
    history = app.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}/history").json()
    last = history["events"][-1]
    assert (last["type"], last["actor"], last["state_after"]) == ("RolledBack", "dobby:watch", "rolled_back")
    assert "accuracy" in last["payload"]["reason"] and "0.8" in last["payload"]["reason"]
    observe(app, proposal, 409, accuracy=0.9, latency_ms=100)  # no longer active
    app.catch_up()
    read = app.client.get(f"{LEARNING}/targets/{TARGET['type']}/{TARGET['id']}", params={"tenant_id": "acme"})
    assert read.status_code == 200, read.text
    assert read.json()["live"] == proposal["baseline"] and read.json()["source"] == "baseline"
    assert metric(app.client, "dobby_auto_rollbacks_total") == 1


def test_a_proposal_may_opt_out_of_the_automatic_rollback(app: InProcess) -> None:
    proposal = active_proposal(app, auto_rollback=False)
    seen = observe(app, proposal, accuracy=0.70, latency_ms=300)
    assert seen["verdict"] == "regressed" and seen["rolled_back"] is False
    assert app.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}/explain").json()["state"] == "active"


def test_observations_are_refused_when_they_cannot_be_judged(app: InProcess) -> None:
    proposal = active_proposal(app)
    answer = refused(
        app.client,
        "/promotions/observe",
        {"proposal_id": proposal["proposal_id"], "metrics": {"accuracy": 0.9}},
        422,
        "missing_metric",
    )
    assert answer.json()["error"]["details"][0]["field"] == "metrics.latency_ms"
    waiting = approved(app, 0.91)
    refused(
        app.client,
        "/promotions/observe",
        {"proposal_id": waiting["proposal_id"], "metrics": {"accuracy": 0.9, "latency_ms": 1}},
        409,
        "invalid_state",
    )


def test_the_decision_queue_names_what_each_proposal_waits_on(app: InProcess) -> None:
    client = app.client
    pending_body = replay_body(FAMILIES)
    pending_body["metrics"]["candidate"]["accuracy"] = 0.95
    replay = post(client, "/replay/evaluate", pending_body, 201)
    waiting_approval = post(client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
    post(client, "/promotions/approve-check", {"proposal_id": waiting_approval["proposal_id"]}, 200)  # pending
    live = active_proposal(app)  # on TARGET
    blocked_by_conflict = approved(app, 0.93)  # the same target: conflict
    regressed = active_proposal(app, 0.87, target={"type": "prompt_template", "id": "second"})
    observe(app, regressed, accuracy=0.5, latency_ms=100)  # rolled back by dobby:watch
    freeze(app, targets="prompt_template:*")
    app.catch_up()

    answer = client.get(f"{LEARNING}/decisions", params={"tenant_id": "acme"})
    assert answer.status_code == 200, answer.text
    items = {item["proposal_id"]: item for item in answer.json()["items"]}
    assert items[waiting_approval["proposal_id"]]["waiting_on"] == "approval"
    assert "approval pending" in items[waiting_approval["proposal_id"]]["reasons"]
    conflict = items[blocked_by_conflict["proposal_id"]]
    assert conflict["waiting_on"] == "activation" and conflict["state"] == "approved"
    assert any(r.startswith("not_frozen") for r in conflict["reasons"])
    assert any(r.startswith("target_free") and live["proposal_id"] in r for r in conflict["reasons"])
    review = items[regressed["proposal_id"]]
    assert (review["waiting_on"], review["state"]) == ("review", "rolled_back") and "accuracy" in review["reasons"][0]
    assert live["proposal_id"] not in items  # active and healthy: waits on nobody
    sinces = [item["since"] for item in answer.json()["items"]]
    assert sinces == sorted(sinces, reverse=True)
    first = client.get(f"{LEARNING}/decisions", params={"tenant_id": "acme", "limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"] == "1"
    assert client.get(f"{LEARNING}/decisions", params={"tenant_id": "other"}).json()["items"] == []
    assert client.get(f"{LEARNING}/decisions").status_code == 422


def test_a_stop_during_a_scheduled_activation_skips_it_then_resume_lets_it_fire(app: InProcess) -> None:
    proposal = approved(app)
    pid = proposal["proposal_id"]
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    scheduled = post(app.client, "/promotions/activate", {"proposal_id": pid, "not_before": soon}, 202)
    assert scheduled["state"] == "approved" and scheduled["scheduled_for"]
    post(app.client, "/stop", {"tenant_id": "acme", "reason": "incident"}, 200)

    def tick() -> int:
        app.catch_up()
        return app.system.expiry.tick()

    def skipped_once() -> bool:
        tick()
        events = app.client.get(f"{LEARNING}/proposals/{pid}/history").json()["events"]
        return any(e["type"] == "ActivationSkipped" for e in events)

    assert eventually(skipped_once)  # not_before is a second away
    history = app.client.get(f"{LEARNING}/proposals/{pid}/history").json()["events"]
    skipped = [e for e in history if e["type"] == "ActivationSkipped"]
    assert [f["guard"] for f in skipped[0]["payload"]["failed"]] == ["not_frozen"]
    post(app.client, "/resume", {"tenant_id": "acme", "reason": "over"}, 200)
    tick()
    history = app.client.get(f"{LEARNING}/proposals/{pid}/history").json()["events"]
    assert (history[-1]["type"], history[-1]["actor"]) == ("Activated", "dobby:scheduler")
    assert len([e for e in history if e["type"] == "ActivationSkipped"]) == 1


def test_the_decision_queue_names_a_schedule_held_back_by_a_freeze(app: InProcess) -> None:
    proposal = approved(app)
    pid = proposal["proposal_id"]
    freeze(app, targets="prompt_template:*")
    post(app.client, "/promotions/activate", {"proposal_id": pid, "not_before": moment(seconds=1)}, 202)

    def skipped() -> bool:
        app.catch_up()
        app.system.expiry.tick()
        events = app.client.get(f"{LEARNING}/proposals/{pid}/history").json()["events"]
        return any(e["type"] == "ActivationSkipped" for e in events)

    assert eventually(skipped)
    app.catch_up()
    items = app.client.get(f"{LEARNING}/decisions", params={"tenant_id": "acme"}).json()["items"]
    reasons = next(item["reasons"] for item in items if item["proposal_id"] == pid)
    assert any(r.startswith("not_frozen") for r in reasons), reasons
    assert any(r.startswith("scheduled") for r in reasons), reasons
