"""The console's policy parts (SPEC §12) over HTTP in-process: the decision queue on the overview, the freezes page
with the operator's freeze, lift, stop and resume, and the schedule and observations on the proposal page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import InProcess, approved, post

pytestmark = [
    pytest.mark.backends(["sqlite"]),
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def submit(app: InProcess, action: str, **fields: str) -> str:
    token = csrf_of(app.client.get("/console/freezes").text)
    answer = app.client.post(f"/console/freezes/{action}", data={"csrf_token": token, **fields})
    return answer.text


def test_freeze_refuse_lift_activate_from_the_console(app: InProcess) -> None:
    proposal = approved(app)
    pid = proposal["proposal_id"]
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    page = submit(app, "freeze", tenant_id="acme", targets="prompt_template:*", ends_at=ends, reason="release week")
    assert "Declared freeze" in page
    rows = re.findall(r'data-testid="freeze-row" data-freeze-id="([^"]+)"', page)
    assert len(rows) == 1

    token = csrf_of(app.client.get(f"/console/proposals/{pid}").text)
    refused = app.client.post(f"/console/proposals/{pid}/activate", data={"csrf_token": token}).text
    assert "not_frozen" in refused and rows[0] in refused and "release week" in refused

    assert "Lifted freeze" in submit(app, "lift", freeze_id=rows[0], reason="shipped early")
    token = csrf_of(app.client.get(f"/console/proposals/{pid}").text)
    assert "Activated" in app.client.post(f"/console/proposals/{pid}/activate", data={"csrf_token": token}).text


def test_stop_and_resume_from_the_console_and_csrf_holds(app: InProcess) -> None:
    approved(app)
    assert app.client.post("/console/freezes/stop", data={"tenant_id": "acme", "reason": "x"}).status_code == 403
    assert app.system.engine.policy.policy_state("acme") is None  # refused without the token: nothing written
    page = submit(app, "stop", tenant_id="acme", reason="incident 7")
    assert 'data-stopped="true"' in page and "incident 7" in page
    page = submit(app, "resume", tenant_id="acme", reason="over")
    assert 'data-stopped="false"' in page


def test_the_overview_leads_with_the_decision_queue(app: InProcess) -> None:
    waiting = approved(app)
    post(app.client, "/stop", {"tenant_id": "acme", "reason": "incident"}, 200)
    app.catch_up()
    overview = app.client.get("/console").text
    assert overview.index("Waiting on a decision") < overview.index("Proposals by state")
    row = re.search(
        rf'data-testid="decision-row" data-proposal-id="{waiting["proposal_id"]}" data-waiting-on="(\w+)"', overview
    )
    assert row is not None and row.group(1) == "activation" and "stopped" in overview


def test_the_proposal_page_shows_the_schedule_and_the_observations(app: InProcess) -> None:
    proposal = approved(app)
    pid = proposal["proposal_id"]
    at = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()  # the approval holds for an hour
    scheduled = post(app.client, "/promotions/activate", {"proposal_id": pid, "not_before": at}, 202)
    page = app.client.get(f"/console/proposals/{pid}").text
    shown = datetime.fromisoformat(scheduled["scheduled_for"]).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert shown in page
    post(app.client, "/promotions/unschedule", {"proposal_id": pid}, 200)
    post(app.client, "/promotions/activate", {"proposal_id": pid}, 200)
    post(app.client, "/promotions/observe", {"proposal_id": pid, "metrics": {"accuracy": 0.9, "latency_ms": 90}}, 200)
    page = app.client.get(f"/console/proposals/{pid}").text
    assert 'data-testid="observation" data-verdict="healthy"' in page
