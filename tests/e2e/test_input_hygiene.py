"""SPEC §4 "Input hygiene", case by case, in-process: each hostile body gets its clear refusal and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dobby.http.app import create_app
from tests.support import LEARNING, AppClient, SystemWorld, intake_body, make_system, replay_body, running_app

JSON = {"content-type": "application/json"}


@pytest.fixture
def app(database_url: str) -> Iterator[tuple[SystemWorld, AppClient]]:
    with (
        make_system(database_url) as world,
        running_app(create_app(world.system, background=False), lifespan=False) as client,
    ):
        yield world, client


def intake_text(world: SystemWorld, **overrides: object) -> str:
    return json.dumps(intake_body(world.families, **overrides), ensure_ascii=False)


def refusal(client: AppClient, route: str, raw: str) -> tuple[int, str, list[str | None]]:
    answer = client.post(f"{LEARNING}/{route}", content=raw.encode(), headers=JSON)
    error = answer.json()["error"]
    return answer.status_code, error["code"], [detail.get("field") for detail in error["details"]]


@pytest.mark.backends(["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ('"trace-1"', '"\\ud800"', (400, "malformed_json")),
        ('"trace-1"', '"trace\\u0000"', (422, "invalid_input", "trace_id")),
        ('"trace-1"', '"trace\\u0007"', (422, "invalid_input", "trace_id")),
        ('"corr-1"', '"corr\\u007f"', (422, "invalid_input", "correlation_id")),
        ('"ALLOW"', '"ALLOW", "tenant_id": "other"', (400, "malformed_json")),
        ('"success"', "1e999", (422, "invalid_input", "outcome")),
    ],
)
def test_hostile_scalars_are_refused_naming_the_field(
    app: tuple[SystemWorld, AppClient], replace: str, by: str, expected: tuple[object, ...]
) -> None:
    world, client = app
    status, code, fields = refusal(client, "signals/intake", intake_text(world).replace(replace, by, 1))
    assert (status, code) == expected[:2]
    if len(expected) > 2:
        assert fields[0] == expected[2]
    assert world.engine.position() == 0


@pytest.mark.backends(["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("attributes", "code", "status"),
    [
        ('{"x": 1e999}', "invalid_input", 422),
        ('{"x": 99999999999999999999}', "invalid_input", 422),
        ('{"x": "\\u0000"}', "invalid_input", 422),
        ('{"\\u0000": 1}', "invalid_input", 422),
        ('{"x": 1, "x": 2}', "malformed_json", 400),
        ('{"x": "\\udc00"}', "malformed_json", 400),
        ('{"x": ' + "[" * 40 + "]" * 40 + "}", "invalid_input", 422),
    ],
)
def test_free_form_objects_take_any_json_within_the_rules(
    app: tuple[SystemWorld, AppClient], attributes: str, code: str, status: int
) -> None:
    world, client = app
    raw = intake_text(world, steps=[{"name": "s", "attributes": {"placeholder": 0}}])
    raw = raw.replace('{"placeholder": 0}', attributes)
    assert refusal(client, "signals/intake", raw)[:2] == (status, code)
    assert world.engine.position() == 0


@pytest.mark.backends(["sqlite", "postgres"])
def test_a_nul_inside_a_free_form_object_is_named_by_its_path(app: tuple[SystemWorld, AppClient]) -> None:
    world, client = app
    raw = intake_text(world, steps=[{"name": "s", "attributes": {"deep": ["ok", "bad\x00"]}}])
    assert refusal(client, "signals/intake", raw) == (422, "invalid_input", ["steps[0].attributes.deep[1]"])


@pytest.mark.backends(["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("baseline", "candidate", "rule"),
    [
        (-1e308, 1e308, {"direction": "increase"}),
        (1e308, -1.7e308, {"direction": "decrease"}),
        (1e-300, 1e300, {"direction": "increase", "relative": True}),
    ],
)
def test_a_judgement_that_leaves_the_double_range_is_refused(
    app: tuple[SystemWorld, AppClient], baseline: float, candidate: float, rule: dict[str, object]
) -> None:
    world, client = app
    body = replay_body(
        world.families,
        metrics={"baseline": {"m": baseline}, "candidate": {"m": candidate}},
        threshold_contract={"mode": "all", "metrics": {"m": rule}},
    )
    status, code, fields = refusal(client, "replay/evaluate", json.dumps(body))
    assert (status, code, fields) == (422, "metric_out_of_range", ["metrics.candidate.m"])
    assert world.engine.position() == 0


@pytest.mark.backends(["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"cursor": "99999999999999999999"}, "cursor"),
        ({"cursor": "-1"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "99999999999999999999999"}, "limit"),
        ({"min_position": "99999999999999999999"}, "min_position"),
        ({"min_position": "x"}, "min_position"),
    ],
)
def test_query_parameters_out_of_range_are_422(
    app: tuple[SystemWorld, AppClient], query: dict[str, str], field: str
) -> None:
    _, client = app
    answer = client.get(f"{LEARNING}/runs", params=query)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == field


@pytest.mark.backends(["sqlite"])
def test_as_of_version_out_of_range_is_422(app: tuple[SystemWorld, AppClient]) -> None:
    _, client = app
    for version in ("0", "99999999999999999999", "x"):
        answer = client.get(
            f"{LEARNING}/proposals/00000000-0000-0000-0000-000000000000/history", params={"as_of_version": version}
        )
        assert (answer.status_code, answer.json()["error"]["details"][0]["field"]) == (422, "as_of_version")
