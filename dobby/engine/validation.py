"""A small validator for the JSON Schema subset the command schemas use, reporting every violation.

The engine depends on the standard library only, so it checks its own inputs; the files under
schemas/ are exported from the same schema documents, so there is one source of truth for shape.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from dobby.engine.clock import parse_rfc3339
from dobby.engine.errors import InvalidInputError, Violation

MAX_JSON_DEPTH = 32

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _type_matches(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    if type_name == "number" and isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, JSON_TYPES[type_name])


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def validate(schema: dict[str, Any], value: Any, path: str = "") -> list[Violation]:
    """Every way `value` fails `schema`, each naming the field path."""
    field = path or "(body)"
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_type_matches(value, name) for name in names):
            return [Violation("invalid_type", f"{field} must be {' or '.join(names)}", field)]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(map(str, schema["enum"]))
        return [Violation("invalid_value", f"{field} must be one of: {allowed}", field)]
    if "const" in schema and value != schema["const"]:
        return [Violation("invalid_value", f"{field} must be {schema['const']!r}", field)]
    if isinstance(value, str):
        return _validate_string(schema, value, field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _validate_number(schema, value, field)
    if isinstance(value, list):
        return _validate_array(schema, value, path, field)
    if isinstance(value, dict):
        return _validate_object(schema, value, path, field)
    return []


def _validate_string(schema: dict[str, Any], value: str, field: str) -> list[Violation]:
    found = []
    if len(value) < schema.get("minLength", 0):
        found.append(Violation("too_short", f"{field} must have at least {schema['minLength']} characters", field))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        found.append(Violation("too_long", f"{field} must have at most {schema['maxLength']} characters", field))
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        found.append(Violation("invalid_format", f"{field} must match {schema['pattern']}", field))
    if schema.get("format") == "date-time" and not _is_date_time(value):
        found.append(Violation("invalid_format", f"{field} must be an RFC 3339 date-time", field))
    return found


def _is_date_time(value: str) -> bool:
    try:
        parse_rfc3339(value)
    except ValueError:
        return False
    return "T" in value or "t" in value


def _validate_number(schema: dict[str, Any], value: float, field: str) -> list[Violation]:
    found = []
    if "minimum" in schema and value < schema["minimum"]:
        found.append(Violation("out_of_range", f"{field} must be ≥ {schema['minimum']}", field))
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        found.append(Violation("out_of_range", f"{field} must be > {schema['exclusiveMinimum']}", field))
    if "maximum" in schema and value > schema["maximum"]:
        found.append(Violation("out_of_range", f"{field} must be ≤ {schema['maximum']}", field))
    return found


def _validate_array(schema: dict[str, Any], value: list[Any], path: str, field: str) -> list[Violation]:
    found = []
    if len(value) < schema.get("minItems", 0):
        found.append(Violation("too_few_items", f"{field} must have at least {schema['minItems']} items", field))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        found.append(Violation("too_many_items", f"{field} must have at most {schema['maxItems']} items", field))
        return found
    items = schema.get("items")
    if items is not None:
        for index, item in enumerate(value):
            found.extend(validate(items, item, _join(path, index)))
    return found


def _validate_object(schema: dict[str, Any], value: dict[str, Any], path: str, field: str) -> list[Violation]:
    found = []
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            found.append(Violation("required", f"{_join(path, name)} is required", _join(path, name)))
    if len(value) < schema.get("minProperties", 0):
        found.append(Violation("too_few_items", f"{field} must have at least {schema['minProperties']} entries", field))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        found.append(Violation("too_many_items", f"{field} must have at most {schema['maxProperties']} entries", field))
        return found
    key_schema = schema.get("propertyNames")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        item_path = _join(path, key)
        if key_schema is not None:
            found.extend(
                Violation(v.code, f"key {key!r} of {field}: {v.message}", item_path)
                for v in validate(key_schema, key, item_path)
            )
        if key in properties:
            found.extend(validate(properties[key], item, item_path))
        elif extra is False:
            found.append(Violation("unknown_field", f"{item_path} is not a known field", item_path))
        elif isinstance(extra, dict):
            found.extend(validate(extra, item, item_path))
    return found


def depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    return 0


def check_shape(schema: dict[str, Any], body: Any) -> None:
    """Raise InvalidInputError naming every way `body` fails `schema`."""
    if depth(body) > MAX_JSON_DEPTH:
        raise InvalidInputError(
            "the body is nested too deeply",
            [Violation("too_deep", f"nesting deeper than {MAX_JSON_DEPTH} levels", None)],
        )
    violations = validate(schema, body)
    if violations:
        raise InvalidInputError("; ".join(v.message for v in violations), violations)
