"""The types, the schemas generated from them (schemas/*.json) and jsonschema agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dobby.engine.service  # noqa: F401  (imports every event class)
from dobby.engine.commands.boundary import convert
from dobby.engine.commands.replay import EvaluateReplay
from dobby.engine.kernel.errors import DobbyError
from dobby.engine.model.chain import ChainedEvent
from dobby.engine.model.payloads import EVENT_PAYLOADS
from dobby.engine.rules.intake import IntakeSignal
from dobby.engine.schemas import document, exported
from dobby.http.routes import command_bodies

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


@pytest.mark.parametrize("name", sorted(exported(command_bodies())))
def test_exported_files_are_current(name: str) -> None:
    on_disk = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert on_disk == exported(command_bodies())[name], "run `dobby schemas export`"
    jsonschema.Draft202012Validator.check_schema(on_disk)


def test_no_stale_schema_files_remain() -> None:
    on_disk = {str(path.relative_to(SCHEMA_DIR).with_suffix("")) for path in SCHEMA_DIR.rglob("*.json")}
    assert on_disk == set(exported(command_bodies()))


def test_every_event_class_has_a_payload_type() -> None:
    classes = {cls.__name__ for cls in _subclasses(ChainedEvent)} - {"ChainedCreated"}
    assert classes == set(EVENT_PAYLOADS)


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    sub: type
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def _accepted(value: Any, kind: type) -> bool:
    try:
        convert(value, kind)
    except DobbyError:
        return False
    return True


@settings(max_examples=300)
@given(intake_like())
def test_the_decoder_agrees_with_the_generated_schema_on_intake(body: dict[str, Any]) -> None:
    schema = document("intake", command_bodies()["intake"])
    theirs = list(jsonschema.Draft202012Validator(schema).iter_errors(body))
    assert _accepted(body, IntakeSignal) == (theirs == [])


@settings(max_examples=200)
@given(values)
def test_the_decoder_agrees_with_the_generated_schema_on_anything(value: Any) -> None:
    for name, kind in (("intake", IntakeSignal), ("replay-evaluate", EvaluateReplay)):
        schema = document(name, kind)
        assert _accepted(value, kind) == (not list(jsonschema.Draft202012Validator(schema).iter_errors(value)))
