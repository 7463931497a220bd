"""dobby served against real loopback Fabric, Warp and Shuttle servers: it follows them and fails closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.upstream_server import FABRIC_ROUTES, Upstream, upstream_server
from tests.support import (
    FAMILIES,
    LEARNING,
    InProcess,
    intake_body,
    post,
    propose_body,
    refused,
    replay_body,
    serve_in_process,
    warp_approval,
)

pytestmark = pytest.mark.backends(["sqlite"])


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[tuple[InProcess, Upstream, Upstream, Upstream]]:
    with upstream_server(dict(FABRIC_ROUTES)) as fabric, upstream_server() as warp, upstream_server() as shuttle:
        fabric.routes["/api/v1/contracts/matrix"] = {
            **FABRIC_ROUTES["/api/v1/contracts/matrix"],
            "target_types": ["prompt_template", "routing_rule"],
        }
        settings: dict[str, Any] = {
            "fabric_url": fabric.url,
            "warp_url": warp.url,
            "warp_token": "warp-secret",
            "warp_timeout_ms": 300,
            "shuttle_url": shuttle.url,
            "shuttle_timeout_ms": 200,
        }
        with serve_in_process(database_url, tmp_path, **settings) as app:
            yield app, fabric, warp, shuttle


def test_fabric_drift_lowers_the_mode_and_ready_shows_it(world: tuple[InProcess, Upstream, Upstream, Upstream]) -> None:
    app, fabric, _, _ = world
    client = app.client
    assert client.get("/ready").json()["effective_mode"] == "promotion_enabled"
    fabric.routes["/api/v1/contracts/families"] = {"families": {**FAMILIES, "runtime.traces": "2.0"}}
    app.refresh_fabric()
    ready = client.get("/ready").json()
    assert ready["effective_mode"] == "proposal_only"
    assert ready["status"] == "degraded" and ready["fabric"]["aligned"] is False
    assert any("runtime.traces" in drift for drift in ready["fabric"]["drift"])
    assert client.get("/ready", params={"strict": "true"}).status_code == 503
    fabric.mode = "error"
    app.refresh_fabric()
    assert client.get("/ready").json()["effective_mode"] == "observe_only"
    fabric.mode = "well"
    fabric.routes["/api/v1/contracts/families"] = {"families": FAMILIES}
    app.refresh_fabric()
    assert client.get("/ready").json()["status"] == "ready"


@pytest.mark.parametrize("mode", ["slow", "error", "garbage", "close"])
def test_a_misbehaving_warp_never_lets_a_proposal_through(
    world: tuple[InProcess, Upstream, Upstream, Upstream], mode: str
) -> None:
    app, _, warp, _ = world
    client = app.client
    replay = post(client, "/replay/evaluate", replay_body(FAMILIES), 201)
    proposal = post(client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
    warp.routes[f"/api/v1/approvals/dobby/{proposal['proposal_id']}"] = warp_approval(proposal)
    warp.mode = mode
    checked = post(client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)
    assert (checked["state"], checked["approval_outcome"]) == ("replay_validated", "unavailable")
    activation = client.post(f"{LEARNING}/promotions/activate", json={"proposal_id": proposal["proposal_id"]})
    assert activation.status_code == 409 and activation.json()["error"]["code"] == "invalid_state"
    warp.mode = "well"
    assert (
        post(client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)["approval_outcome"]
        == "approved"
    )
    assert warp.requests[-1][1]["Authorization"] == "Bearer warp-secret"


def test_shuttle_evidence_is_stored_and_its_absence_never_blocks(
    world: tuple[InProcess, Upstream, Upstream, Upstream],
) -> None:
    app, _, _, shuttle = world
    client = app.client
    shuttle.routes["/api/v1/evidence"] = {"spans": ["a"]}
    run = post(client, "/signals/intake", intake_body(FAMILIES, trace_id="with"), 201)
    app.catch_up()
    stored = client.get(f"{LEARNING}/runs/{run['run_id']}", params={"min_position": run["position"]}).json()
    assert stored["evidence_digest"].startswith("sha256:")
    shuttle.mode = "slow"  # it answers, with evidence, only after dobby's timeout: the digest shows who waited
    run = post(client, "/signals/intake", intake_body(FAMILIES, trace_id="without"), 201)
    app.catch_up()
    stored = client.get(f"{LEARNING}/runs/{run['run_id']}", params={"min_position": run["position"]}).json()
    assert stored["evidence_digest"] is None


def test_fabric_target_types_are_enforced(world: tuple[InProcess, Upstream, Upstream, Upstream]) -> None:
    app, fabric, _, _ = world
    body = replay_body(FAMILIES, target={"type": "routing_rule", "id": "r"})
    post(app.client, "/replay/evaluate", body, 201)
    fabric.routes["/api/v1/contracts/matrix"] = FABRIC_ROUTES["/api/v1/contracts/matrix"]
    app.refresh_fabric()
    body["metrics"]["candidate"]["accuracy"] += 0.001
    refused(app.client, "/replay/evaluate", body, 422, "target_not_permitted")
