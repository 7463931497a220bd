"""Hostile but valid-looking bodies in every field of every command, as raw bytes (SPEC §4 "Input hygiene"):
never a 5xx, a refusal stores nothing, an accepted write is readable through the projections, verify stays clean."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dobby.http.app import create_app
from dobby.projections.rebuild import verify
from tests.support import (
    LEARNING,
    AppClient,
    SystemWorld,
    approved_proposal,
    intake_body,
    make_system,
    passed_replay,
    propose_body,
    replay_body,
    running_app,
)

SENTINEL = "\u2063hostile\u2063"
RAW_FRAGMENTS = [
    "1e999",
    "-1e999",
    "1e308",
    "-1.7976931348623157e308",
    "99999999999999999999999",
    "9007199254740993",
    "-9007199254740993",
    '"\\ud800"',
    '"x\\udc00"',
    '"a\\u0000b"',
    '"\\u0000"',
    '"\\u0001tenant"',
    '"\\u007f"',
    '"\\\\u0000"',
    '{"a": 1, "a": 2}',
    '{"\\u0000": 1}',
    "[" * 40 + "]" * 40,
    '{"k": ' * 40 + "1" + "}" * 40,
    "NaN",
    "Infinity",
    '""',
    "null",
    "true",
    "[]",
    "{}",
    "0",
    "-0.0",
    "5e-324",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
hostile = st.sampled_from(RAW_FRAGMENTS) | json_values.map(lambda value: json.dumps(value, ensure_ascii=False))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in `value` a hostile value can go: each member and item, and one new member per object."""
    if isinstance(value, dict):
        yield (*prefix, SENTINEL)
        for key, item in value.items():
            yield (*prefix, key)
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from paths(item, (*prefix, index))


def with_hostile(body: dict[str, Any], path: tuple[Any, ...], fragment: str) -> bytes:
    """`body` as JSON text with the value at `path` replaced by the raw `fragment` (which may not be JSON at all)."""
    copy = json.loads(json.dumps(body))
    holder: Any = copy
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = SENTINEL
    return json.dumps(copy, ensure_ascii=False).replace(json.dumps(SENTINEL, ensure_ascii=False), fragment).encode()


class Stage:
    """A world with a passed replay, an approved and an active proposal: something for every command to act on."""

    def __init__(self, world: SystemWorld, client: AppClient) -> None:
        self.world, self.client = world, client
        families = world.families
        self.replay = passed_replay(world, 0.95)
        self.approved = approved_proposal(world, 0.96, target={"type": "prompt_template", "id": "hostile-a"})
        active = approved_proposal(world, 0.97, target={"type": "prompt_template", "id": "hostile-b"})
        world.activate(active["proposal_id"], actor="op")
        self.bodies: dict[str, dict[str, Any]] = {
            "signals/intake": intake_body(
                families,
                steps=[{"name": "s", "tenant_id": "acme", "classification": "c", "attributes": {"k": [1, "v"]}}],
                source_events=[{"event_id": "e1", "kind": "k"}],
                security_critical=False,
            ),
            "replay/evaluate": replay_body(families),
            "promotions/propose": propose_body(self.replay["replay_id"], rationale="why", ttl_seconds=60),
            "promotions/approve-check": {"proposal_id": self.approved["proposal_id"]},
            "promotions/activate": {"proposal_id": self.approved["proposal_id"]},
            "promotions/rollback": {"proposal_id": active["proposal_id"], "reason": "hostile"},
        }


@pytest.fixture
def stage(database_url: str) -> Iterator[Stage]:
    with (
        make_system(database_url, replay_budget=100_000, promotion_velocity_max=100_000) as world,
        running_app(create_app(world.system, background=False), lifespan=False) as client,
    ):
        yield Stage(world, client)


