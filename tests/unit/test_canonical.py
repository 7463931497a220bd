from __future__ import annotations

import hashlib
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dobby.engine.kernel.canonical import NotCanonicalError, canonical_json, content_hash, identity, run_id_for

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def test_keys_are_sorted_and_separators_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, 2, {"d": None, "c": True}]}) == b'{"a":[1,2,{"c":true,"d":null}],"b":1}'


def test_unicode_is_written_as_utf8_not_escaped() -> None:
    assert canonical_json({"name": "Zoë ☃"}) == '{"name":"Zoë ☃"}'.encode()


def test_hash_is_prefixed_sha256_of_the_canonical_bytes() -> None:
    value = {"z": "ü", "a": 1.5}
    assert content_hash(value) == "sha256:" + hashlib.sha256('{"a":1.5,"z":"ü"}'.encode()).hexdigest()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"x": [math.nan]}, {"s": object()}])
def test_nan_infinity_and_non_json_values_are_refused(bad: object) -> None:
    with pytest.raises(NotCanonicalError):
        canonical_json(bad)


def test_nested_key_order_does_not_change_the_hash() -> None:
    first = {"outer": {"b": [{"y": 2, "x": 1}], "a": "α"}, "k": 0}
    second = {"k": 0, "outer": {"a": "α", "b": [{"x": 1, "y": 2}]}}
    assert content_hash(first) == content_hash(second)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_any_key_order_gives_the_same_hash(value: dict[str, object]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert content_hash(reordered) == content_hash(value)


def test_list_order_matters() -> None:
    assert content_hash([1, 2]) != content_hash([2, 1])


def test_identities_are_deterministic_uuid5_and_unambiguous() -> None:
    assert run_id_for("sha256:ab") == run_id_for("sha256:ab")
    assert run_id_for("sha256:ab").version == 5
    assert identity("target", "a/b", "c") != identity("target", "a", "b/c")


@given(json_values)
def test_canonical_bytes_read_back_as_the_same_value_and_match_sorted_json_dumps(value: object) -> None:
    encoded = canonical_json(value)
    assert json.loads(encoded) == value
    reference = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(reference) == json.loads(encoded)


def test_exponents_are_written_in_the_shortest_form() -> None:
    assert canonical_json([1e16, 1e-7, 0.1]) == b"[1e16,1e-7,0.1]"


any_floats = st.recursive(
    st.none() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats() | st.text(max_size=4),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=12,
)


def holds_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isnan(value) or math.isinf(value)
    if isinstance(value, dict):
        return any(holds_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(holds_non_finite(item) for item in value)
    return False


@given(any_floats)
def test_a_value_is_refused_exactly_when_it_holds_nan_or_infinity(value: object) -> None:
    if holds_non_finite(value):
        with pytest.raises(NotCanonicalError):
            canonical_json(value)
    else:
        assert json.loads(canonical_json(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        [None, 0x00CB7FF000000000],  # an integer whose MessagePack bytes read like a non-finite float
        {"a": None, "b": -0x00CBFFF800000000},
        [None, "\u02ff\u007f"],  # text that starts like one: valid UTF-8 never holds those bytes
        [None, 1.7976931348623157e308, -5e-324],
    ],
)
def test_finite_values_that_look_non_finite_in_bytes_are_accepted(value: object) -> None:
    assert json.loads(canonical_json(value)) == value
