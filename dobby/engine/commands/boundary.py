"""The typed boundary: raw bytes in, a validated command out, or an error naming the field (SPEC §4).

One pass of msgspec decodes and validates against the command's type (which refuses lone surrogates, non-finite
numbers, wrong types, unknown fields); dobby's own I-JSON rules close what a type cannot say: duplicate member
names, U+0000 anywhere, integers beyond ±2^53, nesting deeper than 32 levels. A field typed as an integer takes a
number whose fractional part is zero (`2.0`, `1e3`) as that integer, as JSON Schema reads it; everywhere else a
number is held as it was written, so `1.0` stays a double (SPEC §3: `1` is not `1.0`; docs/DECISIONS.md, "Integers
written with a fraction").
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Hashable, Iterator
from functools import cache
from typing import Any, TypeVar, cast

import msgspec
import msgspec.inspect as types_of

from dobby.engine.kernel.errors import InvalidInputError, MalformedInputError, Violation
from dobby.engine.kernel.shapes import MAX_DEPTH, MAX_SAFE_INTEGER

T = TypeVar("T")

_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"field `(?P<name>[^`]+)`")


class _RefusalError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@cache
def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(kind)


def decode(raw: bytes, kind: type[T]) -> T:
    """`raw` as a `kind`: MalformedInputError (400) for what is not I-JSON, InvalidInputError (422) naming the
    first offending field for what does not fit the type or the hygiene rules."""
    generic = _strict_json(raw)
    try:
        return _typed(raw, raw, generic, kind)
    except InvalidInputError:
        integral = _integers_where_typed(generic, _type_info(cast(Hashable, kind)))
        if integral is generic:
            raise
        return _typed(raw, msgspec.json.encode(integral), generic, kind)


def convert(value: Any, kind: type[T]) -> T:
    """A Python value (a test's dict, a stored payload) as a `kind`, through the same rules as the wire, its
    numbers kept as they are (a stored payload is read as it was stored)."""
    try:
        raw = msgspec.json.encode(value)
    except (TypeError, OverflowError, ValueError) as error:
        raise MalformedInputError(f"not JSON: {error}") from None
    return _typed(raw, raw, _strict_json(raw), kind)


def _typed(raw: bytes, typed: bytes, generic: Any, kind: type[T]) -> T:
    try:
        value: T = _decoder(cast(Hashable, kind)).decode(typed)
    except msgspec.ValidationError as error:
        raise _invalid(str(error), generic, kind) from None
    except msgspec.DecodeError as error:
        raise MalformedInputError(f"the body is not valid JSON: {error}") from None
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and _depth(generic, MAX_DEPTH) > MAX_DEPTH:
        message = f"the body is nested deeper than {MAX_DEPTH} levels"
        raise InvalidInputError(message, [Violation("too_deep", message)])
    if b"\\u0000" in raw and _ESCAPED_NUL.search(raw):
        path = next(_nul_paths(generic), "")
        raise InvalidInputError(
            f"{path or '(body)'} holds U+0000", [Violation("nul_character", "U+0000 is not allowed", path or None)]
        )
    return value


def _strict_json(raw: bytes) -> Any:
    try:
        return _STRICT.decode(raw.decode("utf-8"))
    except _RefusalError as refusal:
        if refusal.code == "duplicate_member":
            raise MalformedInputError(str(refusal), [Violation("duplicate_member", str(refusal))]) from None
        field = _beyond_path(raw.decode("utf-8")) if refusal.code == "integer_out_of_range" else ""
        raise InvalidInputError(str(refusal), [Violation(refusal.code, str(refusal), field or None)]) from None
    except RecursionError:
        raise MalformedInputError("the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedInputError(f"the body is not valid JSON: {error}"[:300]) from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        name = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _RefusalError("duplicate_member", f"the member name {name!r} appears twice in one object")
    return members


def _safe_integer(text: str) -> int:
    value = int(text) if len(text) < 30 else MAX_SAFE_INTEGER + 1
    if abs(value) > MAX_SAFE_INTEGER:
        raise _RefusalError("integer_out_of_range", f"the integer {text[:30]} is beyond ±2^53")
    return value


@cache
def _type_info(kind: Any) -> types_of.Type:
    return types_of.type_info(kind)


def _integers_where_typed(value: Any, shape: types_of.Type) -> Any:
    """`value` (a decoded body) with each double whose fraction is zero, within ±2^53, standing where `shape` wants
    an integer, turned into that integer; `value` itself when there was none (JSON Schema: `2.0` is an integer)."""
    while isinstance(shape, types_of.Metadata):
        shape = shape.type
    if isinstance(value, float):
        wants_integer = isinstance(shape, types_of.IntType) or (
            isinstance(shape, types_of.UnionType)
            and any(isinstance(arm, types_of.IntType) for arm in shape.types)
            and not any(isinstance(arm, types_of.FloatType) for arm in shape.types)
        )
        if wants_integer and value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(shape, types_of.UnionType):
        for arm in shape.types:
            changed = _integers_where_typed(value, arm)
            if changed is not value:
                return changed
        return value
    if isinstance(value, dict):
        if isinstance(shape, types_of.StructType):
            kinds = {field.encode_name: field.type for field in shape.fields}
            return _changed(
                value, {key: _integers_where_typed(item, kinds[key]) for key, item in value.items() if key in kinds}
            )
        if isinstance(shape, types_of.DictType):
            return _changed(value, {key: _integers_where_typed(item, shape.value_type) for key, item in value.items()})
    if isinstance(value, list) and isinstance(shape, types_of.ListType | types_of.SetType | types_of.VarTupleType):
        items = [_integers_where_typed(item, shape.item_type) for item in value]
        return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
    return value


def _changed(value: dict[str, Any], items: dict[str, Any]) -> dict[str, Any]:
    """`value` with `items` in place of its members, or `value` itself when none of them changed."""
    if all(items[key] is value[key] for key in items):
        return value
    return {**value, **items}


class _Beyond:
    """Where an integer beyond ±2^53 stood, in a body read again only to name its path."""


_BEYOND = _Beyond()


def _marked_integer(text: str) -> Any:
    return _BEYOND if len(text) >= 30 or abs(int(text)) > MAX_SAFE_INTEGER else 0


def _beyond_path(text: str) -> str:
    """The path of the first integer beyond ±2^53 in `text`, a body the strict reading refused for holding one;
    "" when it stands at the top or the body cannot be read this way."""
    try:
        generic = _MARKING.decode(text)
    except (ValueError, _RefusalError, RecursionError):
        return ""
    return next(_beyond_paths(generic), "")


def _beyond_paths(value: Any, path: str = "") -> Iterator[str]:
    if value is _BEYOND:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _beyond_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _beyond_paths(item, f"{path}[{index}]")


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _nul_paths(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if "\x00" in key:
                yield child
            yield from _nul_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}[{index}]")


_STRICT = json.JSONDecoder(object_pairs_hook=_unique_members, parse_int=_safe_integer, parse_constant=_constant)
_MARKING = json.JSONDecoder(object_pairs_hook=_unique_members, parse_int=_marked_integer, parse_constant=_constant)


def _invalid(message: str, generic: Any = None, kind: Any = None) -> InvalidInputError:
    match = _AT_PATH.search(message)
    path = match["path"].lstrip(".") if match else ""
    if "[...]" in path:
        path = _name_keys(path, generic, kind)
    text = message[: match.start()] if match else message
    named = _FIELD.search(text)
    if named and ("unknown field" in text or "missing required field" in text):
        path = f"{path}.{named['name']}" if path else named["name"]
    code = "unknown_field" if "unknown field" in text else "required" if "missing required" in text else "invalid"
    return InvalidInputError(f"{path or '(body)'}: {text}", [Violation(code, text, path or None)])


def _depth(value: Any, limit: int) -> int:
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return 0
    deepest = 0
    for item in items:
        deepest = max(deepest, _depth(item, limit))
        if deepest > limit:
            break
    return 1 + deepest


_SEGMENT = re.compile(r"\.?([^.\[]+)|\[(\.\.\.|\d+)\]")


def _name_keys(path: str, generic: Any, kind: Any) -> str:
    """msgspec writes `[...]` for a key of a dict; name the first key whose value fails its type instead
    (`metrics.baseline.acc.sd`, not `metrics.baseline[...].sd`). The path as msgspec wrote it when that fails."""
    value, shape, named = generic, kind, []
    try:
        for name, index in _SEGMENT.findall(path):
            shape = _container(shape)
            if name:
                value, shape = value[name], typing.get_type_hints(shape)[name]
                named.append(name)
            elif index == "...":
                item = typing.get_args(shape)[1]
                key = next(k for k, v in value.items() if not _fits(v, item))
                value, shape = value[key], item
                named.append(key)
            else:
                value, shape = value[int(index)], typing.get_args(shape)[0]
                named[-1] += f"[{index}]"
    except (KeyError, IndexError, TypeError, StopIteration, NameError, AttributeError):
        return path
    return ".".join(named)


def _container(shape: Any) -> Any:
    """The dict, list or Struct type inside an Annotated or a union with UNSET or None."""
    while typing.get_origin(shape) is typing.Annotated:
        shape = typing.get_args(shape)[0]
    if typing.get_origin(shape) in (typing.Union, types.UnionType):
        arms = [_container(arm) for arm in typing.get_args(shape)]
        shape = next(arm for arm in arms if typing.get_origin(arm) in (dict, list) or _is_struct(arm))
    return shape


def _is_struct(shape: Any) -> bool:
    return isinstance(shape, type) and issubclass(shape, msgspec.Struct)


def _fits(value: Any, shape: Any) -> bool:
    try:
        msgspec.convert(value, shape)
    except msgspec.ValidationError:
        return False
    return True
