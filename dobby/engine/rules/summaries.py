"""Sample summaries as metric values (SPEC §14): their shape, their kind, and the interval of one metric's
improvement that a replay (fixed sample) or the watch (always-valid sequence) judges from."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from dobby.engine.kernel.shapes import MAX_SAFE_INTEGER, Number, Shape
from dobby.engine.rules import statistics

Kind = Literal["number", "mean", "proportion"]
Count = Annotated[int, Meta(ge=0, le=MAX_SAFE_INTEGER)]
Spread = Annotated[int, Meta(ge=0)] | Annotated[float, Meta(ge=0)]


class Summary(Shape, frozen=True, kw_only=True):
    """`{"mean", "sd", "n"}` (a continuous metric; sd ≥ 0, n ≥ 2) or `{"successes", "n"}` (a proportion;
    0 ≤ successes ≤ n, n ≥ 1). Kept as given: it enters hashes in no other form."""

    mean: Number | UnsetType = UNSET
    sd: Spread | UnsetType = UNSET
    successes: Count | UnsetType = UNSET
    n: Annotated[int, Meta(ge=1, le=MAX_SAFE_INTEGER)]

    def __post_init__(self) -> None:
        if self.successes is not UNSET:
            if self.mean is not UNSET or self.sd is not UNSET:
                raise ValueError("a summary is either {mean, sd, n} or {successes, n}, not both")
            if self.successes > self.n:
                raise ValueError(f"successes ({self.successes}) must not exceed n ({self.n})")
        elif self.mean is UNSET or self.sd is UNSET:
            raise ValueError("a summary is {mean, sd, n} (a continuous metric) or {successes, n} (a proportion)")
        elif self.n < 2:
            raise ValueError(f"a mean's summary needs n ≥ 2 for its sd (got n={self.n})")

    @property
    def kind(self) -> Kind:
        return "proportion" if self.successes is not UNSET else "mean"

    @property
    def estimate(self) -> float:
        """The sample mean, or the share of successes."""
        if self.successes is not UNSET:
            return self.successes / self.n
        assert self.mean is not UNSET
        return float(self.mean)

    def moments(self) -> tuple[float, float, int]:
        assert self.mean is not UNSET and self.sd is not UNSET
        return float(self.mean), float(self.sd), self.n

    def counts(self) -> tuple[int, int]:
        assert self.successes is not UNSET
        return self.successes, self.n


MetricValue = Number | Summary


def kind_of(value: MetricValue) -> Kind:
    return value.kind if isinstance(value, Summary) else "number"


def fixed_interval(baseline: Summary, candidate: Summary, confidence: float) -> statistics.Interval:
    """candidate − baseline at `confidence` from one fixed sample per side (a replay, SPEC §14)."""
    if baseline.kind == "mean":
        return statistics.welch(baseline.moments(), candidate.moments(), confidence)
    return statistics.newcombe(baseline.counts(), candidate.counts(), confidence)


def sequential_interval(baseline: Summary, observed: Summary, alpha: float) -> statistics.Interval:
    """candidate − baseline valid at every look at once with probability ≥ 1 − alpha (the watch, SPEC §12, §14);
    the sequence is tightest near the baseline's own n."""
    if baseline.kind == "mean":
        return statistics.sequential_means(baseline.moments(), observed.moments(), alpha, baseline.n)
    return statistics.sequential_proportions(baseline.counts(), observed.counts(), alpha, baseline.n)


def improvement_of(
    interval: statistics.Interval, baseline: Summary, direction: str, relative: bool
) -> statistics.Interval:
    """The interval of the improvement: signed by `direction`, and relative to the baseline's estimate when asked
    (absolute when that estimate is 0), as §4.3 treats plain numbers."""
    scale = abs(baseline.estimate) if relative and baseline.estimate != 0 else 1.0
    estimate, low, high = interval.estimate / scale, interval.low / scale, interval.high / scale
    variance = interval.variance / (scale * scale)
    if direction == "decrease":
        estimate, low, high = -estimate, -high, -low
    return statistics.Interval(estimate + 0.0, low + 0.0, high + 0.0, variance)


def is_finite(interval: statistics.Interval) -> bool:
    return all(math.isfinite(x) for x in (interval.estimate, interval.low, interval.high, interval.variance))
