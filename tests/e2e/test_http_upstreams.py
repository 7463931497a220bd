"""dobby served against real loopback Fabric, Warp and Shuttle servers: it follows them and fails closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Served, serve_in_process
from tests.e2e.test_http_lifecycle import FAMILIES, LEARNING, post
from tests.integration.test_upstreams import FABRIC_ROUTES
from tests.integration.upstream_server import Upstream, upstream_server
from tests.support import eventually, intake_body, propose_body, replay_body, warp_approval

pytestmark = pytest.mark.backends(["sqlite"])


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[tuple[Served, Upstream, Upstream, Upstream]]:
    with upstream_server(dict(FABRIC_ROUTES)) as fabric, upstream_server() as warp, upstream_server() as shuttle:
        fabric.routes["/api/v1/contracts/matrix"] = {
            **FABRIC_ROUTES["/api/v1/contracts/matrix"],
            "target_types": ["prompt_template", "routing_rule"],
        }
        settings = {
            "DOBBY_FABRIC_URL": fabric.url,
            "DOBBY_FABRIC_REFRESH_SECONDS": "0.2",
            "DOBBY_WARP_URL": warp.url,
            "DOBBY_WARP_TOKEN": "warp-secret",
            "DOBBY_WARP_TIMEOUT_MS": "300",
            "DOBBY_SHUTTLE_URL": shuttle.url,
            "DOBBY_SHUTTLE_TIMEOUT_MS": "200",
        }
        with serve_in_process(database_url, tmp_path, **settings) as server:
            yield server, fabric, warp, shuttle


def test_fabric_drift_lowers_the_mode_and_ready_shows_it(world: tuple[Served, Upstream, Upstream, Upstream]) -> None:
    server, fabric, _, _ = world
    with server.client() as client:
        assert client.get("/ready").json()["effective_mode"] == "promotion_enabled"
        fabric.routes["/api/v1/contracts/families"] = {"families": {**FAMILIES, "runtime.traces": "2.0"}}
        assert eventually(lambda: client.get("/ready").json()["effective_mode"] == "proposal_only")
        ready = client.get("/ready").json()
        assert ready["status"] == "degraded" and ready["fabric"]["aligned"] is False
        assert any("runtime.traces" in drift for drift in ready["fabric"]["drift"])
        assert client.get("/ready", params={"strict": "true"}).status_code == 503
        fabric.mode = "error"
        assert eventually(lambda: client.get("/ready").json()["effective_mode"] == "observe_only")
        fabric.mode = "well"
        fabric.routes["/api/v1/contracts/families"] = {"families": FAMILIES}
        assert eventually(lambda: client.get("/ready").json()["status"] == "ready")


@pytest.mark.parametrize("mode", ["slow", "error", "garbage", "close"])
def test_a_misbehaving_warp_never_lets_a_proposal_through(
    world: tuple[Served, Upstream, Upstream, Upstream], mode: str
) -> None:
    server, _, warp, _ = world
    with server.client() as client:
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
    world: tuple[Served, Upstream, Upstream, Upstream],
) -> None:
    server, _, _, shuttle = world
    with server.client() as client:
        shuttle.routes["/api/v1/evidence"] = {"spans": ["a"]}
        run = post(client, "/signals/intake", intake_body(FAMILIES, trace_id="with"), 201)
        stored = client.get(f"{LEARNING}/runs/{run['run_id']}", params={"min_position": run["position"]}).json()
        assert stored["evidence_digest"].startswith("sha256:")
        shuttle.mode = "slow"  # it answers, with evidence, only after dobby's timeout: the digest shows who waited
        run = post(client, "/signals/intake", intake_body(FAMILIES, trace_id="without"), 201)
        stored = client.get(f"{LEARNING}/runs/{run['run_id']}", params={"min_position": run["position"]}).json()
        assert stored["evidence_digest"] is None


def test_fabric_target_types_are_enforced(world: tuple[Served, Upstream, Upstream, Upstream]) -> None:
    server, fabric, _, _ = world
    with server.client() as client:
        body = replay_body(FAMILIES, target={"type": "routing_rule", "id": "r"})
        post(client, "/replay/evaluate", body, 201)
        fabric.routes["/api/v1/contracts/matrix"] = FABRIC_ROUTES["/api/v1/contracts/matrix"]

        def refused() -> bool:
            body["metrics"]["candidate"]["accuracy"] += 0.001
            answer: httpx.Response = client.post(f"{LEARNING}/replay/evaluate", json=body)
            return answer.status_code == 422 and answer.json()["error"]["code"] == "target_not_permitted"

        assert eventually(refused)
