"""Field types every command body, view and event payload is built from (SPEC §4 "Input hygiene")."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from dobby.engine.kernel.clock import RFC3339

__all__ = ["UNSET", "UnsetType"]

CONTROL_FREE = r"^[^\x00-\x1f\x7f]*$"
NUL_FREE = r"^[^\x00]*$"
MAX_SAFE_INTEGER = 2**53
MAX_DEPTH = 32

_CONTROL_FREE = re.compile(CONTROL_FREE)


def is_identifier(text: str, max_length: int = 200) -> bool:
    """Whether `text` could be an Identifier: 1..max_length characters, none of them a control character."""
    return 0 < len(text) <= max_length and _CONTROL_FREE.match(text) is not None


Identifier = Annotated[str, Meta(min_length=1, max_length=200, pattern=CONTROL_FREE)]
"""tenant, trace and correlation ids, target parts, family names and versions, event ids, step and metric names."""
RecordId = Annotated[str, Meta(min_length=1, max_length=64, pattern=CONTROL_FREE)]
Text = Annotated[str, Meta(max_length=200, pattern=NUL_FREE)]
Reason = Annotated[str, Meta(min_length=1, max_length=2000, pattern=CONTROL_FREE)]
Rationale = Annotated[str, Meta(max_length=2000, pattern=NUL_FREE)]
Number = int | float
FamilyVersions = Annotated[dict[Identifier, Identifier], Meta(min_length=1, max_length=100)]
FreeObject = Annotated[
    dict[str, Any],
    Meta(
        max_length=1000,
        description=f"Any JSON object within SPEC §4's input hygiene: no U+0000 in any key or string at any depth,"
        f" at most {MAX_DEPTH} levels deep, integers within ±2^53 (422 `nul_character`, `too_deep`,"
        " `integer_out_of_range`)",
    ),
]
"""Any JSON object within the hygiene rules: checked by dobby.engine.commands.boundary, not by its type."""
Hash = str
Timestamp = str
"""A timestamp as dobby stores and serves it (kernel.clock.rfc3339); earlier builds' may be odd (SPEC §13)."""
Moment = Annotated[
    str,
    Meta(
        min_length=20,
        max_length=40,
        pattern=RFC3339,
        description="RFC 3339 with an explicit offset whose UTC instant lies in the years 1970–9999",
        extra_json_schema={"format": "date-time"},
    ),
]
"""A timestamp a client sends (SPEC §4): its form checked by the type, its range by kernel.clock.parse_moment."""
HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"
ContentHash = Annotated[str, Meta(pattern=HASH_PATTERN)]
"""A hash (SPEC §3) in a body: `sha256:` and 64 lowercase hex digits."""


class Shape(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A command body or nested part of one: immutable, unknown fields refused."""


class View(msgspec.Struct, frozen=True):
    """An answer or a read model."""


class TargetRef(Shape, frozen=True):
    type: Identifier
    id: Identifier


class ServedContent(Shape, frozen=True):
    """Governed content a runtime ran (SPEC §4.2, §15): the target, and the live_hash it read for it."""

    type: Identifier
    id: Identifier
    live_hash: ContentHash


Outcome = Literal["success", "neutral_success", "partial", "failure"]
GuardrailDecision = Literal["ALLOW", "WARN", "BLOCK"]
Risk = Literal["low", "medium", "high", "critical"]


def is_ascii_digits(text: str) -> bool:
    """Only 0–9: `str.isdigit` also takes superscripts and other scripts' digits, which `int` may refuse."""
    return text.isascii() and text.isdigit()


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LONGEST_INTEGER = 100


def integer_of(text: str) -> int | None:
    """The integer `text` names as JSON Schema reads numbers: ASCII digits, or a JSON number whose fractional part
    is zero (`2.0`, `4105.0`, `1e3`, `-0.0`), exactly, never through a double; None for anything else (`2.5`,
    `1e-999`, `+1`, ` 1`) and for magnitudes of 10^30 and more, so no caller builds a huge int."""
    if len(text) > _LONGEST_INTEGER:
        return None
    if is_ascii_digits(text):
        return int(text) if len(text.lstrip("0")) <= 30 else None
    if _JSON_NUMBER.fullmatch(text) is None:
        return None
    number = Decimal(text)
    if number.is_zero():
        return 0
    if number.adjusted() >= 30 or number != number.to_integral_value():
        return None
    return int(number)
