"""SPEC §8: a record of a tenant outside the caller's scope answers exactly as an unknown id does, on every route
that takes an id (in its path or its body) and in the console: the same status, headers and bytes, apart from the
request id and the id itself, so no answer tells whether another tenant's record exists or whose it is."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import (
    FAMILIES,
    LEARNING,
    AppClient,
    InProcess,
    intake_body,
    post,
    propose_body,
    replay_body,
    serve_in_process,
)

pytestmark = [
    pytest.mark.backends(["sqlite"]),
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
]
ROLES = ["submitter", "proposer", "operator", "auditor"]
SECRET = "a-console-secret-of-some-length"
OWNER = {"Authorization": "Bearer owner-token"}
STRANGER = {"Authorization": "Bearer stranger-token"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcess, dict[str, str]]]:
    directory = tmp_path_factory.mktemp("oracle")
    tokens = [
        {"name": "owner", "sha256": hashlib.sha256(b"owner-token").hexdigest(), "tenants": ["acme"], "roles": ROLES},
        {
            "name": "stranger",
            "sha256": hashlib.sha256(b"stranger-token").hexdigest(),
            "tenants": ["tB"],
            "roles": ROLES,
        },
    ]
    path = directory / "tokens.json"
    path.write_text(json.dumps(tokens))
    settings: dict[str, Any] = {"api_tokens_file": path, "console_secret": SECRET}
    with serve_in_process(f"sqlite:///{directory / 'oracle.db'}", directory, **settings) as app:
        run = post(app.client, "/signals/intake", intake_body(FAMILIES), 201, **OWNER)
        replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES, run_ids=[run["run_id"]]), 201, **OWNER)
        proposal = post(app.client, "/promotions/propose", propose_body(replay["replay_id"]), 201, **OWNER)
        ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        frozen = post(app.client, "/freezes", {"tenant_id": "acme", "ends_at": ends, "reason": "r"}, 201, **OWNER)
        app.catch_up()
        yield (
            app,
            {
                "run": run["run_id"],
                "replay": replay["replay_id"],
                "proposal": proposal["proposal_id"],
                "freeze": frozen["freeze_id"],
            },
        )


CONTRACT = replay_body(FAMILIES)["threshold_contract"]
Call = Callable[[AppClient, str, bool], httpx.Response]


def api(method: str, path: str, body: Callable[[str], Any] | None = None) -> Call:
    """The request as the stranger (tenant tB), or as the record's owner (acme) with `owner`."""

    def call(client: AppClient, identifier: str, owner: bool = False) -> httpx.Response:
        content = None if body is None else json.dumps(body(identifier))
        if content is not None and owner:
            content = content.replace('"tB"', '"acme"')
        headers = {**(OWNER if owner else STRANGER), "Content-Type": "application/json"}
        url = path.format(id=identifier)
        return client.request(
            method, url if url.startswith("/api/") else LEARNING + url, content=content, headers=headers
        )

    return call


def stranger_evaluates(identifier: str) -> dict[str, Any]:
    return replay_body(FAMILIES, tenant_id="tB", run_ids=[identifier])


ROLLBACK = api("POST", "/promotions/rollback", lambda i: {"proposal_id": i, "reason": "r"})
# (the kind of id, the route, the status an unknown id gets there)
API_ROUTES: list[tuple[str, str, Call, int]] = [
    ("run", "GET runs/{id}", api("GET", "/runs/{id}"), 404),
    ("replay", "GET replays/{id}", api("GET", "/replays/{id}"), 404),
    ("proposal", "GET proposals/{id}", api("GET", "/proposals/{id}"), 404),
    ("proposal", "GET proposals/{id}/history", api("GET", "/proposals/{id}/history?as_of_version=1"), 404),
    ("proposal", "GET proposals/{id}/explain", api("GET", "/proposals/{id}/explain"), 404),
    ("replay", "POST what-if", api("POST", "/replays/{id}/what-if", lambda i: {"threshold_contract": CONTRACT}), 404),
    ("replay", "POST propose", api("POST", "/promotions/propose", lambda i: propose_body(i, tenant_id="tB")), 404),
    ("proposal", "POST approve-check", api("POST", "/promotions/approve-check", lambda i: {"proposal_id": i}), 404),
    ("proposal", "POST activate", api("POST", "/promotions/activate", lambda i: {"proposal_id": i}), 404),
    (
        "proposal",
        "POST activate (scheduled)",
        api("POST", "/promotions/activate", lambda i: {"proposal_id": i, "not_before": "2030-01-01T00:00:00Z"}),
        404,
    ),
    ("proposal", "POST unschedule", api("POST", "/promotions/unschedule", lambda i: {"proposal_id": i}), 404),
    (
        "proposal",
        "POST rollback",
        api("POST", "/promotions/rollback", lambda i: {"proposal_id": i, "reason": "r"}),
        404,
    ),
    (
        "proposal",
        "POST observe",
        api("POST", "/promotions/observe", lambda i: {"proposal_id": i, "metrics": {"accuracy": 0.9}}),
        404,
    ),
    ("run", "POST evaluate (run_ids)", api("POST", "/replay/evaluate", stranger_evaluates), 422),
    ("freeze", "DELETE freezes/{id}", api("DELETE", "/freezes/{id}?reason=r"), 404),
    ("proposal", "GET audit/receipts/{id}", api("GET", "/api/v1/audit/receipts/{id}"), 404),
]


