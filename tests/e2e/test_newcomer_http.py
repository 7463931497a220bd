"""What a newcomer meets over HTTP (issue 25): `/` leads to the console, as_of_version beyond the stream is out of
range, and every list takes since/until (SPEC §4, §4.8, §7)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dobby.engine.kernel.clock import rfc3339
from tests.support import (
    FAMILIES,
    LEARNING,
    FakeClock,
    InProcess,
    intake_body,
    post,
    propose_body,
    replay_body,
    serve_in_process,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


@pytest.fixture
def timed(database_url: str, tmp_path: Path) -> Iterator[tuple[InProcess, FakeClock]]:
    clock = FakeClock()
    with serve_in_process(database_url, tmp_path, clock=clock) as app:
        yield app, clock


def test_the_root_leads_to_the_console(app: InProcess) -> None:
    answer = app.client.get("/", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/console"


def test_as_of_version_beyond_the_stream_is_out_of_range(app: InProcess) -> None:
    replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
    proposal = post(app.client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
    history = f"{LEARNING}/proposals/{proposal['proposal_id']}/history"
    assert app.client.get(history, params={"as_of_version": 1}).status_code == 200
    beyond = app.client.get(history, params={"as_of_version": 2})
    assert beyond.status_code == 422, beyond.text
    assert beyond.json()["error"]["details"][0]["field"] == "as_of_version"


def test_every_list_takes_since_and_until(timed: tuple[InProcess, FakeClock]) -> None:
    app, clock = timed
    early = rfc3339(clock.now)
    post(app.client, "/signals/intake", intake_body(FAMILIES, trace_id="early"), 201)
    first = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
    post(app.client, "/promotions/propose", propose_body(first["replay_id"]), 201)
    freeze = {"tenant_id": "acme", "ends_at": "2026-01-02T00:00:00Z", "reason": "early freeze"}
    post(app.client, "/freezes", freeze, 201)
    clock.advance(3600)
    middle = rfc3339(clock.now)
    post(app.client, "/signals/intake", intake_body(FAMILIES, trace_id="late"), 201)
    body = replay_body(FAMILIES, target={"type": "prompt_template", "id": "late"})
    second = post(app.client, "/replay/evaluate", body, 201)
    later = propose_body(second["replay_id"], target={"type": "prompt_template", "id": "late"})
    post(app.client, "/promotions/propose", later, 201)
    post(app.client, "/freezes", {**freeze, "reason": "late freeze"}, 201)
    app.catch_up()

    def listed(path: str, key: str, **params: str) -> list[str]:
        answer = app.client.get(f"{LEARNING}/{path}", params={"tenant_id": "acme", **params})
        assert answer.status_code == 200, answer.text
        return [str(item[key]) for item in answer.json()["items"]]

    assert listed("runs", "trace_id", since=middle) == ["late"]
    assert listed("runs", "trace_id", until=middle) == ["early"]
    assert listed("runs", "trace_id", since=early, until=middle) == ["early"]
    assert listed("replays", "replay_id", since=middle) == [second["replay_id"]]
    assert len(listed("proposals", "proposal_id", until=middle)) == 1
    assert len(listed("proposals", "proposal_id", since=middle)) == 1
    assert listed("freezes", "reason", since=middle) == ["late freeze"]
    assert listed("freezes", "reason", until=middle) == ["early freeze"]
    assert listed("decisions", "proposal_id", since="2030-01-01T00:00:00+02:00") == []
    for bad in ("yesterday", "2026-01-01T00:00:00", "1969-12-31T23:59:59Z"):
        answer = app.client.get(f"{LEARNING}/runs", params={"since": bad})
        assert answer.status_code == 422 and answer.json()["error"]["details"][0]["field"] == "since", answer.text
    refused = app.client.get(f"{LEARNING}/freezes", params={"tenant_id": "acme", "until": "soon"})
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "until"
