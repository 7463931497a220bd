"""Timestamps (SPEC §4, §13): one parser at the door — RFC 3339 with an explicit offset, its UTC instant in the
years 1970–9999 — and a reader of stored ones that reads what earlier builds wrote and compares it as if clamped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dobby.engine.kernel.clock import EARLIEST, LATEST, parse_moment, parse_rfc3339, parse_timestamp, rfc3339
from dobby.engine.kernel.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-01-01T12:00:00Z", datetime(2026, 1, 1, 12, tzinfo=UTC)),
        ("2026-01-01t12:00:00.5z", datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-01-01T12:00:00.123456789+02:00", datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", EARLIEST),
        ("1970-01-01T01:00:00+01:00", EARLIEST),
        ("9999-12-31T23:59:59.999999Z", LATEST),
    ],
)
def test_the_door_takes_rfc3339_with_an_offset_inside_1970_to_9999(text: str, utc: datetime) -> None:
    assert parse_timestamp(text) == utc


@pytest.mark.parametrize(
    "text",
    [
        "0900-01-01T00:00:00Z",  # c517a40 stored this as '900-01-01T…'
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",  # 1969 in UTC
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
        "10000-01-01T00:00:00Z",
        "2026-01-01T12:00:00",  # no offset
        "2026-01-01 12:00:00Z",
        "2026-01-01",
        "2026-13-01T00:00:00Z",
        "2026-01-01T12:00:00+24:00",
        "now",
        "",
    ],
)
def test_the_door_refuses_anything_else_naming_the_field(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)
    with pytest.raises(InvalidInputError) as refused:
        parse_moment(text, "starts_at")
    assert [v.field for v in refused.value.violations] == ["starts_at"]


@pytest.mark.parametrize(
    ("stored", "compared_as"),
    [
        ("900-01-01T00:00:00.000000Z", EARLIEST),
        ("0900-01-01T00:00:00.000000Z", EARLIEST),
        ("1969-07-20T20:17:00.000000Z", EARLIEST),
        ("-5-01-01T00:00:00.000000Z", EARLIEST),
        ("10000-01-01T00:00:00.000000Z", LATEST),
        ("2026-01-01T12:00:00.000000Z", datetime(2026, 1, 1, 12, tzinfo=UTC)),
        ("2026-01-01T12:00:00+00:00", datetime(2026, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_stored_timestamps_are_read_as_written_and_compared_as_if_clamped(stored: str, compared_as: datetime) -> None:
    assert parse_rfc3339(stored) == compared_as


def test_stored_timestamps_always_have_four_digit_years() -> None:
    assert rfc3339(datetime(900, 1, 1, tzinfo=UTC)) == "0900-01-01T00:00:00.000000Z"
    assert rfc3339(datetime(2026, 1, 1, 12, tzinfo=UTC)) == "2026-01-01T12:00:00.000000Z"
    assert parse_rfc3339(rfc3339(LATEST)) == LATEST
