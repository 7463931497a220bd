"""Replay judgement (SPEC §4.3, §14): per-metric deltas or intervals, margins and the verdict. Pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from dobby.engine.kernel.errors import RuleViolationError, Violation
from dobby.engine.kernel.shapes import MAX_SAFE_INTEGER, Identifier, Shape, View
from dobby.engine.rules.statistics import Interval, needed_n
from dobby.engine.rules.summaries import (
    MetricValue,
    Summary,
    fixed_interval,
    improvement_of,
    is_finite,
    kind_of,
    sequential_interval,
)

Verdict = Literal["passed", "rejected", "revalidate_required", "inconclusive"]
DEFAULT_CONFIDENCE = 0.95
WEIGHT_TRAINING = "weight_training_candidate"
NonNegative = Annotated[int, Meta(ge=0)] | Annotated[float, Meta(ge=0)]


class MetricRule(Shape, frozen=True):
    direction: Literal["increase", "decrease"]
    min_improvement: NonNegative | UnsetType = UNSET
    max_regression: NonNegative | UnsetType = UNSET
    relative: bool | UnsetType = UNSET
    confidence: Annotated[float, Meta(gt=0, lt=1)] | UnsetType = UNSET
    """For sample summaries (SPEC §14): the interval's confidence; ignored for plain numbers."""

    @property
    def floor(self) -> float:
        return 0 if self.min_improvement is UNSET else self.min_improvement

    @property
    def tolerance(self) -> float:
        return 0 if self.max_regression is UNSET else self.max_regression


MetricValues = Annotated[dict[Identifier, MetricValue], Meta(max_length=200)]


class Metrics(Shape, frozen=True):
    baseline: MetricValues
    candidate: MetricValues


class ThresholdContract(Shape, frozen=True):
    mode: Literal["all", "majority", "non_regression"]
    metrics: Annotated[dict[Identifier, MetricRule], Meta(min_length=1, max_length=200)]
    veto: Annotated[list[Identifier], Meta(max_length=200)] | UnsetType = UNSET

    @property
    def vetoes(self) -> list[str]:
        return [] if self.veto is UNSET else self.veto


class MetricResult(View, frozen=True):
    name: str
    baseline: float | Summary
    candidate: float | Summary
    improvement: float
    passed: bool
    regressed: bool
    veto: bool
    margin: float
    flip_at: float | None = None
    """The candidate value where this metric turns from failing to passing or back (null when none would)."""
    estimate: float | None = None
    """Summaries only (SPEC §14), like the fields below: the estimated improvement (equal to `improvement`)."""
    interval: list[float] | None = None
    """[low, high] of the improvement at `confidence`."""
    confidence: float | None = None
    inconclusive: bool = False
    """The interval straddles min_improvement: neither passes nor fails yet."""
    needed_n: Annotated[int, Meta(ge=1, le=MAX_SAFE_INTEGER)] | None = None
    """For an inconclusive metric, the sample per side that resolves an effect of this size with 80 % power."""


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reasons: tuple[str, ...]
    metric_results: tuple[MetricResult, ...]


def flip_point(rule: MetricRule, baseline: float) -> float | None:
    """The candidate value at which improvement equals min_improvement: at it or beyond (above for `increase`,
    below for `decrease`) the metric passes, short of it it fails. None when that value leaves the double range."""
    step = rule.floor * abs(baseline) if rule.relative is True and baseline != 0 else rule.floor
    point = baseline + step if rule.direction == "increase" else baseline - step
    return point if math.isfinite(point) else None


def judge_metric(name: str, rule: MetricRule, baseline: float, candidate: float, veto: bool) -> MetricResult:
    """delta = candidate − baseline (relative to |baseline| unless it is 0); improvement follows the direction.

    margin is improvement − min_improvement: ≥ 0 passes, < 0 fails, and its size is the distance to flipping.
    """
    delta = candidate - baseline
    if rule.relative is True and baseline != 0:
        delta = delta / abs(baseline)
    improvement = delta if rule.direction == "increase" else -delta
    margin = improvement - rule.floor
    if not (math.isfinite(improvement) and math.isfinite(margin)):
        message = f"metric {name!r}: baseline {baseline!r} and candidate {candidate!r} leave the double range"
        raise RuleViolationError([Violation("metric_out_of_range", message, f"metrics.candidate.{name}")])
    return MetricResult(
        name=name,
        baseline=baseline,
        candidate=candidate,
        improvement=improvement,
        passed=improvement >= rule.floor,
        regressed=improvement < -rule.tolerance,
        veto=veto,
        margin=margin,
        flip_at=flip_point(rule, baseline),
    )