def normalized(answer: httpx.Response, identifier: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body, with the request id and the id asked for taken out."""
    headers = sorted((k, v.replace(identifier, "ID")) for k, v in answer.headers.items() if k != "x-request-id")
    return answer.status_code, headers, answer.content.replace(identifier.encode(), b"ID")


def unknown_like(identifier: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"never-stored-{identifier}"))


@pytest.mark.parametrize(("kind", "route", "call", "status"), API_ROUTES, ids=[r[1] for r in API_ROUTES])
def test_another_tenants_id_answers_exactly_as_an_unknown_one(
    world: tuple[InProcess, dict[str, str]], kind: str, route: str, call: Call, status: int
) -> None:
    app, ids = world
    before = app.system.engine.position()
    hidden = call(app.client, ids[kind], False)
    unknown = call(app.client, unknown_like(ids[kind]), False)
    assert hidden.status_code == status, (route, hidden.text)
    assert normalized(hidden, ids[kind]) == normalized(unknown, unknown_like(ids[kind])), route
    assert app.system.engine.position() == before, "a refused request stored something"
    mine = call(app.client, ids[kind], True)  # the owner is not refused so: the comparison above is not vacuous
    assert mine.status_code != status or mine.json()["error"]["code"] != hidden.json()["error"]["code"], route


def console_session(client: AppClient, token: str) -> dict[str, str]:
    form = client.get("/console/sign-in")
    csrf = {"dobby_csrf": form.cookies["dobby_csrf"]}
    signed = client.post("/console/sign-in", data={"csrf_token": csrf_of(form.text), "token": token}, cookies=csrf)
    assert signed.status_code == 303, signed.text
    return {**csrf, "dobby_session": signed.cookies["dobby_session"]}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_the_console_answers_another_tenants_ids_exactly_as_unknown_ones(
    world: tuple[InProcess, dict[str, str]],
) -> None:
    app, ids = world
    client = app.client
    session = console_session(client, "stranger-token")
    token = csrf_of(client.get("/console/freezes", cookies=session).text)
    form = {"csrf_token": token}
    pages: list[tuple[str, Callable[[str], httpx.Response]]] = [
        ("proposal", lambda i: client.get(f"/console/proposals/{i}", cookies=session)),
        ("replay", lambda i: client.get(f"/console/replays/{i}", cookies=session)),
        ("proposal", lambda i: client.post(f"/console/proposals/{i}/approve-check", data=form, cookies=session)),
        ("proposal", lambda i: client.post(f"/console/proposals/{i}/activate", data=form, cookies=session)),
        (
            "proposal",
            lambda i: client.post(f"/console/proposals/{i}/rollback", data={**form, "reason": "r"}, cookies=session),
        ),
        (
            "replay",
            lambda i: client.post(
                f"/console/replays/{i}/what-if",
                data={**form, "threshold_contract": json.dumps(CONTRACT)},
                cookies=session,
            ),
        ),
        (
            "freeze",
            lambda i: client.post(
                "/console/freezes/lift", data={**form, "freeze_id": i, "reason": "r"}, cookies=session
            ),
        ),
    ]
    before = app.system.engine.position()
    for kind, page in pages:
        hidden, unknown = page(ids[kind]), page(unknown_like(ids[kind]))
        assert hidden.status_code in (404, 422), (kind, hidden.status_code, hidden.text[:300])
        assert normalized(hidden, ids[kind]) == normalized(unknown, unknown_like(ids[kind])), (kind, hidden.text)
    assert app.system.engine.position() == before
