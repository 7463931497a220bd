"""Time: an injectable clock and the one RFC 3339 UTC format every timestamp uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from dobby.engine.errors import InvalidInputError, Violation

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset; naive times are refused."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment.astimezone(UTC)


def time_bound(field: str, text: str) -> str:
    """A `since`/`until` of a list (SPEC §4, §4.8) in the stored form, so stored timestamps compare with it as
    text; anything but RFC 3339 with an offset, in the years 1970–9999 in UTC, is refused naming the field."""
    message = f"{field} must be an RFC 3339 timestamp with an offset, in the years 1970–9999"
    try:
        moment = parse_rfc3339(text) if "T" in text.upper() and len(text) <= 64 else None
    except (ValueError, OverflowError):
        moment = None
    if moment is None or not 1970 <= moment.year <= 9999:
        raise InvalidInputError(message, [Violation("invalid_format", message, field)])
    return rfc3339(moment)
