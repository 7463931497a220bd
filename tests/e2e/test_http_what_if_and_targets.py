"""What-if (SPEC §4.3a) and the live target read (SPEC §4.1) over HTTP, the app in-process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dobby.engine.rules.modes import Mode
from tests.support import (
    FAMILIES,
    LEARNING,
    TARGET,
    InProcess,
    approved,
    head_position,
    post,
    replay_body,
    serve_in_process,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
STRICTER = {
    "mode": "all",
    "metrics": {
        "accuracy": {"direction": "increase", "min_improvement": 0.1},
        "latency_ms": {"direction": "decrease"},
    },
}


def target_read(app: InProcess, tenant: str = "acme", **params: str) -> dict[str, object]:
    answer = app.client.get(
        f"{LEARNING}/targets/{TARGET['type']}/{TARGET['id']}", params={"tenant_id": tenant, **params}
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, object] = answer.json()
    return result


def test_every_metric_result_carries_flip_at(app: InProcess) -> None:
    replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
    flips = {r["name"]: r["flip_at"] for r in replay["metric_results"]}
    assert flips == pytest.approx({"accuracy": 0.80, "latency_ms": 120})
    app.catch_up()
    stored = app.client.get(f"{LEARNING}/replays/{replay['replay_id']}").json()
    assert [r["flip_at"] for r in stored["metric_results"]] == [r["flip_at"] for r in replay["metric_results"]]


def test_what_if_flips_a_verdict_without_storing_or_spending_anything(app: InProcess) -> None:
    replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
    app.catch_up()
    before = head_position(app.client)
    body = {"threshold_contract": STRICTER}
    answer = post(app.client, f"/replays/{replay['replay_id']}/what-if", body, 200)
    assert answer["replay_id"] == replay["replay_id"]
    assert answer["stored"] == {"verdict": "passed", "reasons": []}
    assert answer["what_if"]["verdict"] == "rejected" and answer["what_if"]["reasons"] == ["not_passed:accuracy"]
    assert answer["verdict_changed"] is True
    assert answer["flips"] == [{"name": "accuracy", "stored_passed": True, "what_if_passed": False}]
    assert {r["name"] for r in answer["what_if"]["metric_results"]} == {"accuracy", "latency_ms"}
    dissimilar = post(app.client, f"/replays/{replay['replay_id']}/what-if", {**body, "workload_similar": False}, 200)
    assert dissimilar["what_if"]["reasons"] == ["workload_dissimilar"]
    assert head_position(app.client) == before
    again = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 200)
    assert again["budget"]["remaining"] == replay["budget"]["remaining"]


def test_what_if_refuses_what_evaluate_refuses_in_the_contract(app: InProcess) -> None:
    replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
    contract = {"mode": "all", "metrics": {"recall": {"direction": "increase"}}, "veto": ["accuracy"]}
    answer = app.client.post(f"{LEARNING}/replays/{replay['replay_id']}/what-if", json={"threshold_contract": contract})
    assert answer.status_code == 422
    codes = [(d["code"], d.get("field")) for d in answer.json()["error"]["details"]]
    assert ("missing_metric", "threshold_contract.metrics.recall") in codes
    assert ("unknown_veto_metric", "threshold_contract.veto[0]") in codes
    unknown = app.client.post(
        f"{LEARNING}/replays/{'0' * 8}-0000-0000-0000-{'0' * 12}/what-if", json={"threshold_contract": STRICTER}
    )
    assert unknown.status_code == 404
    extra = app.client.post(
        f"{LEARNING}/replays/{replay['replay_id']}/what-if", json={"threshold_contract": STRICTER, "x": 1}
    )
    assert extra.status_code == 422


def test_target_read_follows_activation_and_rollback(app: InProcess) -> None:
    never = target_read(app)
    assert never["source"] == "none" and never["live"] is None and never["active_proposal_id"] is None
    proposal = approved(app)
    active = post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
    app.catch_up()
    live = target_read(app, min_position=str(active["position"]))
    assert live["source"] == "proposal" and live["live"] == proposal["change"]
    assert live["active_proposal_id"] == proposal["proposal_id"] and live["revalidate_required"] is False
    assert proposal["position"] < live["position"] <= active["position"] and live["tenant_id"] == "acme"
    assert live["target"] == TARGET and isinstance(live["updated_at"], str)
    rolled = post(app.client, "/promotions/rollback", {"proposal_id": proposal["proposal_id"], "reason": "worse"}, 200)
    app.catch_up()
    restored = target_read(app)
    assert restored["source"] == "baseline" and restored["live"] == proposal["baseline"]
    assert restored["active_proposal_id"] is None and active["position"] < restored["position"] <= rolled["position"]
    assert target_read(app, tenant="globex")["source"] == "none"


def test_target_read_flags_an_active_proposal_that_needs_revalidation(app: InProcess) -> None:
    proposal = approved(app)
    post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
    post(app.client, "/replay/evaluate", replay_body({**FAMILIES, "new_family": "9"}), 201)
    app.catch_up()
    assert target_read(app)["revalidate_required"] is True


def test_target_read_needs_a_tenant(app: InProcess) -> None:
    answer = app.client.get(f"{LEARNING}/targets/prompt_template/greeting")
    assert answer.status_code == 422 and answer.json()["error"]["details"][0]["field"] == "tenant_id"


def test_target_ids_may_hold_slashes(app: InProcess) -> None:
    answer = app.client.get(f"{LEARNING}/targets/routing_rule/eu/west/1", params={"tenant_id": "acme"})
    assert answer.status_code == 200 and answer.json()["target"] == {"type": "routing_rule", "id": "eu/west/1"}


@pytest.mark.backends(["sqlite"])
def test_roles_and_tenants_of_what_if_and_the_target_read(database_url: str, tmp_path: Path) -> None:
    tokens = [
        {"name": "admin", "sha256": hashlib.sha256(b"admin").hexdigest(), "tenants": "*", "roles": ["submitter"]},
        {"name": "prop", "sha256": hashlib.sha256(b"prop").hexdigest(), "tenants": "*", "roles": ["proposer"]},
        {"name": "other", "sha256": hashlib.sha256(b"other").hexdigest(), "tenants": ["globex"], "roles": ["auditor"]},
    ]
    (tmp_path / "tokens.json").write_text(json.dumps(tokens))
    with serve_in_process(database_url, tmp_path, api_tokens_file=tmp_path / "tokens.json") as app:
        admin = {"Authorization": "Bearer admin"}
        replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201, **admin)
        path = f"{LEARNING}/replays/{replay['replay_id']}/what-if"
        body = {"threshold_contract": STRICTER}
        assert app.client.post(path, json=body, headers=admin).status_code == 200
        assert app.client.post(path, json=body, headers={"Authorization": "Bearer prop"}).status_code == 403
        hidden = app.client.post(path, json=body, headers={"Authorization": "Bearer other"})
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"  # as if unknown (§8)
        assert app.client.post(path, json=body).status_code == 401
        read = f"{LEARNING}/targets/prompt_template/greeting"
        assert (
            app.client.get(read, params={"tenant_id": "acme"}, headers={"Authorization": "Bearer prop"}).status_code
            == 200
        )
        assert (
            app.client.get(read, params={"tenant_id": "acme"}, headers={"Authorization": "Bearer other"}).status_code
            == 403
        )


def test_what_if_is_refused_only_in_warmup(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path, service_mode=Mode.observe_only) as app:
        replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
        post(app.client, f"/replays/{replay['replay_id']}/what-if", {"threshold_contract": STRICTER}, 200)
