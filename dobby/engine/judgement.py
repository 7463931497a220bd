"""Replay judgement (SPEC §4.3): per-metric deltas, margins and the verdict. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dobby.engine.errors import Violation

Verdict = Literal["passed", "rejected", "revalidate_required"]
WEIGHT_TRAINING = "weight_training_candidate"


@dataclass(frozen=True)
class MetricRule:
    direction: Literal["increase", "decrease"]
    min_improvement: float = 0.0
    max_regression: float = 0.0
    relative: bool = False

    @classmethod
    def from_json(cls, rule: dict[str, Any]) -> MetricRule:
        return cls(
            direction=rule["direction"],
            min_improvement=rule.get("min_improvement", 0),
            max_regression=rule.get("max_regression", 0),
            relative=rule.get("relative", False),
        )


@dataclass(frozen=True)
class MetricResult:
    name: str
    baseline: float
    candidate: float
    improvement: float
    passed: bool
    regressed: bool
    veto: bool
    margin: float

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "improvement": self.improvement,
            "passed": self.passed,
            "regressed": self.regressed,
            "veto": self.veto,
            "margin": self.margin,
        }


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reasons: tuple[str, ...]
    metric_results: tuple[MetricResult, ...]


def judge_metric(name: str, rule: MetricRule, baseline: float, candidate: float, veto: bool) -> MetricResult:
    """delta = candidate − baseline (relative to |baseline| unless it is 0); improvement follows the direction.

    margin is improvement − min_improvement: ≥ 0 passes, < 0 fails, and its size is the distance to flipping.
    """
    delta = candidate - baseline
    if rule.relative and baseline != 0:
        delta = delta / abs(baseline)
    improvement = delta if rule.direction == "increase" else -delta
    return MetricResult(
        name=name,
        baseline=baseline,
        candidate=candidate,
        improvement=improvement,
        passed=improvement >= rule.min_improvement,
        regressed=improvement < -rule.max_regression,
        veto=veto,
        margin=improvement - rule.min_improvement,
    )


def check_contract(contract: dict[str, Any], metrics: dict[str, Any]) -> list[Violation]:
    """A contract metric missing from baseline or candidate, or a veto naming no contract metric."""
    found: list[Violation] = []
    for name in contract["metrics"]:
        for side in ("baseline", "candidate"):
            if name not in metrics[side]:
                field = f"metrics.{side}.{name}"
                found.append(Violation("missing_metric", f"contract metric {name!r} is missing from {side}", field))
    for index, name in enumerate(contract.get("veto", [])):
        if name not in contract["metrics"]:
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
    contract: dict[str, Any],
    metrics: dict[str, Any],
    workload_similar: bool,
    family_versions: dict[str, str],
    fabric_families: dict[str, str],
) -> Judgement:
    """The verdict of SPEC §4.3, first match wins: drift, dissimilar workload, veto regression, then the mode."""
    veto = set(contract.get("veto", []))
    results = tuple(
        judge_metric(
            name,
            MetricRule.from_json(rule),
            metrics["baseline"][name],
            metrics["candidate"][name],
            name in veto,
        )
        for name, rule in sorted(contract["metrics"].items())
    )
    drift = family_drift(family_versions, fabric_families)
    if drift:
        return Judgement("revalidate_required", tuple(drift), results)
    if not workload_similar:
        return Judgement("rejected", ("workload_dissimilar",), results)
    vetoed = tuple(f"veto:{r.name}" for r in results if r.veto and r.regressed)
    if vetoed:
        return Judgement("rejected", vetoed, results)
    failing = _mode_failures(contract["mode"], results)
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
