"""Integers as JSON Schema reads them (issue 24): a number with a zero fractional part (`2.0`, `4105.0`, `1e3`) is
the integer it equals, in a body and in a query; a fraction, infinity, a value out of range, a boolean or a string
is still refused as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from dobby.http.app import create_app
from tests.support import (
    LEARNING,
    AppClient,
    SystemWorld,
    catch_up,
    intake_body,
    make_system,
    propose_body,
    replay_body,
    running_app,
)

JSON = {"content-type": "application/json"}
SUMMARIES = {
    "baseline": {"accuracy": {"mean": 0.80, "sd": 0.1, "n": 400}},
    "candidate": {"accuracy": {"mean": 0.86, "sd": 0.1, "n": 400}},
}
CONTRACT = {"mode": "all", "metrics": {"accuracy": {"direction": "increase"}}}
INTEGER_INTAKE_RUN_HASH = "sha256:5e04259eb61186e76a6f7f374ad87feb533e1aa0b7884d3de70e3e8db2aac45e"


@pytest.fixture
def app(database_url: str) -> Iterator[tuple[SystemWorld, AppClient]]:
    with (
        make_system(database_url) as world,
        running_app(create_app(world.system, background=False), lifespan=False) as client,
    ):
        yield world, client


def send(client: AppClient, route: str, raw: str) -> tuple[int, dict[str, Any]]:
    answer = client.post(f"{LEARNING}/{route}", content=raw.encode(), headers=JSON)
    return answer.status_code, answer.json()


def intake_text(world: SystemWorld, count: str) -> str:
    body = intake_body(world.families, steps=[{"name": "s", "attributes": {"count": 0}}])
    return json.dumps(body).replace('{"count": 0}', '{"count": ' + count + "}")


@pytest.mark.backends(["sqlite", "postgres"])
def test_a_number_outside_an_integer_field_is_held_and_hashed_as_written(app: tuple[SystemWorld, AppClient]) -> None:
    """SPEC §3: `1` is not `1.0`, and bodies are hashed as given: only an integer field reads `2.0` as 2."""
    world, client = app
    status, with_digits = send(client, "signals/intake", intake_text(world, "2"))
    assert status == 201 and with_digits["run_hash"] == INTEGER_INTAKE_RUN_HASH, with_digits  # as before this change
    status, with_fraction = send(client, "signals/intake", intake_text(world, "2.0"))
    assert (status, with_fraction["duplicate"]) == (201, False), with_fraction
    assert with_fraction["run_hash"] != with_digits["run_hash"]


@pytest.mark.backends(["sqlite", "postgres"])
@pytest.mark.parametrize("written", ["4e2", "400.0", "4.00e2", "40000e-2"])
def test_every_way_of_writing_an_integer_field_finds_the_same_replay(
    app: tuple[SystemWorld, AppClient], written: str
) -> None:
    world, client = app
    text = json.dumps(replay_body(world.families, metrics=SUMMARIES, threshold_contract=CONTRACT))
    _, first = send(client, "replay/evaluate", text)
    status, again = send(client, "replay/evaluate", text.replace('"n": 400', f'"n": {written}'))
    assert (status, again["duplicate"], again["replay_id"]) == (200, True, first["replay_id"]), again


@pytest.mark.backends(["sqlite", "postgres"])
def test_integer_fields_take_numbers_with_a_zero_fraction(app: tuple[SystemWorld, AppClient]) -> None:
    world, client = app
    text = json.dumps(replay_body(world.families, metrics=SUMMARIES, threshold_contract=CONTRACT))
    status, replay = send(client, "replay/evaluate", text.replace('"n": 400', '"n": 400.0'))
    assert (status, replay["verdict"]) == (201, "passed"), replay
    status, again = send(client, "replay/evaluate", text)
    assert (status, again["duplicate"], again["replay_id"]) == (200, True, replay["replay_id"]), again
    proposal = json.dumps(propose_body(replay["replay_id"], ttl_seconds=4105))
    written = proposal.replace('"ttl_seconds": 4105', '"ttl_seconds": 4.105e3')
    status, proposed = send(client, "promotions/propose", written)
    assert status == 201, proposed
    lifetime = datetime.fromisoformat(proposed["expires_at"]) - datetime.fromisoformat(proposed["created_at"])
    assert lifetime == timedelta(seconds=4105)
    status, again = send(client, "promotions/propose", proposal)
    assert (status, again["duplicate"], again["proposal_id"]) == (200, True, proposed["proposal_id"]), again


@pytest.mark.backends(["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("written", "detail"),
    [
        ("2.5", "invalid"),
        ("1e999", "invalid"),
        ("31536001.0", "invalid"),
        ("1e20", "invalid"),
        ("9007199254740993.0", "invalid"),
        ("99999999999999999999", "integer_out_of_range"),
        ("true", "invalid"),
        ('"3600"', "invalid"),
    ],
)
def test_integer_fields_refuse_what_is_no_integer_in_range_as_before(
    app: tuple[SystemWorld, AppClient], written: str, detail: str
) -> None:
    world, client = app
    _, replay = send(client, "replay/evaluate", json.dumps(replay_body(world.families)))
    before = world.engine.position()
    raw = json.dumps(propose_body(replay["replay_id"], ttl_seconds=0))
    raw = raw.replace('"ttl_seconds": 0', f'"ttl_seconds": {written}')
    status, answer = send(client, "promotions/propose", raw)
    assert (status, answer["error"]["code"]) == (422, "invalid_input"), answer
    assert answer["error"]["details"][0]["code"] == detail
    assert answer["error"]["details"][0].get("field") in ("ttl_seconds", None)
    assert world.engine.position() == before


@pytest.mark.backends(["sqlite", "postgres"])
def test_integer_query_parameters_take_numbers_with_a_zero_fraction(app: tuple[SystemWorld, AppClient]) -> None:
    world, client = app
    for trace in ("trace-1", "trace-2"):
        send(client, "signals/intake", json.dumps(intake_body(world.families, trace_id=trace)))
    catch_up(world.system)
    page = client.get(f"{LEARNING}/runs", params={"limit": "1.0", "min_position": "2e0"})
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 1 and page.json()["next_cursor"] is not None
    history = client.get(f"{LEARNING}/proposals/unknown/history", params={"as_of_version": "1.0"})
    assert history.status_code == 404, history.text


@pytest.mark.backends(["sqlite", "postgres"])
@pytest.mark.parametrize(
    "query",
    [
        {"limit": "2.5"},
        {"limit": "1e999"},
        {"limit": "5.01e2"},
        {"limit": "true"},
        {"limit": "+1"},
        {"min_position": "0.5"},
        {"min_position": "1e30"},
        {"min_position": "-1.0"},
    ],
)
def test_integer_query_parameters_refuse_what_is_no_integer_in_range(
    app: tuple[SystemWorld, AppClient], query: dict[str, str]
) -> None:
    _, client = app
    answer = client.get(f"{LEARNING}/runs", params=query)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["error"]["details"][0]
    assert (detail["code"], detail["field"]) == ("out_of_range", next(iter(query)))


@pytest.mark.backends(["sqlite"])
def test_an_integer_beyond_2_to_the_53_is_refused_naming_where_it_stands(app: tuple[SystemWorld, AppClient]) -> None:
    world, client = app
    status, answer = send(client, "signals/intake", intake_text(world, "[1, -9007199254740993]"))
    assert (status, answer["error"]["code"]) == (422, "invalid_input"), answer
    detail = answer["error"]["details"][0]
    assert (detail["code"], detail["field"]) == ("integer_out_of_range", "steps[0].attributes.count[1]")
    assert world.engine.position() == 0
