"""Many clients racing over HTTP on the same proposals and targets, and Hypothesis-made bodies for every route:
the lifecycle invariants hold, nothing answers 5xx, and nothing is stored for a refused request."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dobby.engine.rules.lifecycle import next_state
from tests.support import (
    FAMILIES,
    LEARNING,
    AppClient,
    InProcess,
    approved,
    head_position,
    intake_body,
    post,
    propose_body,
    race,
    replay_body,
    serve_in_process,
)

RACE_CLIENTS = 12
RACE_REQUESTS = 40


def racer(client: AppClient, proposals: list[str], seed: int) -> list[int]:
    """RACE_REQUESTS random activations, rollbacks and approve-checks on `proposals`: their statuses."""
    chooser = random.Random(seed)
    statuses = []
    for _ in range(RACE_REQUESTS):
        pid = chooser.choice(proposals)
        action = chooser.choice(["activate", "activate", "rollback", "approve-check"])
        body: dict[str, Any] = {"proposal_id": pid}
        if action == "rollback":
            body["reason"] = "race"
        statuses.append(client.post(f"{LEARNING}/promotions/{action}", json=body).status_code)
    return statuses


@pytest.mark.backends(["sqlite", "postgres"])
def test_racing_clients_keep_one_active_proposal_per_target(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path, promotion_velocity_max=1000) as app:
        proposals = [approved(app, 0.90 + index / 1000)["proposal_id"] for index in range(6)]
        results = race([partial(racer, app.client, proposals, seed) for seed in range(RACE_CLIENTS)])
        failed = [result for result in results if isinstance(result, Exception)]
        assert not failed, failed  # every client made all its requests
        statuses = [status for result in results if not isinstance(result, Exception) for status in result]
        assert all(status < 500 for status in statuses), sorted(set(statuses))
        histories = [app.client.get(f"{LEARNING}/proposals/{pid}/history").json() for pid in proposals]
        active = [h for h in histories if h["events"][-1]["state_after"] == "active"]
        assert len(active) <= 1
        for history in histories:
            assert history["chain_valid"] is True
            state = None
            for event in history["events"]:
                state = next_state(state, event["type"])
                assert state is not None


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    directory = tmp_path_factory.mktemp("fuzz")
    with serve_in_process(f"sqlite:///{directory / 'fuzz.db'}", directory) as app:
        replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES), 201)
        post(app.client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
        yield app


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
edge_strings = st.sampled_from(["", "\u0000", "\ud7ff", "💥", "e\u0301", "\u202e", "a" * 5000, "🏳️‍🌈", "null"])
WRITE_PATHS = [
    "/signals/intake",
    "/replay/evaluate",
    "/promotions/propose",
    "/promotions/approve-check",
    "/promotions/activate",
    "/promotions/rollback",
]


def near_valid_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Valid bodies with one field replaced: the shapes most likely to slip past a careless check."""
    bases = [intake_body(FAMILIES), replay_body(FAMILIES), propose_body("00000000-0000-0000-0000-000000000000")]
    return st.builds(
        lambda base, key, value: {**base, key: value},
        st.sampled_from(bases),
        st.sampled_from(["tenant_id", "target", "metrics", "family_versions", "steps", "change", "risk", "outcome"]),
        json_values | edge_strings,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(WRITE_PATHS), body=json_values | near_valid_bodies())
def test_generated_bodies_never_get_a_5xx_and_refusals_store_nothing(fuzz_app: InProcess, path: str, body: Any) -> None:
    client = fuzz_app.client
    before = head_position(client)
    answer = client.post(
        f"{LEARNING}{path}", content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    assert answer.status_code < 500, answer.text
    assert "error" in answer.json() or answer.status_code in (200, 201)
    if answer.status_code >= 400:
        assert head_position(client) == before, "a refused request stored something"


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"", "application/json", 400),
        (b"{", "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b'{"a": Infinity}', "application/json", 400),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "application/json", 422),
        (b'{"tenant_id": "x"}', "text/plain", 415),
        (b'{"tenant_id": "x"}', "application/x-www-form-urlencoded", 415),
        (b'"just a string"', "application/json", 422),
    ],
)
def test_hostile_bodies(fuzz_app: InProcess, content: bytes, content_type: str, status: int) -> None:
    for path in WRITE_PATHS:
        answer = fuzz_app.client.post(f"{LEARNING}{path}", content=content, headers={"content-type": content_type})
        assert answer.status_code == status, (path, answer.text[:300])
