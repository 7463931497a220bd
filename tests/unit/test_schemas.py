"""The engine's stdlib validator, the exported schemas/*.json files and jsonschema agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dobby.engine.service  # noqa: F401  (imports every event class)
from dobby.engine.chain import ChainedEvent
from dobby.engine.event_schemas import EVENT_SCHEMAS
from dobby.engine.schemas import COMMAND_SCHEMAS, INTAKE, REPLAY, document
from dobby.engine.validation import validate

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-2, 2)
    | st.sampled_from(["", "x", "success", "ALLOW", "BLOCK", "increase", "all", "a" * 201])
)
values = st.recursive(
    scalars,
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(st.sampled_from(["tenant_id", "type", "id", "name", "direction", "x"]), c, max_size=3)
    ),
    max_leaves=8,
)


def intake_like() -> st.SearchStrategy[dict[str, Any]]:
    fields = {
        "tenant_id": st.sampled_from(["acme", "", 3]),
        "trace_id": st.just("t"),
        "correlation_id": st.just("c"),
        "outcome": st.sampled_from(["success", "neutral_success", "bogus"]),
        "guardrail_decision": st.sampled_from(["ALLOW", "WARN", "BLOCK", "allow"]),
        "family_versions": st.dictionaries(st.sampled_from(["f", ""]), st.sampled_from(["1", 2]), max_size=2),
        "steps": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["s", ""])},
                optional={"tenant_id": st.just("acme"), "classification": st.just("x"), "zzz": values},
            ),
            max_size=2,
        ),
        "security_critical": st.sampled_from([True, False, "yes"]),
        "extra": values,
    }
    return st.fixed_dictionaries({}, optional=fields)


@pytest.mark.parametrize("name", sorted(COMMAND_SCHEMAS))
def test_exported_files_are_current(name: str) -> None:
    on_disk = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert on_disk == document(name, COMMAND_SCHEMAS[name]), "run `dobby schemas export`"
    jsonschema.Draft202012Validator.check_schema(on_disk)


@pytest.mark.parametrize("name", sorted(EVENT_SCHEMAS))
def test_exported_event_schemas_are_current(name: str) -> None:
    on_disk = json.loads((SCHEMA_DIR / "events" / f"{name}.json").read_text(encoding="utf-8"))
    assert on_disk == document(f"event-{name}", EVENT_SCHEMAS[name]), "run `dobby schemas export`"
    jsonschema.Draft202012Validator.check_schema(on_disk)


def test_every_event_class_has_a_payload_schema() -> None:
    classes = {cls.__name__ for cls in _subclasses(ChainedEvent)} - {"ChainedCreated"}
    assert classes == set(EVENT_SCHEMAS)


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    sub: type
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


@settings(max_examples=300)
@given(intake_like())
def test_engine_validator_agrees_with_jsonschema_on_intake(body: dict[str, Any]) -> None:
    ours = validate(INTAKE, body)
    theirs = list(jsonschema.Draft202012Validator(INTAKE).iter_errors(body))
    assert (ours == []) == (theirs == [])


@settings(max_examples=200)
@given(values)
def test_engine_validator_agrees_with_jsonschema_on_anything(value: Any) -> None:
    for schema in (INTAKE, REPLAY):
        assert (validate(schema, value) == []) == (not list(jsonschema.Draft202012Validator(schema).iter_errors(value)))


def test_every_violation_names_its_field() -> None:
    found = validate(INTAKE, {"tenant_id": 5, "outcome": "x", "steps": [{"name": ""}], "bogus": 1})
    fields = {v.field for v in found}
    assert {"tenant_id", "outcome", "steps[0].name", "bogus", "trace_id", "family_versions"} <= fields
