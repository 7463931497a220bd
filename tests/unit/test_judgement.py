from __future__ import annotations

from typing import Any

import pytest

from dobby.engine.commands.boundary import convert
from dobby.engine.kernel.errors import RuleViolationError
from dobby.engine.rules.judgement import (
    MetricRule,
    Metrics,
    ThresholdContract,
    check_contract,
    family_drift,
    flip_point,
    judge_metric,
    judge_replay,
)

FAMILIES = {"f": "1"}


def contract(mode: str = "all", veto: list[str] | None = None, **rules: Any) -> ThresholdContract:
    return convert({"mode": mode, "metrics": rules, "veto": veto or []}, ThresholdContract)


def test_absolute_increase_metric() -> None:
    result = judge_metric("acc", MetricRule("increase", min_improvement=0.05), 0.80, 0.86, veto=False)
    assert result.improvement == pytest.approx(0.06)
    assert result.passed and not result.regressed
    assert result.margin == pytest.approx(0.01)


def test_decrease_metric_improves_when_it_falls() -> None:
    result = judge_metric("latency", MetricRule("decrease"), 120, 100, veto=False)
    assert result.improvement == 20
    assert result.passed


def test_relative_delta_divides_by_the_absolute_baseline() -> None:
    result = judge_metric("cost", MetricRule("decrease", relative=True), -50, -40, veto=False)
    assert result.improvement == pytest.approx(-0.2)


def test_relative_with_zero_baseline_falls_back_to_absolute() -> None:
    result = judge_metric("errors", MetricRule("decrease", relative=True), 0, 3, veto=False)
    assert result.improvement == -3
    assert result.regressed


def test_regression_tolerance() -> None:
    rule = MetricRule("increase", max_regression=0.02)
    assert not judge_metric("a", rule, 1.0, 0.99, veto=False).regressed
    assert judge_metric("a", rule, 1.0, 0.97, veto=False).regressed


def test_failing_metric_has_negative_margin_to_flip() -> None:
    result = judge_metric("a", MetricRule("increase", min_improvement=0.1), 1.0, 1.05, veto=False)
    assert not result.passed
    assert result.margin == pytest.approx(-0.05)


def test_unchanged_metric_passes_with_zero_minimum() -> None:
    result = judge_metric("a", MetricRule("increase"), 1.0, 1.0, veto=False)
    assert result.passed and not result.regressed and result.margin == 0


def metrics(baseline: dict[str, Any], candidate: dict[str, Any]) -> Metrics:
    return Metrics(baseline, candidate)


def test_family_drift_wins_over_everything() -> None:
    judgement = judge_replay(
        contract(a={"direction": "increase"}), metrics({"a": 1}, {"a": 2}), False, {"f": "1", "g": "1"}, {"f": "2"}
    )
    assert judgement.verdict == "revalidate_required"
    assert judgement.reasons == ("family_version:f:1!=2", "family_absent:g")


def test_dissimilar_workload_is_rejected_before_metrics() -> None:
    judgement = judge_replay(
        contract(a={"direction": "increase"}), metrics({"a": 1}, {"a": 2}), False, FAMILIES, FAMILIES
    )
    assert (judgement.verdict, judgement.reasons) == ("rejected", ("workload_dissimilar",))


def test_veto_metric_regression_rejects_even_in_majority() -> None:
    rules = {"a": {"direction": "increase"}, "b": {"direction": "increase"}, "c": {"direction": "increase"}}
    judgement = judge_replay(
        contract("majority", veto=["c"], **rules),
        metrics({"a": 1, "b": 1, "c": 1}, {"a": 2, "b": 2, "c": 0.5}),
        True,
        FAMILIES,
        FAMILIES,
    )
    assert (judgement.verdict, judgement.reasons) == ("rejected", ("veto:c",))


