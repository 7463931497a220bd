"""Each port's adapters against one suite; the HTTP adapters against a real loopback server that answers well,
slowly, with errors, with garbage, or drops the connection. Every failure fails closed."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dobby.adapters.fabric import RefreshingGovernanceTruth, file_fetcher
from dobby.adapters.memory import InMemoryApprovals
from dobby.adapters.upstreams import FabricHttpGovernance, ShuttleEvidence, WarpApprovals
from dobby.adapters.warp import FileApprovals
from dobby.engine.kernel.ports import Approval, ApprovalSource, UpstreamUnavailableError
from dobby.engine.rules.modes import Mode, align
from dobby.resources import read_manifest
from tests.integration.upstream_server import FABRIC_ROUTES, Upstream, upstream_server

FAILURES = ["slow", "error", "garbage", "close"]
NOW = datetime.now(UTC)
APPROVAL_JSON = {
    "approval_id": "a1",
    "proposal_id": "p1",
    "decision": "approved",
    "approver": {"id": "alice", "kind": "human"},
    "binding": {"candidate_hash": "sha256:c", "provenance_hash": "sha256:p"},
    "decided_at": NOW.isoformat(),
    "expires_at": (NOW + timedelta(hours=1)).isoformat(),
}
MANIFEST = read_manifest()


def client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(0.5), trust_env=False)


@pytest.fixture
def warp() -> Iterator[Upstream]:
    with upstream_server({"/api/v1/approvals/dobby/p1": APPROVAL_JSON}) as server:
        yield server


# ----- one suite for every ApprovalSource -------------------------------------------------------------------


@pytest.fixture(params=["memory", "file", "http"])
def approval_source(request: pytest.FixtureRequest, tmp_path: Path, warp: Upstream) -> ApprovalSource:
    if request.param == "memory":
        memory = InMemoryApprovals()
        memory.put(
            Approval("a1", "p1", "approved", "alice", "human", "sha256:c", "sha256:p", NOW, NOW + timedelta(hours=1))
        )
        return memory
    if request.param == "file":
        (tmp_path / "p1.json").write_text(json.dumps(APPROVAL_JSON))
        return FileApprovals(tmp_path)
    return WarpApprovals(client(), warp.url, "secret-token")


def test_every_approval_source_finds_an_approval_and_misses_an_absent_one(approval_source: ApprovalSource) -> None:
    found = approval_source.approval_for("p1")
    assert found is not None and (found.decision, found.approver_kind, found.candidate_hash) == (
        "approved",
        "human",
        "sha256:c",
    )
    assert approval_source.approval_for("p2") is None


def test_warp_is_asked_with_the_bearer_token_every_time(warp: Upstream) -> None:
    source = WarpApprovals(client(), warp.url, "secret-token")
    source.approval_for("p1")
    source.approval_for("p1")
    assert [headers["Authorization"] for _, headers in warp.requests] == ["Bearer secret-token"] * 2


@pytest.mark.parametrize("mode", FAILURES)
def test_warp_failures_are_unavailable(warp: Upstream, mode: str) -> None:
    warp.mode = mode
    with pytest.raises(UpstreamUnavailableError):
        WarpApprovals(client(), warp.url, "t").approval_for("p1")


def test_unreachable_warp_is_unavailable() -> None:
    with socket.socket() as held:  # bound, never listening: connections are refused, and no one else gets the port
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}"
        with pytest.raises(UpstreamUnavailableError):
            WarpApprovals(client(), url, "t").approval_for("p1")


def test_malformed_approval_files_are_unavailable(tmp_path: Path) -> None:
    (tmp_path / "p1.json").write_text('{"decision": "approved"}')
    (tmp_path / "p2.json").write_text("not json")
    for proposal in ("p1", "p2"):
        with pytest.raises(UpstreamUnavailableError):
            FileApprovals(tmp_path).approval_for(proposal)


# ----- Fabric ------------------------------------------------------------------------------------------------


def test_fabric_over_http_is_aligned() -> None:
    with upstream_server(FABRIC_ROUTES) as fabric:
        document = FabricHttpGovernance(client(), fabric.url).fetch()
    assert document.target_types == ("prompt_template",) and document.no_learn_zones == ("prompt_template:x*",)
    assert align(MANIFEST, document).cap == Mode.promotion_enabled


@pytest.mark.parametrize("mode", FAILURES)
def test_fabric_failures_keep_the_last_good_document_but_lower_the_mode(mode: str) -> None:
    with upstream_server(FABRIC_ROUTES) as fabric:
        truth = RefreshingGovernanceTruth(FabricHttpGovernance(client(), fabric.url).fetch, refresh_seconds=3600)
        truth.refresh()
        assert truth.is_reachable()
        fabric.mode = mode
        truth.refresh()
        assert not truth.is_reachable()
        assert truth.current().target_types == ("prompt_template",)
        assert align(MANIFEST, None).cap == Mode.observe_only


def test_fabric_drift_over_http_caps_at_proposal_only() -> None:
    drifted = {
        **FABRIC_ROUTES,
        "/api/v1/contracts/families": {"families": {**MANIFEST.families, "runtime.traces": "9.0"}},
    }
    with upstream_server(drifted) as fabric:
        document = FabricHttpGovernance(client(), fabric.url).fetch()
    assert align(MANIFEST, document).cap == Mode.proposal_only


@pytest.mark.parametrize(
    "broken",
    [
        {"/api/v1/contracts/jarvis/readiness": {"status": "purple"}},
        {"/api/v1/contracts/families": {"families": ["not", "a", "map"]}},
        {"/api/v1/contracts/matrix": [1, 2]},
    ],
)
def test_fabric_documents_of_the_wrong_shape_are_unavailable(broken: dict[str, Any]) -> None:
    with upstream_server({**FABRIC_ROUTES, **broken}) as fabric, pytest.raises(UpstreamUnavailableError):
        FabricHttpGovernance(client(), fabric.url).fetch()


def test_fabric_file_is_read_and_refused_when_broken(tmp_path: Path) -> None:
    path = tmp_path / "fabric.json"
    path.write_text(
        json.dumps({"capability_class": "c", "families": {}, "target_types": [], "readiness": {"status": "green"}})
    )
    assert file_fetcher(path)().capability_class == "c"
    path.write_text("{")
    with pytest.raises(UpstreamUnavailableError):
        file_fetcher(path)()


# ----- Shuttle -----------------------------------------------------------------------------------------------


def test_shuttle_digest_and_failures() -> None:
    with upstream_server({"/api/v1/evidence": {"spans": [1, 2]}}) as shuttle:
        evidence = ShuttleEvidence(client(), shuttle.url)
        found = evidence.evidence_for("t1")
        assert found is not None and found.digest.startswith("sha256:")
        assert shuttle.requests[-1][0] == "/api/v1/evidence?trace_id=t1"
        for mode in FAILURES:
            shuttle.mode = mode
            with pytest.raises(UpstreamUnavailableError):
                evidence.evidence_for("t1")
