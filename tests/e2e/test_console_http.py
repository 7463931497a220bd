"""The console over HTTP in-process (SPEC §9): headers, escaping, sessions, CSRF and scopes without a browser."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import FAMILIES, InProcess, approved, post, propose_body, replay_body, serve_in_process

pytestmark = [
    pytest.mark.backends(["sqlite"]),
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
]
SECRET = "a-console-secret-of-some-length"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def tokens_file(tmp_path: Path) -> Path:
    tokens = [
        {"name": "olivia", "sha256": hashlib.sha256(b"op").hexdigest(), "tenants": ["acme"], "roles": ["operator"]},
        {"name": "audrey", "sha256": hashlib.sha256(b"au").hexdigest(), "tenants": ["acme"], "roles": ["auditor"]},
    ]
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(tokens))
    return path


def test_every_page_carries_the_security_headers_and_escapes_what_users_sent(app: InProcess) -> None:
    payload = "<script>alert(1)</script>"
    replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES, change={"x": payload}), 201)
    body = propose_body(replay["replay_id"], rationale=payload, change={"x": payload})
    proposal = post(app.client, "/promotions/propose", body, 201)
    app.catch_up()
    for path in ("/console", "/console/proposals", f"/console/proposals/{proposal['proposal_id']}", "/console/runs"):
        answer = app.client.get(path)
        assert answer.status_code == 200, answer.text
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert payload not in answer.text
        assert re.search(r"<script(?! src=\"/console/static/console.js\")", answer.text) is None
        assert re.search(r"<[^>]+\son\w+\s*=", answer.text) is None
    page = app.client.get(f"/console/proposals/{proposal['proposal_id']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    script = app.client.get("/console/static/console.js")
    assert script.headers["content-type"].startswith("text/javascript") and script.headers["x-content-type-options"]


def test_an_action_needs_the_csrf_token_of_the_page(app: InProcess) -> None:
    proposal = approved(app)
    page = app.client.get(f"/console/proposals/{proposal['proposal_id']}")
    token = csrf_of(page.text)
    cookies = {"dobby_csrf": page.cookies["dobby_csrf"]}
    path = f"/console/proposals/{proposal['proposal_id']}/activate"
    assert app.client.post(path, data={}, cookies=cookies).status_code == 403
    assert app.client.post(path, data={"csrf_token": "forged"}, cookies=cookies).status_code == 403
    foreign = app.client.post(path, data={"csrf_token": token}, cookies=cookies, headers={"Origin": "https://evil"})
    assert foreign.status_code == 403
    assert app.system.engine.audit.get_proposal(proposal["proposal_id"]).state == "approved"
    done = app.client.post(path, data={"csrf_token": token}, cookies=cookies)
    assert done.status_code == 200 and 'data-testid="action-message"' in done.text
    assert app.system.engine.audit.get_proposal(proposal["proposal_id"]).state == "active"


def test_sign_in_sets_a_signed_strict_http_only_session(database_url: str, tmp_path: Path) -> None:
    settings: dict[str, Any] = {"api_tokens_file": tokens_file(tmp_path), "console_secret": SECRET}
    with serve_in_process(database_url, tmp_path, **settings) as app:
        first = app.client.get("/console")
        assert first.status_code == 303 and first.headers["location"] == "/console/sign-in"
        form = app.client.get("/console/sign-in")
        csrf = {"dobby_csrf": form.cookies["dobby_csrf"]}
        data = {"csrf_token": csrf_of(form.text)}
        wrong = app.client.post("/console/sign-in", data={**data, "token": "nope"}, cookies=csrf)
        assert wrong.status_code == 401 and "dobby_session" not in wrong.cookies
        signed = app.client.post("/console/sign-in", data={**data, "token": "au"}, cookies=csrf)
        assert signed.status_code == 303
        header = signed.headers["set-cookie"].lower()
        assert "httponly" in header and "samesite=strict" in header and "path=/console" in header
        session = {**csrf, "dobby_session": signed.cookies["dobby_session"]}
        overview = app.client.get("/console", cookies=session)
        assert overview.status_code == 200 and "audrey" in overview.text
        tampered = {**csrf, "dobby_session": signed.cookies["dobby_session"][:-2] + "xx"}
        assert app.client.get("/console", cookies=tampered).status_code == 303
        assert app.client.get("/api/v1/learning/proposals", cookies=session).status_code == 401


def test_with_tokens_and_no_secret_the_console_stays_shut(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path, api_tokens_file=tokens_file(tmp_path)) as app:
        answer = app.client.get("/console")
        assert answer.status_code == 503 and "DOBBY_CONSOLE_SECRET" in answer.text


def summary_replay(app: InProcess, candidate_successes: int) -> dict[str, Any]:
    metrics = {
        "baseline": {"success": {"successes": 400, "n": 1000}, "latency_ms": {"mean": 120, "sd": 30, "n": 1000}},
        "candidate": {
            "success": {"successes": candidate_successes, "n": 1000},
            "latency_ms": {"mean": 110, "sd": 30, "n": 1000},
        },
    }
    contract = {
        "mode": "all",
        "metrics": {"success": {"direction": "increase"}, "latency_ms": {"direction": "decrease"}},
    }
    return post(
        app.client, "/replay/evaluate", replay_body(FAMILIES, metrics=metrics, threshold_contract=contract), 201
    )


def metric_row(page: str, name: str) -> str:
    found = re.search(rf'<tr data-metric="{name}".*?</tr>', page, re.DOTALL)
    assert found, page
    return found.group(0)


def test_the_replay_page_shows_estimate_interval_and_the_sample_an_inconclusive_metric_needs(app: InProcess) -> None:
    replay = summary_replay(app, 420)
    assert replay["verdict"] == "inconclusive"
    success = {r["name"]: r for r in replay["metric_results"]}["success"]
    page = app.client.get(f"/console/replays/{replay['replay_id']}").text
    row = metric_row(page, "success")
    assert 'data-inconclusive="true"' in row and "400/1000 (0.4)" in row and "420/1000 (0.42)" in row
    assert f"needs about {success['needed_n']:,} per side" in row
    low, high = success["interval"]
    assert f"[{low:.6g}, {high:.6g}] at 95 %" in row
    assert 'data-inconclusive="false"' in metric_row(page, "latency_ms")
    assert "120 (sd 30, n 1000)" in metric_row(page, "latency_ms")


def test_the_proposal_page_shows_the_replays_interval_and_each_observations(app: InProcess) -> None:
    replay = summary_replay(app, 480)
    proposal = post(app.client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
    app.write_approval(proposal)
    post(app.client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)
    post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
    live = {"success": {"successes": 90, "n": 200}, "latency_ms": {"mean": 112, "sd": 30, "n": 200}}
    seen = post(app.client, "/promotions/observe", {"proposal_id": proposal["proposal_id"], "metrics": live}, 200)
    page = app.client.get(f"/console/proposals/{proposal['proposal_id']}").text
    low, high = {r["name"]: r for r in replay["metric_results"]}["success"]["interval"]
    assert f"[{low:.6g}, {high:.6g}] at 95 %" in metric_row(page, "success")
    observed = {r["name"]: r for r in seen["metric_results"]}["success"]["interval"]
    assert f"success 90/200 (0.45) (improvement 0.05, always-valid [{observed[0]:.6g}, {observed[1]:.6g}])" in page
