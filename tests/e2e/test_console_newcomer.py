"""The console's rough edges a newcomer hit (issue 25), over HTTP in-process: actions only in states that allow them,
the velocity breaker's open shown as blocked, times to the second, the freeze form's UTC times and tenant picker, and
a sign-in without a console role refused instead of looping."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import InProcess, approved, post, serve_in_process

pytestmark = [
    pytest.mark.backends(["sqlite"]),
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
]
ACTIONS = ("action-approve-check", "action-activate", "action-rollback")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def offered(app: InProcess, proposal_id: str) -> list[str]:
    page = app.client.get(f"/console/proposals/{proposal_id}").text
    return [action for action in ACTIONS if f'data-testid="{action}"' in page]


def test_each_action_is_offered_only_in_a_state_that_allows_it(app: InProcess) -> None:
    proposal = approved(app)
    pid = proposal["proposal_id"]
    app.catch_up()
    assert offered(app, pid) == ["action-activate"]
    post(app.client, "/promotions/activate", {"proposal_id": pid}, 200)
    app.catch_up()
    assert offered(app, pid) == ["action-rollback"]
    post(app.client, "/promotions/rollback", {"proposal_id": pid, "reason": "worse"}, 200)
    app.catch_up()
    page = app.client.get(f"/console/proposals/{pid}").text
    assert offered(app, pid) == [] and 'id="actions-heading"' not in page


def test_times_show_to_the_second_and_an_open_breaker_shows_as_blocked(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path, promotion_velocity_max=1) as app:
        proposal = approved(app)
        post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
        app.catch_up()
        overview = app.client.get("/console").text
        assert re.search(r'data-testid="breaker" data-open="true">open: activations blocked', overview), overview
        assert 'class="badge bad"' in overview
        page = app.client.get(f"/console/proposals/{proposal['proposal_id']}").text
        assert re.search(r"<dt>Created</dt><dd>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC</dd>", page), page
        timeline = page[page.index('data-testid="timeline-event"') :]
        assert re.search(r"<td>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC</td>", timeline)
        assert re.search(r"<td>[^<]*\d{2}:\d{2}:\d{2}\.\d{6}Z</td>", timeline) is None


def test_the_freeze_form_takes_utc_times_from_a_browser_and_offers_known_tenants(app: InProcess) -> None:
    approved(app)
    app.catch_up()
    form = app.client.get("/console/freezes").text
    assert 'id="freeze-ends" name="ends_at" type="datetime-local"' in form
    assert '<datalist id="known-tenants"><option value="acme">' in form
    ends = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    answer = app.client.post(
        "/console/freezes/freeze",
        data={
            "csrf_token": csrf_of(form),
            "tenant_id": "acme",
            "ends_at": ends.strftime("%Y-%m-%dT%H:%M:%S"),
            "reason": "release week",
        },
    )
    assert "Declared freeze" in answer.text, answer.text
    listed = app.client.get("/api/v1/learning/freezes", params={"tenant_id": "acme"}).json()["items"]
    assert listed[0]["ends_at"] == ends.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def test_a_token_without_a_console_role_is_refused_at_sign_in(database_url: str, tmp_path: Path) -> None:
    tokens = [{"name": "ci", "sha256": hashlib.sha256(b"ci").hexdigest(), "tenants": "*", "roles": ["submitter"]}]
    (tmp_path / "tokens.json").write_text(json.dumps(tokens))
    tokens_file, secret = tmp_path / "tokens.json", "a-console-secret-of-some-length"
    with serve_in_process(database_url, tmp_path, api_tokens_file=tokens_file, console_secret=secret) as app:
        form = app.client.get("/console/sign-in").text
        answer = app.client.post("/console/sign-in", data={"csrf_token": csrf_of(form), "token": "ci"})
        assert answer.status_code == 403 and "needs the auditor or operator role" in answer.text
        assert "dobby_session" not in answer.headers.get("set-cookie", "")
