"""dobby.client drives the whole lifecycle: the async client against the app in-process (httpx.ASGITransport, the
read side running), the sync one against a real server; retries only where a request is idempotent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.client import AsyncClient, Client, ConflictError, NotFoundError, UnavailableError, UnprocessableError
from dobby.engine.commands.intake import IntakeAccepted
from dobby.engine.commands.loading import ProposalAnswer
from dobby.engine.kernel.shapes import TargetRef
from dobby.engine.rules.intake import IntakeSignal
from dobby.engine.rules.modes import Mode
from dobby.http.app import create_app
from tests.e2e.server import Server
from tests.support import FAMILIES, TARGET, propose_body, replay_body, run_coroutine, warp_approval

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


def approve(approvals: Path, proposal: ProposalAnswer) -> None:
    """Warp's approval of `proposal`, as a file in the approvals directory."""
    approvals.mkdir(parents=True, exist_ok=True)
    document = warp_approval({"proposal_id": proposal.proposal_id, **_binding(proposal)})
    (approvals / f"{proposal.proposal_id}.json").write_text(json.dumps(document))


def _binding(proposal: ProposalAnswer) -> dict[str, Any]:
    return {"candidate_hash": proposal.candidate_hash, "provenance_hash": proposal.provenance_hash}


SIGNAL = IntakeSignal(
    tenant_id="acme",
    trace_id="client-trace-1",
    correlation_id="c-1",
    outcome="success",
    guardrail_decision="ALLOW",
    family_versions=FAMILIES,
    target_hints=[TargetRef(TARGET["type"], TARGET["id"])],
)


@asynccontextmanager
async def app_in_process(database_url: str, workdir: Path) -> AsyncIterator[AsyncClient]:
    settings = Settings(
        database_url=database_url,
        service_mode=Mode.promotion_enabled,
        warp_approvals_dir=workdir / "approvals",
        bobbin_path=workdir / "bobbin.jsonl",
    )
    system = build_system(settings)
    system.init_storage()
    app = create_app(system, background=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient(http=httpx.AsyncClient(transport=transport, base_url="http://dobby.test")) as client:
            yield client


def test_the_async_client_drives_a_lifecycle_in_process(database_url: str, tmp_path: Path) -> None:
    async def lifecycle() -> None:
        async with app_in_process(database_url, tmp_path) as dobby:
            run = await dobby.intake(SIGNAL)
            assert isinstance(run, IntakeAccepted) and dobby.position == run.position
            assert (await dobby.get_run(run.run_id)).trace_id == SIGNAL.trace_id
            replay = await dobby.evaluate_replay(replay_body(FAMILIES, run_ids=[run.run_id]))
            assert replay.verdict == "passed"
            proposal = await dobby.propose(propose_body(replay.replay_id))
            again = await dobby.propose(propose_body(replay.replay_id))
            assert again.duplicate is True and again.proposal_id == proposal.proposal_id
            approve(tmp_path / "approvals", proposal)
            assert (await dobby.approve_check(proposal.proposal_id)).state == "approved"
            active = await dobby.activate(proposal.proposal_id)
            assert isinstance(active, ProposalAnswer) and active.state == "active"
            live = await dobby.target("acme", TARGET["type"], TARGET["id"])  # no wait: min_position is carried
            assert live.source == "proposal" and live.live == proposal.change
            with pytest.raises(ConflictError) as refused:
                await dobby.activate(proposal.proposal_id)
            assert refused.value.code == "invalid_state" and refused.value.status == 409
            rolled = await dobby.rollback(proposal.proposal_id, "conversion dropped")
            assert rolled.restored_baseline == proposal.baseline
            assert (await dobby.target("acme", TARGET["type"], TARGET["id"])).live == proposal.baseline
            history = await dobby.history(proposal.proposal_id)
            assert history.chain_valid and history.events[-1].state_after == "rolled_back"
            page = await dobby.list_proposals(tenant_id="acme", state="rolled_back")
            assert [p.proposal_id for p in page.items] == [proposal.proposal_id]
            with pytest.raises(NotFoundError) as unknown:
                await dobby.get_proposal("00000000-0000-0000-0000-000000000000")
            assert unknown.value.code == "not_found"

    run_coroutine(lifecycle)


@pytest.mark.backends(["sqlite"])
def test_the_sync_client_drives_a_lifecycle_against_a_real_server(server: Server) -> None:
    with Client(server.url, actor="client-test") as dobby:
        replay = dobby.evaluate_replay(replay_body(FAMILIES))
        proposal = dobby.propose(propose_body(replay.replay_id))
        approve(server.approvals, proposal)
        assert dobby.approve_check(proposal.proposal_id).approval_outcome == "approved"
        dobby.activate(proposal.proposal_id)
        assert dobby.get_proposal(proposal.proposal_id).state == "active"
        assert dobby.target("acme", TARGET["type"], TARGET["id"]).live == proposal.change
        assert dobby.explain(proposal.proposal_id).can_activate is False
        dobby.rollback(proposal.proposal_id, "worse")
        assert dobby.get_proposal(proposal.proposal_id).state == "rolled_back"
        events = dobby.history(proposal.proposal_id).events
        assert {event.actor for event in events} == {"client-test"}
        with pytest.raises(UnprocessableError) as refused:
            dobby.evaluate_replay({**replay_body(FAMILIES), "unknown": 1})
        assert refused.value.code == "invalid_input" and refused.value.details[0]["field"] == "unknown"


def _flaky(statuses: list[int]) -> tuple[httpx.MockTransport, list[str]]:
    """A transport answering 503 (Retry-After 0) for each status in turn until a success; the paths it saw."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        status = statuses.pop(0) if statuses else 201
        if status == 503:
            body = {"error": {"code": "persistence_unavailable", "message": "later", "details": []}}
            return httpx.Response(503, json=body, headers={"Retry-After": "0"})
        return httpx.Response(
            201,
            json={
                "accepted": True,
                "run_id": "r",
                "run_hash": "h",
                "provenance_hash": "p",
                "sampled": False,
                "duplicate": False,
                "position": 9,
            },
        )

    return httpx.MockTransport(answer), seen


def test_only_idempotent_requests_are_retried() -> None:
    transport, seen = _flaky([503, 503])
    with Client(http=httpx.Client(transport=transport, base_url="http://dobby.test")) as dobby:
        answer = dobby.intake(SIGNAL)
        assert isinstance(answer, IntakeAccepted) and answer.position == 9 and len(seen) == 3
    transport, seen = _flaky([503])
    with Client(http=httpx.Client(transport=transport, base_url="http://dobby.test")) as dobby:
        with pytest.raises(UnavailableError) as refused:
            dobby.approve_check("p-1")
        assert refused.value.code == "persistence_unavailable" and refused.value.retry_after == 0
        assert len(seen) == 1
