"""Every refusal of SPEC §4 over HTTP, with its status and error code; nothing is stored for any of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    FAMILIES,
    LEARNING,
    InProcess,
    approved,
    error_codes,
    intake_body,
    metric,
    post,
    propose_body,
    refused,
    replay_body,
    serve_in_process,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


@pytest.fixture
def strict(database_url: str, tmp_path: Path) -> Iterator[InProcess]:
    fabric = tmp_path / "fabric.json"
    fabric.write_text(
        json.dumps(
            {
                "capability_class": "adaptive_learning",
                "families": FAMILIES,
                "target_types": ["prompt_template", "routing_rule"],
                "no_learn_zones": ["prompt_template:secret*"],
                "readiness": {"status": "green"},
            }
        )
    )
    with serve_in_process(
        database_url, tmp_path, fabric_file=fabric, replay_budget=3, promotion_velocity_max=1
    ) as running:
        yield running


def test_transport_level_refusals(strict: InProcess) -> None:
    client = strict.client
    intake = f"{LEARNING}/signals/intake"
    malformed = client.post(intake, content=b'{"tenant_id": ', headers={"content-type": "application/json"})
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "malformed_json")
    nan = client.post(intake, content=b'{"x": NaN}', headers={"content-type": "application/json"})
    assert nan.status_code == 400
    wrong_type = client.post(intake, content=b"tenant_id=x", headers={"content-type": "text/plain"})
    assert (wrong_type.status_code, wrong_type.json()["error"]["code"]) == (415, "unsupported_media_type")
    huge = client.post(
        intake, content=b'{"a":"' + b"x" * (1024 * 1024 + 10) + b'"}', headers={"content-type": "application/json"}
    )
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "body_too_large")
    assert client.get("/nowhere").status_code == 404
    assert client.get(intake).status_code == 405
    assert client.post(intake, content=b"[1]", headers={"content-type": "application/json"}).status_code == 422


def test_intake_rules(strict: InProcess) -> None:
    client = strict.client
    body = intake_body(
        FAMILIES,
        guardrail_decision="BLOCK",
        security_critical=True,
        steps=[{"name": "s", "classification": "security_critical"}],
    )
    answer = refused(client, "/signals/intake", body, 422, "tenant_inconsistent", headers={"X-Tenant-ID": "x"})
    assert sorted(error_codes(answer)) == [
        "guardrail_blocked",
        "security_critical",
        "security_critical",
        "tenant_inconsistent",
    ]
    shape = refused(client, "/signals/intake", {"tenant_id": "t", "surprise": 1}, 422, "invalid_input")
    assert [d.get("field") for d in shape.json()["error"]["details"]] == ["surprise"]


def test_replay_rules_and_budget(strict: InProcess) -> None:
    client = strict.client
    body = replay_body(
        FAMILIES,
        target={"type": "weight_training_candidate", "id": "w"},
        run_ids=["00000000-0000-0000-0000-000000000000"],
    )
    body["threshold_contract"]["veto"] = ["nope"]
    del body["metrics"]["baseline"]["accuracy"]
    answer = refused(client, "/replay/evaluate", body, 422, "weight_training_forbidden")
    assert sorted(error_codes(answer)) == [
        "missing_metric",
        "unknown_run",
        "unknown_veto_metric",
        "weight_training_forbidden",
    ]
    refused(
        client,
        "/replay/evaluate",
        replay_body(FAMILIES, target={"type": "tool_policy", "id": "t"}),
        422,
        "target_not_permitted",
    )
    for accuracy in (0.81, 0.82, 0.83):
        body = replay_body(FAMILIES)
        body["metrics"]["candidate"]["accuracy"] = accuracy
        post(client, "/replay/evaluate", body, 201)
    body = replay_body(FAMILIES)
    body["metrics"]["candidate"]["accuracy"] = 0.84
    exhausted = refused(client, "/replay/evaluate", body, 422, "replay_budget_exhausted")
    assert int(exhausted.headers["retry-after"]) > 0


def test_proposal_and_lifecycle_refusals(strict: InProcess) -> None:
    client = strict.client
    rejected = post(client, "/replay/evaluate", replay_body(FAMILIES, workload_similar=False), 201)
    refused(client, "/promotions/propose", propose_body(rejected["replay_id"]), 422, "replay_not_passed")
    secret = {"type": "prompt_template", "id": "secret-prompt"}
    secret_replay = post(client, "/replay/evaluate", replay_body(FAMILIES, target=secret), 201)
    refused(
        client, "/promotions/propose", propose_body(secret_replay["replay_id"], target=secret), 422, "no_learn_zone"
    )
    proposal = approved(strict, 0.9)
    pid = proposal["proposal_id"]
    again = post(client, "/promotions/propose", propose_body(proposal["replay_id"]), 200)
    assert again["duplicate"] is True
    refused(client, "/promotions/propose", propose_body(proposal["replay_id"], risk="low"), 409, "conflict")
    refused(client, "/promotions/approve-check", {"proposal_id": pid}, 409, "invalid_state")
    refused(client, "/promotions/rollback", {"proposal_id": pid, "reason": "x"}, 409, "invalid_state")
    refused(client, "/promotions/activate", {"proposal_id": "00000000-0000-0000-0000-000000000000"}, 404, "not_found")
    post(client, "/promotions/activate", {"proposal_id": pid}, 200)
    refused(client, "/promotions/activate", {"proposal_id": pid}, 409, "invalid_state")
    other = {"type": "routing_rule", "id": "r1"}
    replay = post(client, "/replay/evaluate", replay_body(FAMILIES, target=other), 201)
    second = post(client, "/promotions/propose", propose_body(replay["replay_id"], target=other), 201)
    strict.write_approval(second)
    post(client, "/promotions/approve-check", {"proposal_id": second["proposal_id"]}, 200)
    velocity = refused(
        client, "/promotions/activate", {"proposal_id": second["proposal_id"]}, 422, "velocity_breaker_open"
    )
    assert int(velocity.headers["retry-after"]) > 3000
    strict.flush_tallies()
    assert metric(client, 'dobby_activation_denials_total{reason="velocity_breaker_open"}') == 2


def test_approval_stale_and_revalidation(strict: InProcess) -> None:
    client = strict.client
    replay = post(client, "/replay/evaluate", replay_body(FAMILIES), 201)
    proposal = post(client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
    strict.write_approval(proposal, expires_at="2000-01-01T00:00:00Z")
    checked = post(client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)
    assert (checked["state"], checked["approval_outcome"]) == ("blocked", "expired")
    drifted = dict(FAMILIES)
    drifted["runtime.traces"] = "7.0"
    verdict = post(client, "/replay/evaluate", replay_body(drifted), 201)
    assert verdict["verdict"] == "revalidate_required"


def test_read_refusals(strict: InProcess) -> None:
    client = strict.client
    unknown = client.get(f"{LEARNING}/proposals/00000000-0000-0000-0000-000000000000")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    assert client.get(f"{LEARNING}/runs/not-a-run").status_code == 404
    beyond = client.get(f"{LEARNING}/runs", params={"min_position": 10**9})
    assert (beyond.status_code, beyond.json()["error"]["details"][0]["field"]) == (422, "min_position")
    bad = client.get(f"{LEARNING}/proposals", params={"limit": 0, "min_position": "x"})
    assert bad.status_code == 422
    bad_list = client.get(f"{LEARNING}/proposals", params={"limit": 9999})
    assert bad_list.status_code == 422 and bad_list.json()["error"]["details"][0]["field"] == "limit"
    history = client.get(
        f"{LEARNING}/proposals/00000000-0000-0000-0000-000000000000/history", params={"as_of": "yesterday"}
    )
    assert history.status_code == 422


def test_a_read_waits_for_its_position_then_answers_projection_lagging(app: InProcess) -> None:
    run = post(app.client, "/signals/intake", intake_body(FAMILIES), 201)
    read = f"{LEARNING}/runs/{run['run_id']}"
    lagging = app.client.get(read, params={"min_position": run["position"]})
    assert (lagging.status_code, lagging.json()["error"]["code"]) == (503, "projection_lagging")
    assert lagging.headers["retry-after"] == "1"
    assert app.client.get(read).status_code == 404
    app.catch_up()
    assert app.client.get(read, params={"min_position": run["position"]}).json()["run_id"] == run["run_id"]