@pytest.mark.backends(["sqlite", "postgres"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_bodies_never_get_a_5xx_and_refusals_store_nothing(stage: Stage, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(sorted(stage.bodies)))
    body = stage.bodies[route]
    path = data.draw(st.sampled_from(list(paths(body))))
    raw = with_hostile(body, path, data.draw(hostile))
    before = stage.world.engine.position()
    answer = stage.client.post(f"{LEARNING}/{route}", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code < 500, (route, raw, answer.text)
    if answer.status_code >= 400:
        assert answer.json()["error"]["code"]
        assert stage.world.engine.position() == before, (route, raw, answer.text)
        return
    position = answer.json()["position"]
    stage.world.catch_up()
    if route == "signals/intake" and answer.json().get("accepted"):
        read = stage.client.get(f"{LEARNING}/runs/{answer.json()['run_id']}", params={"min_position": position})
        assert read.status_code == 200, read.text
    elif route == "replay/evaluate":
        read = stage.client.get(f"{LEARNING}/replays/{answer.json()['replay_id']}", params={"min_position": position})
        assert read.status_code == 200, read.text


@pytest.mark.backends(["sqlite", "postgres"])
def test_what_the_boundary_accepted_every_projection_stores_and_verifies(stage: Stage) -> None:
    """Unicode at its edges and numbers at the ends of the double range go in, fold, and verify."""
    edges = intake_body(
        stage.world.families,
        trace_id="edge-\U0010ffff-\u2028-\ufeff",
        steps=[{"name": "s", "attributes": {"max": 1.7976931348623157e308, "tiny": 5e-324, "big": 2**53, "é": "𝄞"}}],
    )
    answer = stage.client.post(f"{LEARNING}/signals/intake", json=edges)
    assert answer.status_code == 201, answer.text
    stage.world.catch_up()
    run = stage.client.get(
        f"{LEARNING}/runs/{answer.json()['run_id']}", params={"min_position": answer.json()["position"]}
    )
    assert run.json()["trace_id"] == edges["trace_id"]
    store, log = stage.world.system.store, stage.world.log
    assert {name: verify(store, log, name) for name in store.projections} == {name: [] for name in store.projections}


READS = {
    "runs": ["tenant_id", "outcome", "trace_id", "limit", "cursor", "min_position"],
    "replays": ["tenant_id", "verdict", "target_type", "target_id", "limit", "cursor"],
    "proposals": ["tenant_id", "state", "target_type", "target_id", "revalidate_required", "limit", "cursor"],
    "freezes": ["tenant_id", "include", "limit", "cursor", "min_position"],
    "decisions": ["tenant_id", "limit", "cursor", "min_position"],
}
hostile_text = st.text(max_size=30) | st.sampled_from(["\x00", "a\x00b", "\x7f", "9" * 40, "-1", "", "x" * 300])


@pytest.mark.backends(["sqlite"])
@pytest.mark.parametrize("digit", ["¹", "²", "٣", "５", "1١"])
def test_digits_of_other_scripts_are_refused_as_numbers(stage: Stage, digit: str) -> None:
    """`str.isdigit` takes these and `int` refuses (or reads) some of them: a query number is 0–9 only (was a 500)."""
    for path, name in (("runs", "limit"), ("runs", "cursor"), ("runs", "min_position"), ("proposals", "limit")):
        answer = stage.client.get(f"{LEARNING}/{path}", params={name: digit})
        assert answer.status_code == 422, (path, name, answer.text)


@pytest.mark.backends(["sqlite", "postgres"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_query_parameters_and_path_ids_never_get_a_5xx(stage: Stage, data: st.DataObject) -> None:
    stage.world.catch_up()  # what other tests wrote is folded: a min_position up to the head answers at once
    kind = data.draw(st.sampled_from(sorted(READS)))
    params = data.draw(st.dictionaries(st.sampled_from(READS[kind]), hostile_text, max_size=3))
    listed = stage.client.get(f"{LEARNING}/{kind}", params=params)
    assert listed.status_code < 500, (kind, params, listed.text)
    identity = quote(data.draw(hostile_text), safe="")
    for path in (f"{kind}/{identity}", f"proposals/{identity}/history", f"proposals/{identity}/explain"):
        read = stage.client.get(f"{LEARNING}/{path}", params={"as_of_version": data.draw(hostile_text)})
        assert read.status_code < 500, (path, read.text)
