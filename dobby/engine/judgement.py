"""Replay judgement (SPEC §4.3): per-metric deltas, margins and the verdict. Pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from dobby.engine.errors import RuleViolationError, Violation
from dobby.engine.shapes import Identifier, MetricValues, Shape, View

Verdict = Literal["passed", "rejected", "revalidate_required"]
WEIGHT_TRAINING = "weight_training_candidate"
NonNegative = Annotated[int, Meta(ge=0)] | Annotated[float, Meta(ge=0)]


class MetricRule(Shape, frozen=True):
    direction: Literal["increase", "decrease"]
    min_improvement: NonNegative | UnsetType = UNSET
    max_regression: NonNegative | UnsetType = UNSET
    relative: bool | UnsetType = UNSET

    @property
    def floor(self) -> float:
        return 0 if self.min_improvement is UNSET else self.min_improvement

    @property
    def tolerance(self) -> float:
        return 0 if self.max_regression is UNSET else self.max_regression


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
    baseline: float
    candidate: float
    improvement: float
    passed: bool
    regressed: bool
    veto: bool
    margin: float
    flip_at: float | None = None
    """The candidate value where this metric turns from failing to passing or back (null when none would)."""


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
    """A contract metric missing from baseline or candidate, or a veto naming no contract metric."""
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
    return found


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


def judge_replay(
    contract: ThresholdContract,
    metrics: Metrics,
    workload_similar: bool,
    family_versions: dict[str, str],
    fabric_families: dict[str, str],
) -> Judgement:
    """The verdict of SPEC §4.3, first match wins: drift, dissimilar workload, veto regression, then the mode."""
    veto = set(contract.vetoes)
    results = tuple(
        judge_metric(name, rule, metrics.baseline[name], metrics.candidate[name], name in veto)
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
    if failing:
        return Judgement("rejected", failing, results)
    return Judgement("passed", (), results)


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
    contract: ThresholdContract, baseline: dict[str, float], observed: dict[str, float]
) -> tuple[MetricResult, ...]:
    """Live metrics judged as the replay's candidate was, against the replay's baseline (SPEC §12). A result
    `regressed` (a veto that regresses, or any metric beyond its max_regression) means roll back; one that merely
    falls short of min_improvement is not a regression."""
    veto = set(contract.vetoes)
    return tuple(
        judge_metric(name, rule, baseline[name], observed[name], name in veto)
        for name, rule in sorted(contract.metrics.items())
    )
