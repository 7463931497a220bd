"""Every refusal of SPEC §4 over HTTP, with its status and error code; nothing is stored for any of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Client, Served, serve_in_process
from tests.e2e.test_http_lifecycle import FAMILIES, LEARNING, approved, post, write_approval
from tests.support import eventually, intake_body, propose_body, replay_body

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


@pytest.fixture
def strict_server(database_url: str, tmp_path: Path) -> Iterator[Served]:
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
        database_url, tmp_path, DOBBY_FABRIC_FILE=str(fabric), DOBBY_REPLAY_BUDGET="3", DOBBY_PROMOTION_VELOCITY_MAX="1"
    ) as running:
        yield running


def codes(answer: httpx.Response) -> list[str]:
    return [detail["code"] for detail in answer.json()["error"]["details"]]


def position(client: Client) -> int:
    ready = client.get("/ready").json()
    return max((p["position"] + p["lag"] for p in ready["projections"].values()), default=0)


def refused(client: Client, path: str, body: Any, status: int, code: str, **kwargs: Any) -> httpx.Response:
    before = position(client)
    answer = client.post(f"{LEARNING}{path}", json=body, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code, answer.text
    assert position(client) == before, "a refused request stored something"
    return answer


def test_transport_level_refusals(strict_server: Served) -> None:
    with strict_server.client() as client:
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


def test_intake_rules(strict_server: Served) -> None:
    with strict_server.client() as client:
        body = intake_body(
            FAMILIES,
            guardrail_decision="BLOCK",
            security_critical=True,
            steps=[{"name": "s", "classification": "security_critical"}],
        )
        answer = refused(client, "/signals/intake", body, 422, "tenant_inconsistent", headers={"X-Tenant-ID": "x"})
        assert sorted(codes(answer)) == [
            "guardrail_blocked",
            "security_critical",
            "security_critical",
            "tenant_inconsistent",
        ]
        shape = refused(client, "/signals/intake", {"tenant_id": "t", "surprise": 1}, 422, "invalid_input")
        assert [d.get("field") for d in shape.json()["error"]["details"]] == ["surprise"]


def test_replay_rules_and_budget(strict_server: Served) -> None:
    with strict_server.client() as client:
        body = replay_body(
            FAMILIES,
            target={"type": "weight_training_candidate", "id": "w"},
            run_ids=["00000000-0000-0000-0000-000000000000"],
        )
        body["threshold_contract"]["veto"] = ["nope"]
        del body["metrics"]["baseline"]["accuracy"]
        answer = refused(client, "/replay/evaluate", body, 422, "weight_training_forbidden")
        assert sorted(codes(answer)) == [
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


def test_proposal_and_lifecycle_refusals(strict_server: Served) -> None:
    with strict_server.client() as client:
        rejected = post(client, "/replay/evaluate", replay_body(FAMILIES, workload_similar=False), 201)
        refused(client, "/promotions/propose", propose_body(rejected["replay_id"]), 422, "replay_not_passed")
        secret = {"type": "prompt_template", "id": "secret-prompt"}
        secret_replay = post(client, "/replay/evaluate", replay_body(FAMILIES, target=secret), 201)
        refused(
            client, "/promotions/propose", propose_body(secret_replay["replay_id"], target=secret), 422, "no_learn_zone"
        )
        proposal = approved(client, strict_server, 0.9)
        pid = proposal["proposal_id"]
        again = post(client, "/promotions/propose", propose_body(proposal["replay_id"]), 200)
        assert again["duplicate"] is True
        refused(client, "/promotions/propose", propose_body(proposal["replay_id"], risk="low"), 409, "conflict")
        refused(client, "/promotions/approve-check", {"proposal_id": pid}, 409, "invalid_state")
        refused(client, "/promotions/rollback", {"proposal_id": pid, "reason": "x"}, 409, "invalid_state")
        refused(
            client, "/promotions/activate", {"proposal_id": "00000000-0000-0000-0000-000000000000"}, 404, "not_found"
        )
        post(client, "/promotions/activate", {"proposal_id": pid}, 200)
        refused(client, "/promotions/activate", {"proposal_id": pid}, 409, "invalid_state")
        other = {"type": "routing_rule", "id": "r1"}
        replay = post(client, "/replay/evaluate", replay_body(FAMILIES, target=other), 201)
        second = post(client, "/promotions/propose", propose_body(replay["replay_id"], target=other), 201)
        write_approval(strict_server, second)
        post(client, "/promotions/approve-check", {"proposal_id": second["proposal_id"]}, 200)
        velocity = refused(
            client, "/promotions/activate", {"proposal_id": second["proposal_id"]}, 422, "velocity_breaker_open"
        )
        assert int(velocity.headers["retry-after"]) > 3000
        denials = 'dobby_activation_denials_total{reason="velocity_breaker_open"} 2.0'
        assert eventually(lambda: denials in client.get("/metrics").text), [  # the tallies flush within 1 s
            line for line in client.get("/metrics").text.splitlines() if "denial" in line
        ]


def test_approval_stale_and_revalidation(strict_server: Served) -> None:
    with strict_server.client() as client:
        replay = post(client, "/replay/evaluate", replay_body(FAMILIES), 201)
        proposal = post(client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
        write_approval(strict_server, proposal, expires_at="2000-01-01T00:00:00Z")
        checked = post(client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)
        assert (checked["state"], checked["approval_outcome"]) == ("blocked", "expired")
        drifted = dict(FAMILIES)
        drifted["runtime.traces"] = "7.0"
        verdict = post(client, "/replay/evaluate", replay_body(drifted), 201)
        assert verdict["verdict"] == "revalidate_required"


def test_read_refusals(strict_server: Served) -> None:
    with strict_server.client() as client:
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


def test_a_read_waits_for_its_position_then_answers_projection_lagging(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path, "--no-background") as frozen, frozen.client() as client:
        run = post(client, "/signals/intake", intake_body(FAMILIES), 201)
        lagging = client.get(f"{LEARNING}/runs/{run['run_id']}", params={"min_position": run["position"]})
        assert (lagging.status_code, lagging.json()["error"]["code"]) == (503, "projection_lagging")
        assert lagging.headers["retry-after"] == "1"
        assert client.get(f"{LEARNING}/runs/{run['run_id']}").status_code == 404