def check_contract(contract: ThresholdContract, metrics: Metrics) -> list[Violation]:
    """A contract metric missing from baseline or candidate, a veto naming no contract metric, or a metric whose
    baseline and candidate are of different kinds (number, mean summary, proportion summary; SPEC §14)."""
    found: list[Violation] = []
    for name in contract.metrics:
        for side, values in (("baseline", metrics.baseline), ("candidate", metrics.candidate)):
            if name not in values:
                field = f"metrics.{side}.{name}"
                found.append(Violation("missing_metric", f"contract metric {name!r} is missing from {side}", field))
    for index, name in enumerate(contract.vetoes):
        if name not in contract.metrics:
            field = f"threshold_contract.veto[{index}]"
            found.append(Violation("unknown_veto_metric", f"veto {name!r} is not a contract metric", field))
    return found + kind_mismatches(metrics.baseline, metrics.candidate, "metrics.candidate")


def kind_mismatches(baseline: dict[str, Any], candidate: dict[str, Any], field: str) -> list[Violation]:
    """Every metric present on both sides whose values are not of one kind."""
    found = []
    for name in sorted(set(baseline) & set(candidate)):
        was, now = kind_of(baseline[name]), kind_of(candidate[name])
        if was != now:
            message = f"metric {name!r}: the baseline is a {_KIND_NAMES[was]} and this is a {_KIND_NAMES[now]}"
            found.append(Violation("metric_kind_mismatch", message, f"{field}.{name}"))
    return found


_KIND_NAMES = {"number": "plain number", "mean": "mean summary", "proportion": "proportion summary"}


def family_drift(bound: dict[str, str], current: dict[str, str]) -> list[str]:
    """Families of `bound` that Fabric lacks or holds at another version."""
    drift = []
    for family, version in sorted(bound.items()):
        now = current.get(family)
        if now is None:
            drift.append(f"family_absent:{family}")
        elif now != version:
            drift.append(f"family_version:{family}:{version}!={now}")
    return drift


def judge_summary(
    name: str,
    rule: MetricRule,
    baseline: Summary,
    candidate: Summary,
    *,
    veto: bool,
    confidence: float,
    sequential_alpha: float | None = None,
) -> MetricResult:
    """SPEC §14: the interval of the improvement decides. Passes when its low end ≥ min_improvement, regresses when
    its high end < −max_regression, fails when its high end < min_improvement, else is inconclusive. With
    `sequential_alpha` (the watch) the interval is the always-valid one at that error instead of the fixed one."""
    try:
        raw = (
            fixed_interval(baseline, candidate, confidence)
            if sequential_alpha is None
            else sequential_interval(baseline, candidate, sequential_alpha)
        )
        interval = improvement_of(raw, baseline, rule.direction, rule.relative is True)
    except (OverflowError, ZeroDivisionError, ValueError):
        interval = Interval(math.nan, math.nan, math.nan, math.nan)
    if not is_finite(interval):
        message = f"metric {name!r}: the summaries of baseline and candidate leave the double range"
        raise RuleViolationError([Violation("metric_out_of_range", message, f"metrics.candidate.{name}")])
    floor = rule.floor
    passed = interval.low >= floor
    decided_against = interval.high < floor
    inconclusive = not passed and not decided_against
    needed = None
    if inconclusive and sequential_alpha is None:
        needed = needed_n(abs(interval.estimate - floor), interval.variance, confidence)
    return MetricResult(
        name=name,
        baseline=baseline,
        candidate=candidate,
        improvement=interval.estimate,
        passed=passed,
        regressed=interval.high < -rule.tolerance,
        veto=veto,
        margin=(interval.high if decided_against else interval.low) - floor,
        flip_at=None,
        estimate=interval.estimate,
        interval=[interval.low, interval.high],
        confidence=confidence,
        inconclusive=inconclusive,
        needed_n=needed,
    )


