"""Time: an injectable clock, the one RFC 3339 UTC format every stored timestamp uses, the one parser of
timestamps at the door, and the reader of stored ones (SPEC §4, §13)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from dobby.engine.kernel.errors import InvalidInputError, Violation

Clock = Callable[[], datetime]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
RFC3339 = (
    r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""RFC 3339 date-time with an explicit offset (`Z` or ±hh:mm), as the door takes it: its fields in range and its
year written in 1970–9999 (the instant in UTC is checked after, as an offset may move it across a year's end)."""
_RFC3339 = re.compile(RFC3339)
_STORED = re.compile(r"^(?P<year>-?[0-9]+)-(?P<rest>[0-9]{2}-[0-9]{2}[Tt].*)$")
RANGE = "an RFC 3339 timestamp with an explicit offset (Z or ±hh:mm) whose UTC instant lies in the years 1970–9999"


def system_clock() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """The stored form: UTC, microseconds, `Z`, always a four-digit year (strftime would write year 900 as '900')."""
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """A timestamp as the door takes it (SPEC §4): RFC 3339 with an explicit offset whose UTC instant lies in the
    years 1970–9999, as an aware UTC datetime. ValueError otherwise."""
    if not _RFC3339.match(text):
        raise ValueError(f"{text[:64]!r} is not {RANGE}")
    try:
        moment = datetime.fromisoformat(text.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{text[:64]!r} is not {RANGE}") from None
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{text[:64]!r} lies outside the years 1970–9999 (in UTC)")
    return moment


def parse_moment(text: str, field: str) -> datetime:
    """`parse_timestamp` for a body or query field: refused with 422 naming `field`."""
    try:
        return parse_timestamp(text)
    except ValueError as error:
        message = f"{field} must be {RANGE}"
        raise InvalidInputError(f"{message}: {error}", [Violation("invalid_timestamp", message, field)]) from None


def parse_rfc3339(text: str) -> datetime:
    """A timestamp read from the log or a table. Earlier builds stored what the door then let through: a year
    before 1000 without its leading zeros ('900-01-01T…'), years outside 1970–9999. Such a time is read as written
    and compared as if clamped to 1970–9999 (SPEC §13); never an error for a time this code or an earlier one
    wrote. A naive time is refused (ValueError): nothing dobby stores is naive."""
    match = _STORED.match(text)
    if match is not None and not (len(match["year"]) == 4 and match["year"].isdigit()):
        year = int(match["year"])
        if year < EARLIEST.year:
            return EARLIEST
        if year > LATEST.year:
            return LATEST
        text = f"{year:04d}-{match['rest']}"
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError(f"stored timestamp {text!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        return EARLIEST if moment.year < EARLIEST.year else LATEST
    return min(max(moment, EARLIEST), LATEST)
