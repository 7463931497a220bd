"""OFREP (SPEC §15) over HTTP: the app in-process for the protocol's shapes, a real server for the OpenFeature SDK
with the community OFREP provider from PyPI, unchanged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from dobby.engine.kernel.canonical import content_hash
from tests.e2e.server import Server, serve
from tests.support import (
    FAMILIES,
    TARGET,
    InProcess,
    approved,
    eventually,
    post,
    propose_body,
    replay_body,
    serve_in_process,
    warp_approval,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
FLAGS = "/ofrep/v1/evaluate/flags"
KEY = f"{TARGET['type']}:{TARGET['id']}"


def evaluate(app: InProcess, key: str, context: Any, status: int, **headers: str) -> dict[str, Any]:
    answer = app.client.post(f"{FLAGS}/{key}", json={"context": context}, headers=headers)
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


def live_proposal(app: InProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    proposal = approved(app)
    active = post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
    app.catch_up()
    return proposal, active


def test_a_live_target_is_a_flag_whose_variant_is_its_live_hash(app: InProcess) -> None:
    proposal, active = live_proposal(app)
    answer = evaluate(app, KEY, {"tenant_id": "acme", "targetingKey": "user-1", "plan": "pro"}, 200)
    live_hash = content_hash(proposal["change"])
    assert answer == {
        "key": KEY,
        "value": proposal["change"],
        "reason": "STATIC",
        "variant": live_hash,
        "metadata": {
            "source": "proposal",
            "live_hash": live_hash,
            "position": answer["metadata"]["position"],
            "proposal_id": proposal["proposal_id"],
        },
    }
    assert proposal["position"] < answer["metadata"]["position"] <= active["position"]
    read = app.client.get(f"/api/v1/learning/targets/{TARGET['type']}/{TARGET['id']}", params={"tenant_id": "acme"})
    assert read.json()["live_hash"] == live_hash == proposal["change_hash"]
    post(app.client, "/promotions/rollback", {"proposal_id": proposal["proposal_id"], "reason": "worse"}, 200)
    app.catch_up()
    baseline = evaluate(app, KEY, {"tenant_id": "acme"}, 200)
    assert baseline["value"] == proposal["baseline"] and baseline["variant"] == content_hash(proposal["baseline"])
    assert baseline["metadata"]["source"] == "baseline" and "proposal_id" not in baseline["metadata"]


def test_unknown_flags_and_contexts_answer_in_ofreps_shapes(app: InProcess) -> None:
    never = evaluate(app, KEY, {"tenant_id": "acme"}, 404)
    assert never["errorCode"] == "FLAG_NOT_FOUND" and never["key"] == KEY and never["errorDetails"]
    assert evaluate(app, "no-colon", {"tenant_id": "acme"}, 404)["errorCode"] == "FLAG_NOT_FOUND"
    assert evaluate(app, KEY, {"targetingKey": "u"}, 400)["errorCode"] == "INVALID_CONTEXT"
    assert evaluate(app, KEY, {"tenant_id": 7}, 400)["errorCode"] == "INVALID_CONTEXT"
    assert evaluate(app, KEY, "acme", 400)["errorCode"] == "INVALID_CONTEXT"
    for raw in (b"{", b'{"context": {"tenant_id": "a", "tenant_id": "b"}}', b""):
        answer = app.client.post(f"{FLAGS}/{KEY}", content=raw, headers={"content-type": "application/json"})
        assert answer.status_code == 400 and answer.json()["errorCode"] == "PARSE_ERROR", answer.text
        bulk = app.client.post(FLAGS, content=raw, headers={"content-type": "application/json"})
        assert bulk.status_code == 400 and bulk.json()["errorCode"] == "PARSE_ERROR", bulk.text
        assert "key" not in bulk.json()


def test_flag_keys_take_the_rest_of_the_path(app: InProcess) -> None:
    target = {"type": "routing_rule", "id": "eu/west/1"}
    replay = post(
        app.client, "/replay/evaluate", replay_body(FAMILIES, target=target, change={"route": "eu-west-1b"}), 201
    )
    body = {
        "tenant_id": "acme",
        "replay_id": replay["replay_id"],
        "target": target,
        "risk": "low",
        "change": {"route": "eu-west-1b"},
        "baseline": {"route": "eu-west-1a"},
    }
    proposal = post(app.client, "/promotions/propose", body, 201)
    app.write_approval(proposal)
    post(app.client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)
    active = post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
    app.catch_up()
    answer = app.client.post(
        f"{FLAGS}/routing_rule:eu/west/1",
        params={"min_position": active["position"]},
        json={"context": {"tenant_id": "acme"}},
    )
    assert answer.status_code == 200 and answer.json()["value"] == {"route": "eu-west-1b"}, answer.text


def test_bulk_lists_the_tenants_live_flags_with_an_etag_that_follows_them(app: InProcess) -> None:
    empty = app.client.post(FLAGS, json={"context": {"tenant_id": "acme"}})
    assert empty.status_code == 200 and empty.json() == {"flags": []} and empty.headers["ETag"]
    proposal, _ = live_proposal(app)
    first = app.client.post(FLAGS, json={"context": {"tenant_id": "acme"}})
    assert [f["key"] for f in first.json()["flags"]] == [KEY]
    etag = first.headers["ETag"]
    assert etag != empty.headers["ETag"]
    same = app.client.post(FLAGS, json={"context": {"tenant_id": "acme"}}, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["ETag"] == etag
    weak = app.client.post(FLAGS, json={"context": {"tenant_id": "acme"}}, headers={"If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304
    assert app.client.post(FLAGS, json={"context": {"tenant_id": "globex"}}).json() == {"flags": []}
    post(app.client, "/promotions/rollback", {"proposal_id": proposal["proposal_id"], "reason": "worse"}, 200)
    app.catch_up()
    changed = app.client.post(FLAGS, json={"context": {"tenant_id": "acme"}}, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["flags"][0]["metadata"]["source"] == "baseline"


def _tokens(tmp_path: Path) -> Path:
    def token(name: str, tenants: Any, roles: list[str]) -> dict[str, Any]:
        return {"name": name, "sha256": hashlib.sha256(name.encode()).hexdigest(), "tenants": tenants, "roles": roles}

    tokens = [
        token("admin", "*", ["submitter", "proposer", "operator", "auditor"]),
        token("runtime-acme", ["acme"], ["submitter"]),
        token("runtime-globex", ["globex"], ["submitter"]),
        token("runtime-both", ["acme", "globex"], ["submitter"]),
    ]
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(tokens))
    return path


@pytest.mark.backends(["sqlite"])
def test_tokens_and_tenant_scopes_apply_under_ofrep(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path, api_tokens_file=_tokens(tmp_path)) as app:
        admin = {"Authorization": "Bearer admin"}
        replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201, **admin)
        proposal = post(app.client, "/promotions/propose", propose_body(replay["replay_id"]), 201, **admin)
        app.write_approval(proposal)
        post(app.client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200, **admin)
        post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200, **admin)
        app.catch_up()
        unauthenticated = evaluate(app, KEY, {"tenant_id": "acme"}, 401)
        assert unauthenticated["errorCode"] == "GENERAL"
        implied = evaluate(app, KEY, {}, 200, Authorization="Bearer runtime-acme")
        assert implied["value"] == proposal["change"]
        assert evaluate(app, KEY, {}, 400, Authorization="Bearer runtime-both")["errorCode"] == "INVALID_CONTEXT"
        assert evaluate(app, KEY, {"tenant_id": "acme"}, 200, Authorization="Bearer runtime-both")["value"]
        others = evaluate(app, KEY, {"tenant_id": "acme"}, 404, Authorization="Bearer runtime-globex")
        unknown = evaluate(app, KEY, {"tenant_id": "globex"}, 404, Authorization="Bearer runtime-globex")
        assert others["errorCode"] == unknown["errorCode"] == "FLAG_NOT_FOUND"
        assert others["errorDetails"] == unknown["errorDetails"]
        bulk = app.client.post(FLAGS, json={"context": {"tenant_id": "acme"}}, headers={"Authorization": "Bearer x"})
        assert bulk.status_code == 401 and bulk.json()["errorCode"] == "GENERAL"
        hidden = app.client.post(
            FLAGS, json={"context": {"tenant_id": "acme"}}, headers={"Authorization": "Bearer runtime-globex"}
        )
        assert hidden.status_code == 200 and hidden.json() == {"flags": []}


# ----- the OpenFeature Python SDK and the community OFREP provider, against a real server -----------------------


@pytest.fixture
def token_server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    with serve(database_url, tmp_path, DOBBY_API_TOKENS_FILE=str(_tokens(tmp_path))) as running:
        yield running


def _sdk_client(server: Server, token: str) -> OpenFeatureClient:
    provider = OFREPProvider(server.url, headers_factory=lambda: {"Authorization": f"Bearer {token}"})
    api.set_provider(provider, domain=token)
    return api.get_client(domain=token)


@pytest.mark.backends(["sqlite"])
def test_the_openfeature_sdk_reads_governed_content_through_ofrep(token_server: Server) -> None:
    admin = {"Authorization": "Bearer admin"}
    with token_server.client() as http:

        def step(path: str, body: Any) -> dict[str, Any]:
            answer = http.post(f"/api/v1/learning{path}", json=body, headers=admin)
            assert answer.status_code in (200, 201), answer.text
            result: dict[str, Any] = answer.json()
            return result

        replay = step("/replay/evaluate", replay_body(FAMILIES))
        proposal = step("/promotions/propose", propose_body(replay["replay_id"]))
        token_server.approvals.mkdir(parents=True, exist_ok=True)
        (token_server.approvals / f"{proposal['proposal_id']}.json").write_text(json.dumps(warp_approval(proposal)))
        step("/promotions/approve-check", {"proposal_id": proposal["proposal_id"]})
        step("/promotions/activate", {"proposal_id": proposal["proposal_id"]})
        runtime = _sdk_client(token_server, "runtime-acme")
        context = EvaluationContext(targeting_key="user-1", attributes={"tenant_id": "acme"})

        def reads(expected: dict[str, Any]) -> bool:
            return runtime.get_object_value(KEY, {}, context) == expected

        assert eventually(lambda: reads(proposal["change"]))
        details = runtime.get_object_details(KEY, {}, context)
        assert details.variant == content_hash(proposal["change"]) and details.reason == "STATIC"
        assert details.flag_metadata["proposal_id"] == proposal["proposal_id"]
        step("/promotions/rollback", {"proposal_id": proposal["proposal_id"], "reason": "conversion dropped"})
        assert eventually(lambda: reads(proposal["baseline"]))
        missing = runtime.get_object_details("prompt_template:never-proposed", {"fallback": True}, context)
        assert missing.error_code == ErrorCode.FLAG_NOT_FOUND and missing.value == {"fallback": True}
        other = _sdk_client(token_server, "runtime-globex")
        refused = other.get_object_details(KEY, {"fallback": True}, context)
        assert refused.error_code == ErrorCode.FLAG_NOT_FOUND and refused.value == {"fallback": True}
        implied = other.get_object_details(KEY, {"fallback": True})
        assert implied.error_code == ErrorCode.FLAG_NOT_FOUND
