"""The whole lifecycle over HTTP (the app in-process through httpx.ASGITransport), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import (
    FAMILIES,
    LEARNING,
    TARGET,
    InProcess,
    approved,
    intake_body,
    metric,
    post,
    propose_body,
    replay_body,
    serve_in_process,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


def test_whole_lifecycle(app: InProcess) -> None:
    client = app.client
    run = post(client, "/signals/intake", intake_body(FAMILIES), 201, **{"X-Actor": "collector"})
    again = post(client, "/signals/intake", intake_body(FAMILIES), 200)
    assert again["duplicate"] is True and again["run_id"] == run["run_id"]
    app.catch_up()
    stored = client.get(f"{LEARNING}/runs/{run['run_id']}", params={"min_position": run["position"]}).json()
    assert stored["run_hash"] == run["run_hash"] and stored["learning_signal"] is True

    replay = post(client, "/replay/evaluate", replay_body(FAMILIES, run_ids=[run["run_id"]]), 201)
    assert replay["verdict"] == "passed" and replay["budget"]["remaining"] == 19
    proposal = post(client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
    pid = proposal["proposal_id"]
    assert proposal["state"] == "generated" and proposal["approval_requirement"] == "human"

    pending = post(client, "/promotions/approve-check", {"proposal_id": pid}, 200)
    assert (pending["state"], pending["approval_outcome"]) == ("replay_validated", "pending")
    app.write_approval(proposal)
    checked = post(client, "/promotions/approve-check", {"proposal_id": pid}, 200)
    assert (checked["state"], checked["approval_outcome"]) == ("approved", "approved")

    explained = client.get(f"{LEARNING}/proposals/{pid}/explain").json()
    assert explained["can_activate"] is True and len(explained["guards"]) == 7  # SPEC §4.6 and §12
    active = post(client, "/promotions/activate", {"proposal_id": pid}, 200, **{"X-Actor": "operator-1"})
    assert active["state"] == "active"
    rolled = post(client, "/promotions/rollback", {"proposal_id": pid, "reason": "worse"}, 200)
    assert rolled["state"] == "rolled_back" and rolled["restored_baseline"] == proposal["baseline"]

    history = client.get(f"{LEARNING}/proposals/{pid}/history").json()
    assert history["chain_valid"] is True
    assert [e["type"] for e in history["events"]] == [
        "Generated",
        "ReplayValidated",
        "ApprovalChecked",
        "Approved",
        "Activated",
        "RolledBack",
    ]
    assert history["events"][4]["actor"] == "operator-1"
    as_of = client.get(f"{LEARNING}/proposals/{pid}/history", params={"as_of_version": 4}).json()
    assert as_of["as_of"]["state"] == "approved" and len(as_of["events"]) == 4

    app.catch_up()
    view = client.get(f"{LEARNING}/proposals/{pid}", params={"min_position": rolled["position"]}).json()
    assert view["state"] == "rolled_back"
    listed = client.get(f"{LEARNING}/proposals", params={"state": "rolled_back", "min_position": rolled["position"]})
    assert [p["proposal_id"] for p in listed.json()["items"]] == [pid] and listed.json()["next_cursor"] is None

    app.flush_tallies()
    assert metric(client, 'dobby_intake_total{result="accepted"}') == 1
    assert metric(client, 'dobby_intake_total{result="duplicate"}') == 1
    assert metric(client, 'dobby_proposal_transitions_total{to="active"}') == 1
    assert metric(client, 'dobby_effective_mode{mode="promotion_enabled"}') == 1
    assert "dobby_http_request_duration_seconds_bucket" in client.get("/metrics").text
    assert [json.loads(line)["proposal_id"] for line in app.bobbin.read_text().splitlines()] == [pid]


def test_records_and_counters_survive_a_restart(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path) as first:
        proposal = approved(first)
        last = post(first.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
        first.catch_up()
        before = (
            first.client.get("/metrics").text,
            first.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}").json(),
        )
    with serve_in_process(database_url, tmp_path) as second:
        after = second.client.get(
            f"{LEARNING}/proposals/{proposal['proposal_id']}", params={"min_position": last["position"]}
        )
        assert after.json() == before[1]
        assert metric(second.client, 'dobby_proposal_transitions_total{to="active"}') == 1
        assert metric(second.client, 'dobby_intake_total{result="accepted"}') == 0
        assert 'dobby_proposal_transitions_total{to="approved"} 1.0' in before[0]


def test_service_surface(app: InProcess) -> None:
    client = app.client
    assert client.get("/health").json() == {"status": "ok", "service": "jhf-dobby"}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["persistence"]["reachable"] is True
    assert set(ready["projections"]) == {"runs", "replays", "proposals", "counters", "targets", "merkle", "bobbin"}
    assert all(runner["failing"] is None for runner in ready["projections"].values())
    assert client.get("/version").json()["effective_mode"] == "promotion_enabled"
    assert client.get("/fabric-manifest.json").json()["capability_class"] == "adaptive_learning"
    contract = client.get("/api/v1/contract").json()
    assert contract["aligned"] is True and "prompt_template" in contract["target_types"]
    document = client.get("/openapi.json").json()
    assert f"{LEARNING}/promotions/activate" in document["paths"]
    assert client.get("/health").headers["x-request-id"]
    assert client.get("/health", headers={"X-Request-ID": "abc"}).headers["x-request-id"] == "abc"
    assert TARGET["type"] in contract["target_types"]
