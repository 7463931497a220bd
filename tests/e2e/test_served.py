"""`served` on intake (SPEC §4.2, §15): a trace names the governed content it ran, and leads back to it."""

from __future__ import annotations

import pytest

from dobby.engine.kernel.canonical import content_hash
from tests.support import FAMILIES, INTAKE, LEARNING, TARGET, InProcess, intake_body, post

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
LIVE = {"template": "Hello, {name}!"}
LIVE_HASH = content_hash(LIVE)


def test_a_run_shows_what_it_served_and_the_runs_list_finds_it_by_live_hash(app: InProcess) -> None:
    served = [{**TARGET, "live_hash": LIVE_HASH}]
    with_served = app.client.post(INTAKE, json=intake_body(FAMILIES, trace_id="t-served", served=served))
    assert with_served.status_code == 201, with_served.text
    without = post(app.client, "/signals/intake", intake_body(FAMILIES, trace_id="t-plain"), 201)
    other = [{**TARGET, "live_hash": content_hash({"template": "Hi {name}"})}]
    post(app.client, "/signals/intake", intake_body(FAMILIES, trace_id="t-other", served=other), 201)
    app.catch_up()
    run = app.client.get(f"{LEARNING}/runs/{with_served.json()['run_id']}").json()
    assert run["served"] == served
    assert app.client.get(f"{LEARNING}/runs/{without['run_id']}").json()["served"] == []
    found = app.client.get(f"{LEARNING}/runs", params={"live_hash": LIVE_HASH, "tenant_id": "acme"}).json()
    assert [item["trace_id"] for item in found["items"]] == ["t-served"]
    nothing = app.client.get(f"{LEARNING}/runs", params={"live_hash": content_hash({"x": 1})}).json()
    assert nothing["items"] == []
    bad = app.client.get(f"{LEARNING}/runs", params={"live_hash": "sha256:XYZ"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "live_hash"


def test_served_is_hashed_as_given_and_absent_when_absent(app: InProcess) -> None:
    body = intake_body(FAMILIES, trace_id="t-hash")
    plain = post(app.client, "/signals/intake", body, 201)
    assert plain["run_hash"] == content_hash(body)
    served = intake_body(FAMILIES, trace_id="t-hash", served=[{**TARGET, "live_hash": LIVE_HASH}])
    named = post(app.client, "/signals/intake", served, 201)
    assert named["run_hash"] == content_hash(served) != plain["run_hash"]
    assert post(app.client, "/signals/intake", served, 200)["duplicate"] is True


def test_a_served_item_must_name_a_hash(app: InProcess) -> None:
    for item, field in (
        ({**TARGET, "live_hash": "md5:abc"}, "served[0].live_hash"),
        ({"type": "prompt_template", "live_hash": LIVE_HASH}, "served[0].id"),
        ({**TARGET, "live_hash": LIVE_HASH, "extra": 1}, "served[0].extra"),
    ):
        answer = app.client.post(INTAKE, json=intake_body(FAMILIES, served=[item]))
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"][0]["field"] == field
