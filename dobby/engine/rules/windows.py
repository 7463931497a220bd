"""Sliding windows (SPEC §4.3 replay budget, §4.6 velocity breaker): what a window allows at one moment. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Allowance:
    """What a sliding window allows at one moment."""

    limit: int
    used: int
    window_seconds: float
    resets_at: datetime
    retry_after: float

    @property
    def remaining(self) -> int:
        return remaining(self.limit, self.used)

    @property
    def exhausted(self) -> bool:
        return exhausted(self.limit, self.used)


def remaining(limit: int, used: int) -> int:
    """How many more a window of `limit` allows once `used` were spent in it."""
    return max(limit - used, 0)


def exhausted(limit: int, used: int) -> bool:
    """Whether a window of `limit` allows no more (the replay budget is spent, the velocity breaker is open)."""
    return used >= limit


def allowance(spends: tuple[datetime, ...], limit: int, window_seconds: float, now: datetime) -> Allowance:
    """Spends inside (now − window, now] count; resets_at is when the window will hold none of them.

    retry_after is how long until one unit frees up (0 when some remain).
    """
    window = timedelta(seconds=window_seconds)
    live = sorted(at for at in spends if at > now - window)
    resets_at = live[-1] + window if live else now
    if len(live) < limit:
        retry_after = 0.0
    else:
        frees_at = live[len(live) - limit] + window
        retry_after = max((frees_at - now).total_seconds(), 0.0)
    return Allowance(limit, len(live), window_seconds, resets_at, retry_after)