@pytest.mark.parametrize(
    ("mode", "candidate", "verdict"),
    [
        ("all", {"a": 2, "b": 2, "c": 2}, "passed"),
        ("all", {"a": 2, "b": 2, "c": 1}, "passed"),
        ("all", {"a": 2, "b": 2, "c": 0.9}, "rejected"),
        ("majority", {"a": 2, "b": 2, "c": 1}, "passed"),
        ("majority", {"a": 2, "b": 0.9, "c": 1}, "rejected"),
        ("non_regression", {"a": 1, "b": 1, "c": 1}, "passed"),
        ("non_regression", {"a": 3, "b": 3, "c": 0.99}, "rejected"),
    ],
)
def test_each_mode(mode: str, candidate: dict[str, float], verdict: str) -> None:
    rules: dict[str, Any] = {name: {"direction": "increase"} for name in "abc"}
    judgement = judge_replay(
        contract(mode, **rules), metrics({"a": 1, "b": 1, "c": 1}, candidate), True, FAMILIES, FAMILIES
    )
    assert judgement.verdict == verdict


def test_majority_needs_more_than_half() -> None:
    rules: dict[str, Any] = {"a": {"direction": "increase", "min_improvement": 1}, "b": {"direction": "increase"}}
    judgement = judge_replay(
        contract("majority", **rules), metrics({"a": 1, "b": 1}, {"a": 1, "b": 2}), True, FAMILIES, FAMILIES
    )
    assert judgement.verdict == "rejected"


def test_contract_checks_report_every_missing_metric_and_unknown_veto() -> None:
    found = check_contract(
        contract(veto=["zz"], a={"direction": "increase"}, b={"direction": "increase"}), metrics({"a": 1}, {})
    )
    codes = sorted((v.code, v.field) for v in found)
    assert codes == [
        ("missing_metric", "metrics.baseline.b"),
        ("missing_metric", "metrics.candidate.a"),
        ("missing_metric", "metrics.candidate.b"),
        ("unknown_veto_metric", "threshold_contract.veto[0]"),
    ]


def test_no_drift_when_versions_match() -> None:
    assert family_drift({"f": "1"}, {"f": "1", "other": "9"}) == []


@pytest.mark.parametrize(
    ("rule", "baseline", "candidate"),
    [
        (MetricRule("increase"), -1e308, 1e308),
        (MetricRule("decrease"), 1e308, -1e308),
        (MetricRule("increase", relative=True), 1e-308, 1e308),
        (MetricRule("increase", min_improvement=1e308), 0, -1e308),
    ],
)
def test_numbers_that_leave_the_double_range_are_refused(rule: MetricRule, baseline: float, candidate: float) -> None:
    with pytest.raises(RuleViolationError) as caught:
        judge_metric("a", rule, baseline, candidate, veto=False)
    assert caught.value.code == "metric_out_of_range"


@pytest.mark.parametrize(
    ("rule", "baseline", "flip_at"),
    [
        (MetricRule("increase", min_improvement=0.05), 0.80, 0.85),
        (MetricRule("decrease", min_improvement=10), 120, 110),
        (MetricRule("increase", min_improvement=0.1, relative=True), -50, -45),
        (MetricRule("decrease", min_improvement=0.5, relative=True), 0, -0.5),
        (MetricRule("increase"), 3, 3),
    ],
)
def test_flip_at_is_the_candidate_value_where_the_metric_passes_exactly(
    rule: MetricRule, baseline: float, flip_at: float
) -> None:
    assert flip_point(rule, baseline) == pytest.approx(flip_at)
    passing = flip_at + (1 if rule.direction == "increase" else -1)
    failing = flip_at - (1 if rule.direction == "increase" else -1)
    assert judge_metric("m", rule, baseline, passing, False).passed
    assert not judge_metric("m", rule, baseline, failing, False).passed
    assert judge_metric("m", rule, baseline, failing, False).flip_at == pytest.approx(flip_at)


def test_flip_at_is_null_when_no_candidate_value_would_flip() -> None:
    assert flip_point(MetricRule("increase", min_improvement=1e308, relative=True), 1e308) is None