def _judge(
    name: str,
    rule: MetricRule,
    baseline: MetricValue,
    candidate: MetricValue,
    *,
    veto: bool,
    default_confidence: float,
    sequential_share: float | None = None,
) -> MetricResult:
    if isinstance(baseline, Summary) and isinstance(candidate, Summary):
        confidence = default_confidence if rule.confidence is UNSET else rule.confidence
        alpha = None if sequential_share is None else (1 - confidence) * sequential_share
        return judge_summary(name, rule, baseline, candidate, veto=veto, confidence=confidence, sequential_alpha=alpha)
    assert not isinstance(baseline, Summary) and not isinstance(candidate, Summary), f"{name}: kinds differ"
    return judge_metric(name, rule, baseline, candidate, veto)


def judge_replay(
    contract: ThresholdContract,
    metrics: Metrics,
    workload_similar: bool,
    family_versions: dict[str, str],
    fabric_families: dict[str, str],
    *,
    default_confidence: float = DEFAULT_CONFIDENCE,
) -> Judgement:
    """The verdict of SPEC §4.3 and §14, first match wins: drift, dissimilar workload, veto regression, then the
    mode; a mode that fails only for want of inconclusive metrics that could still meet it is `inconclusive`."""
    veto = set(contract.vetoes)
    results = tuple(
        _judge(
            name,
            rule,
            metrics.baseline[name],
            metrics.candidate[name],
            veto=name in veto,
            default_confidence=default_confidence,
        )
        for name, rule in sorted(contract.metrics.items())
    )
    drift = family_drift(family_versions, fabric_families)
    if drift:
        return Judgement("revalidate_required", tuple(drift), results)
    if not workload_similar:
        return Judgement("rejected", ("workload_dissimilar",), results)
    vetoed = tuple(f"veto:{r.name}" for r in results if r.veto and r.regressed)
    if vetoed:
        return Judgement("rejected", vetoed, results)
    failing = _mode_failures(contract.mode, results)
    if failing and _could_still_meet(contract.mode, results):
        return Judgement("inconclusive", tuple(f"inconclusive:{r.name}" for r in results if r.inconclusive), results)
    if failing:
        return Judgement("rejected", failing, results)
    return Judgement("passed", (), results)


def _could_still_meet(mode: str, results: tuple[MetricResult, ...]) -> bool:
    """Whether the mode's rule would hold if every inconclusive metric turned out to pass."""
    if mode == "non_regression" or not any(r.inconclusive for r in results) or any(r.regressed for r in results):
        return False
    hopeful = sum(r.passed or r.inconclusive for r in results)
    return hopeful == len(results) if mode == "all" else hopeful * 2 > len(results)


def _mode_failures(mode: str, results: tuple[MetricResult, ...]) -> tuple[str, ...]:
    regressed = tuple(f"regressed:{r.name}" for r in results if r.regressed)
    if mode == "all":
        return tuple(f"not_passed:{r.name}" for r in results if not r.passed)
    if mode == "majority":
        passing = sum(r.passed for r in results)
        short = () if passing * 2 > len(results) else (f"majority_not_passed:{passing}/{len(results)}",)
        return short + regressed
    return regressed


def judge_observation(
    contract: ThresholdContract,
    baseline: dict[str, MetricValue],
    observed: dict[str, MetricValue],
    default_confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[MetricResult, ...]:
    """Live metrics judged as the replay's candidate was, against the replay's baseline (SPEC §12). A result
    `regressed` (a veto that regresses, or any metric beyond its max_regression) means roll back; one that merely
    falls short of min_improvement is not a regression. Summaries are judged on an always-valid interval whose
    error, 1 − confidence, is divided across the contract metrics (Bonferroni, SPEC §14)."""
    veto = set(contract.vetoes)
    share = 1 / len(contract.metrics)
    return tuple(
        _judge(
            name,
            rule,
            baseline[name],
            observed[name],
            veto=name in veto,
            default_confidence=default_confidence,
            sequential_share=share,
        )
        for name, rule in sorted(contract.metrics.items())
    )
