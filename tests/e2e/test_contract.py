"""The published contract is the server: every body in schemas/, 405s naming every method, strict enums."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from dobby.http.routes import OPERATIONS, command_bodies
from tests.support import InProcess

pytestmark = pytest.mark.backends(["sqlite"])


def test_every_body_of_the_route_table_has_its_schema() -> None:
    bodies = {o.body for o in OPERATIONS if o.body is not None}
    assert set(command_bodies().values()) == bodies
    assert command_bodies()["activate"].__name__ == "Activate"


def test_a_method_a_path_lacks_is_refused_naming_every_method_it_has(app: InProcess) -> None:
    answer = app.client.request("OPTIONS", "/api/v1/learning/freezes")
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} >= {"GET", "POST"}


@pytest.mark.parametrize(
    "path",
    [
        "/ready?strict=maybe",
        "/api/v1/contract?min_position=abc",
        "/api/v1/audit/checkpoint?min_position=999999",  # beyond the log's head (SPEC §4: every read takes it)
        "/api/v1/audit/key?min_position=999999",
    ],
)
def test_a_query_outside_the_contract_is_refused(app: InProcess, path: str) -> None:
    answer = app.client.get(path)
    assert answer.status_code == 422, answer.text


def test_a_parameter_given_twice_is_refused_naming_it(app: InProcess) -> None:
    answer = app.client.get("/api/v1/learning/runs?tenant_id=acme&limit=5&limit=6")
    assert answer.status_code == 422, answer.text
    assert [detail["field"] for detail in answer.json()["error"]["details"]] == ["limit"]


def test_every_operation_is_documented(app: InProcess) -> None:
    document = app.client.get("/openapi.json").json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert operation["summary"] and operation["description"] and operation["tags"], (method, path)
            if "requestBody" in operation:
                assert "example" in operation["requestBody"]["content"]["application/json"], (method, path)
    activate = document["paths"]["/api/v1/learning/promotions/activate"]["post"]["responses"]
    assert "202" in activate
    assert "velocity_breaker_open" in activate["422"]["description"]


def test_a_path_under_ofrep_that_names_nothing_answers_in_ofreps_shape(app: InProcess) -> None:
    answer = app.client.post("/ofrep/v1/nothing-here", json={"context": {"tenant_id": "acme"}})
    assert answer.status_code == 404
    assert answer.json()["errorCode"] == "FLAG_NOT_FOUND"


def _examples(document: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """Every example of the document with the schema it illustrates: each request body's and each answer's."""
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            media = [(f"{where} body", operation["requestBody"])] if "requestBody" in operation else []
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    assert response.get("content"), f"{where} {status} shows no answer"
                    media.append((f"{where} {status}", response))
            for name, holder in media:
                for kind, content in holder["content"].items():
                    assert "example" in content, f"{name} ({kind}) has no example"
                    found.append((name, content["example"], content["schema"]))
    return found


def _closed(schema: Any) -> Any:
    """`schema` with every object that names its properties closed to others: an example shows no field the
    answer lacks (a misspelt one would otherwise pass)."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


def test_every_example_of_the_contract_fits_its_own_schema(app: InProcess) -> None:
    document = app.client.get("/openapi.json").json()
    examples = _examples(document)
    answered = {name.rsplit(" ", 1)[0] for name, _, _ in examples if not name.endswith("body")}
    assert len(answered) == sum(len(methods) for methods in document["paths"].values())
    components = _closed(document["components"])
    for name, example, schema in examples:
        rooted = {"allOf": [_closed(schema)], "components": components}  # `#/components/...` resolves here
        validator = jsonschema.Draft202012Validator(rooted, format_checker=jsonschema.FormatChecker())
        problems = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(example)]
        assert not problems, (name, problems[:3])
