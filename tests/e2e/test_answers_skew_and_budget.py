"""SPEC §16 headers, §5 clock skew of Warp approvals and the §6 budget gauge, over HTTP in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support import (
    FAMILIES,
    INTAKE,
    LEARNING,
    InProcess,
    post,
    propose_body,
    replay_body,
    samples,
    serve_in_process,
)

pytestmark = pytest.mark.backends(["sqlite"])


def test_every_answer_is_nosniff_and_tenant_data_is_never_stored_by_caches(app: InProcess) -> None:
    replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
    app.catch_up()
    answers: list[httpx.Response] = [
        app.client.get(path)
        for path in (
            "/health",
            "/ready",
            "/version",
            "/metrics",
            "/openapi.json",
            "/fabric-manifest.json",
            "/api/v1/contract",
            f"{LEARNING}/replays/{replay['replay_id']}",
            f"{LEARNING}/replays",
            f"{LEARNING}/runs/00000000-0000-0000-0000-000000000000",
            "/console",
            "/no/such/page",
        )
    ]
    answers.append(app.client.post(INTAKE, content=b"{", headers={"content-type": "application/json"}))
    answers.append(app.client.post(f"{LEARNING}/replay/evaluate", json=replay_body(FAMILIES)))
    for answer in answers:
        where = (answer.request.method, answer.request.url.path, answer.status_code)
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"], where
        assert answer.headers.get_list("cache-control") == ["no-store"], where
    asset = app.client.get("/console/static/console.js")
    assert asset.headers["x-content-type-options"] == "nosniff" and asset.headers["cache-control"] == "max-age=300"


def approve_check_with(app: InProcess, decided_at: datetime) -> dict[str, object]:
    replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
    proposal = post(app.client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
    app.write_approval(
        proposal, decided_at=decided_at.isoformat(), expires_at=(decided_at + timedelta(hours=2)).isoformat()
    )
    return post(app.client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)


@pytest.mark.parametrize(("ahead", "outcome"), [(timedelta(days=1), "pending"), (timedelta(seconds=200), "approved")])
def test_an_approval_decided_in_the_future_beyond_the_skew_is_not_yet_valid(
    app: InProcess, ahead: timedelta, outcome: str
) -> None:
    checked = approve_check_with(app, datetime.now(UTC) + ahead)
    assert checked["approval_outcome"] == outcome, checked
    if outcome == "pending":
        assert checked["state"] == "replay_validated"
        reasons = checked["reasons"]
        assert isinstance(reasons, list) and any("DOBBY_CLOCK_SKEW_SECONDS" in reason for reason in reasons), reasons
    else:
        assert checked["state"] == "approved"


def test_the_skew_is_a_setting(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path, clock_skew_seconds=60) as app:
        assert approve_check_with(app, datetime.now(UTC) + timedelta(seconds=200))["approval_outcome"] == "pending"


def test_the_budget_gauge_is_the_lowest_left_over_the_tenants_targets(app: InProcess) -> None:
    spent = {}
    for tenant, target, count in (("acme", "greeting", 3), ("acme", "farewell", 1), ("globex", "greeting", 1)):
        for n in range(count):
            body = replay_body(FAMILIES, tenant_id=tenant, target={"type": "prompt_template", "id": target})
            body["metrics"]["candidate"]["accuracy"] = 0.8 + n / 100
            spent[(tenant, target)] = post(app.client, "/replay/evaluate", body, 201)["budget"]["remaining"]
    app.catch_up()
    gauges = samples(app.client.get("/metrics").text, "dobby_replay_budget_remaining")
    assert gauges == {
        '{tenant_id="acme"}': min(spent[("acme", "greeting")], spent[("acme", "farewell")]),
        '{tenant_id="globex"}': spent[("globex", "greeting")],
    }
    assert gauges['{tenant_id="acme"}'] == 17
