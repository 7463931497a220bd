"""Judging from sample summaries (SPEC §14): intervals against published figures and scipy, and the verdict rules."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from dobby.engine.commands.boundary import convert
from dobby.engine.kernel.errors import InvalidInputError, RuleViolationError
from dobby.engine.model.payloads import payload_problem
from dobby.engine.model.replay import ReplayState
from dobby.engine.rules.judgement import Metrics, ThresholdContract, check_contract, judge_observation, judge_replay
from dobby.engine.rules.statistics import MAX_NEEDED_N, needed_n, newcombe, welch, wilson
from dobby.engine.rules.summaries import Summary

FAMILIES = {"f": "1"}


def contract(mode: str = "all", veto: list[str] | None = None, **rules: Any) -> ThresholdContract:
    return convert({"mode": mode, "metrics": rules, "veto": veto or []}, ThresholdContract)


def judge(rules: dict[str, Any], baseline: dict[str, Any], candidate: dict[str, Any], mode: str = "all") -> Any:
    metrics = convert({"baseline": baseline, "candidate": candidate}, Metrics)
    return judge_replay(contract(mode, **rules), metrics, True, FAMILIES, FAMILIES)


def mean(value: float, sd: float, n: int) -> dict[str, Any]:
    return {"mean": value, "sd": sd, "n": n}


def share(successes: int, n: int) -> dict[str, Any]:
    return {"successes": successes, "n": n}


@pytest.mark.parametrize(
    ("successes", "n", "expected"), [(81, 263, (0.2553, 0.3662)), (15, 148, (0.0624, 0.1605)), (0, 20, (0, 0.1611))]
)
def test_wilson_matches_newcombe_1998_table_one(successes: int, n: int, expected: tuple[float, float]) -> None:
    """Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3."""
    low, high = wilson(successes, n, 1.959963984540054)
    assert (round(low, 4), round(high, 4)) == expected


def test_newcombe_hybrid_score_matches_the_papers_worked_example() -> None:
    """Newcombe (1998), Statistics in Medicine 17:873, Table II example (a): 56/70 − 48/80, method 10."""
    interval = newcombe((48, 80), (56, 70), 0.95)
    assert interval.estimate == pytest.approx(0.2)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0524, 0.3339)


def test_welch_from_summaries_equals_scipys_welch_test_on_the_raw_samples() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 40), rng.normal(11, 5, 25)
    expected = scipy.stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.9)
    got = welch((a.mean(), a.std(ddof=1), 40), (b.mean(), b.std(ddof=1), 25), 0.9)
    assert (got.low, got.high) == pytest.approx((expected.low, expected.high), rel=1e-9)


def test_zero_standard_error_gives_the_point_interval() -> None:
    result = judge({"a": {"direction": "increase"}}, {"a": mean(1, 0, 5)}, {"a": mean(1.5, 0, 5)}).metric_results[0]
    assert (result.estimate, result.interval, result.passed, result.needed_n) == (0.5, [0.5, 0.5], True, None)


@pytest.mark.parametrize(
    ("candidate", "passed", "regressed", "inconclusive", "verdict"),
    [
        (mean(12, 2, 400), True, False, False, "passed"),
        (mean(10.1, 2, 400), False, False, True, "inconclusive"),
        (mean(9.0, 2, 400), False, True, False, "rejected"),
    ],
)
def test_the_interval_decides_pass_inconclusive_and_regression(
    candidate: dict[str, Any], passed: bool, regressed: bool, inconclusive: bool, verdict: str
) -> None:
    judgement = judge({"a": {"direction": "increase"}}, {"a": mean(10, 2, 400)}, {"a": candidate})
    result = judgement.metric_results[0]
    assert (result.passed, result.regressed, result.inconclusive) == (passed, regressed, inconclusive)
    assert judgement.verdict == verdict
    assert result.improvement == result.estimate
    assert result.flip_at is None and result.confidence == 0.95
    assert isinstance(result.baseline, Summary) and result.baseline.mean == 10
    assert (result.needed_n is not None) == inconclusive


def test_a_metric_that_cannot_reach_its_minimum_fails_without_regressing() -> None:
    rules = {"a": {"direction": "increase", "min_improvement": 1, "max_regression": 0.5}}
    result = judge(rules, {"a": mean(10, 1, 1000)}, {"a": mean(10.2, 1, 1000)}).metric_results[0]
    assert not result.passed and not result.regressed and not result.inconclusive
    assert result.margin == pytest.approx(result.interval[1] - 1) if result.interval else False


def test_decrease_flips_the_interval_and_relative_divides_by_the_baseline_estimate() -> None:
    rules = {"lat": {"direction": "decrease", "relative": True}}
    result = judge(rules, {"lat": mean(200, 20, 50)}, {"lat": mean(180, 20, 50)}).metric_results[0]
    raw = welch((200, 20, 50), (180, 20, 50), 0.95)
    assert result.estimate == pytest.approx(0.1)
    assert result.interval == pytest.approx([-raw.high / 200, -raw.low / 200])


def test_relative_against_a_zero_baseline_estimate_is_absolute() -> None:
    rules = {"err": {"direction": "decrease", "relative": True}}
    result = judge(rules, {"err": share(0, 100)}, {"err": share(3, 100)}).metric_results[0]
    assert result.estimate == pytest.approx(-0.03)


def test_confidence_per_metric_widens_the_interval() -> None:
    base, cand = {"a": share(400, 1000)}, {"a": share(440, 1000)}
    narrow = judge({"a": {"direction": "increase", "confidence": 0.8}}, base, cand).metric_results[0]
    wide = judge({"a": {"direction": "increase", "confidence": 0.99}}, base, cand).metric_results[0]
    assert narrow.confidence == 0.8 and wide.confidence == 0.99
    assert narrow.interval and wide.interval and wide.interval[0] < narrow.interval[0]


@pytest.mark.parametrize(
    ("mode", "b_candidate", "verdict", "reasons"),
    [
        ("all", mean(10.1, 2, 400), "inconclusive", ("inconclusive:b",)),
        ("all", mean(9, 2, 400), "rejected", ("not_passed:b",)),
        ("majority", mean(10.1, 2, 400), "passed", ()),
        ("non_regression", mean(10.1, 2, 400), "passed", ()),
    ],
)
def test_inconclusive_verdict_only_when_the_mode_could_still_be_met(
    mode: str, b_candidate: dict[str, Any], verdict: str, reasons: tuple[str, ...]
) -> None:
    rules = {name: {"direction": "increase"} for name in "abc"}
    base = {name: mean(10, 2, 400) for name in "abc"}
    candidate = {"a": mean(12, 2, 400), "b": b_candidate, "c": mean(12, 2, 400)}
    judgement = judge(rules, base, candidate, mode)
    assert (judgement.verdict, judgement.reasons) == (verdict, reasons)


def test_majority_with_too_few_passing_but_enough_inconclusive_is_inconclusive() -> None:
    rules = {name: {"direction": "increase"} for name in "abc"}
    base = {name: mean(10, 2, 400) for name in "abc"}
    candidate = {"a": mean(12, 2, 400), "b": mean(10.1, 2, 400), "c": mean(10.1, 2, 400)}
    judgement = judge(rules, base, candidate, "majority")
    assert (judgement.verdict, judgement.reasons) == ("inconclusive", ("inconclusive:b", "inconclusive:c"))


def test_a_vetoed_regression_rejects_before_anything_is_inconclusive() -> None:
    rules = {"a": {"direction": "increase"}, "v": {"direction": "increase"}}
    metrics = convert(
        {
            "baseline": {"a": mean(10, 2, 400), "v": mean(10, 2, 400)},
            "candidate": {"a": mean(10.1, 2, 400), "v": mean(9, 2, 400)},
        },
        Metrics,
    )
    judgement = judge_replay(contract("all", veto=["v"], **rules), metrics, True, FAMILIES, FAMILIES)
    assert (judgement.verdict, judgement.reasons) == ("rejected", ("veto:v",))


def test_needed_n_resolves_the_observed_effect_with_eighty_percent_power() -> None:
    z = scipy.stats.norm.ppf(0.975) + scipy.stats.norm.ppf(0.8)
    assert needed_n(0.5, 8.0, 0.95) == int(np.ceil(z * z * 8 / 0.25))
    assert needed_n(0.0, 8.0, 0.95) is None
    assert needed_n(1e-300, 1.0, 0.95) is None
    assert needed_n(1e-7, 1e3, 0.95) is None  # about 7.8e17 > 2^53
    assert 7e13 < (needed_n(1e-5, 1e3, 0.95) or 0) <= MAX_NEEDED_N


def test_an_effect_exactly_at_the_threshold_needs_no_finite_sample() -> None:
    result = judge({"a": {"direction": "increase"}}, {"a": mean(10, 2, 50)}, {"a": mean(10, 2, 50)}).metric_results[0]
    assert result.inconclusive and result.needed_n is None


@pytest.mark.parametrize(
    ("baseline", "candidate", "message"),
    [
        (mean(1, 1, 5), 1.0, "mean summary"),
        (mean(1, 1, 5), share(1, 5), "proportion summary"),
        (2, share(1, 5), "plain number"),
    ],
)
def test_baseline_and_candidate_of_different_kinds_are_refused(baseline: Any, candidate: Any, message: str) -> None:
    metrics = convert({"baseline": {"a": baseline}, "candidate": {"a": candidate}}, Metrics)
    found = check_contract(contract(a={"direction": "increase"}), metrics)
    assert [(v.code, v.field) for v in found] == [("metric_kind_mismatch", "metrics.candidate.a")]
    assert message in found[0].message


@pytest.mark.parametrize(
    "summary",
    [
        mean(1, -0.5, 5),
        mean(1, 1, 1),
        share(6, 5),
        share(-1, 5),
        share(1, 0),
        {"mean": 1, "sd": 1, "successes": 1, "n": 5},
        {"mean": 1, "n": 5},
        {"n": 5},
        {"mean": 1, "sd": 1, "n": 5, "extra": 1},
        {"mean": 1, "sd": 1, "n": 2.5},
    ],
)
def test_malformed_summaries_are_refused_at_the_boundary(summary: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        convert({"baseline": {"a": summary}, "candidate": {}}, Metrics)
    assert caught.value.violations[0].field is not None
    assert caught.value.violations[0].field.startswith("baseline.a")


@pytest.mark.parametrize(
    ("baseline", "candidate"),
    [
        (mean(-1e308, 1e308, 2), mean(1e308, 1e308, 2)),
        (mean(1e308, 1, 9), mean(-1e308, 1, 9)),
        (mean(1e-308, 1e-300, 9), mean(1e308, 1, 9)),
    ],
)
def test_summaries_that_leave_the_double_range_are_refused(baseline: Any, candidate: Any) -> None:
    with pytest.raises(RuleViolationError) as caught:
        judge({"a": {"direction": "increase", "relative": True}}, {"a": baseline}, {"a": candidate})
    assert caught.value.code == "metric_out_of_range"


def test_summaries_are_kept_exactly_as_given() -> None:
    given = {"baseline": {"a": {"n": 9, "mean": 1, "sd": 0.5}}, "candidate": {"a": {"successes": 3, "n": 9}}}
    assert msgspec.to_builtins(convert(given, Metrics)) == given


def test_plain_numbers_carry_no_statistics() -> None:
    result = judge({"a": {"direction": "increase", "confidence": 0.9}}, {"a": 1}, {"a": 2}).metric_results[0]
    assert (result.estimate, result.interval, result.confidence, result.inconclusive, result.needed_n) == (
        None,
        None,
        None,
        False,
        None,
    )


def test_the_watch_judges_summaries_on_a_wider_always_valid_interval() -> None:
    rules: dict[str, Any] = {"a": {"direction": "increase"}, "b": {"direction": "increase"}}
    base = convert({"a": mean(10, 2, 1000), "b": mean(10, 2, 1000)}, dict[str, Summary])
    live = convert({"a": mean(9.8, 2, 1000), "b": mean(10, 2, 1000)}, dict[str, Summary])
    fixed = judge(rules, msgspec.to_builtins(base), msgspec.to_builtins(live)).metric_results[0]
    watched = judge_observation(contract(**rules), dict(base), dict(live))[0]
    assert fixed.regressed and not watched.regressed
    assert watched.interval and fixed.interval and watched.interval[0] < fixed.interval[0]
    assert watched.needed_n is None


def test_payloads_of_the_release_before_statistics_still_decode() -> None:
    """ReplayEvaluated and Observed as c517a40 wrote them: metric results without the fields of SPEC §14."""
    result = {"name": "a", "baseline": 1, "candidate": 2.5, "improvement": 1.5, "passed": True, "regressed": False,
              "veto": False, "margin": 1.5, "flip_at": 1.0}  # fmt: skip
    replay: dict[str, Any] = {
        "tenant_id": "acme", "target": {"type": "prompt_template", "id": "x"}, "family_versions": {"f": "1"},
        "metrics": {"baseline": {"a": 1}, "candidate": {"a": 2.5}},
        "threshold_contract": {"mode": "all", "metrics": {"a": {"direction": "increase"}}, "veto": []},
        "workload_similar": True, "run_ids": [], "verdict": "passed", "reasons": [], "metric_results": [result],
        "candidate_hash": "h", "provenance_hash": "h", "request_hash": "h", "evaluated_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    assert payload_problem("ReplayEvaluated", replay) is None
    observed = {"metrics": {"a": 2.0}, "verdict": "healthy", "metric_results": [result]}
    assert payload_problem("Observed", observed) is None
    view = ReplayState(replay_id="r", **replay).view()
    assert view.metric_results[0].estimate is None and view.metric_results[0].baseline == 1.0


FLOATS = st.floats(allow_nan=False, allow_infinity=False)
MEANS = st.builds(
    lambda mean, sd, n: {"mean": mean, "sd": sd, "n": n},
    FLOATS,
    st.floats(min_value=0, allow_infinity=False),
    st.integers(2, 2**53),
)
SHARES = st.integers(1, 2**53).flatmap(lambda n: st.builds(lambda x: {"successes": x, "n": n}, st.integers(0, n)))
RULES = st.fixed_dictionaries(
    {"direction": st.sampled_from(["increase", "decrease"])},
    optional={
        "relative": st.booleans(),
        "min_improvement": st.floats(0, 1e300),
        "max_regression": st.floats(0, 1e300),
        "confidence": st.floats(1e-9, 1 - 1e-9),
    },
)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from([MEANS, SHARES]), data=st.data(), rule=RULES)
def test_any_valid_summaries_are_judged_or_refused_as_out_of_range(kind: Any, data: Any, rule: Any) -> None:
    baseline, candidate = data.draw(kind), data.draw(kind)
    try:
        result = judge({"a": rule}, {"a": baseline}, {"a": candidate}).metric_results[0]
    except RuleViolationError as error:
        assert error.code == "metric_out_of_range"
        return
    assert result.interval is not None and result.interval[0] <= result.estimate <= result.interval[1]
    assert sum((result.passed, result.inconclusive, not result.passed and not result.inconclusive)) == 1
    assert result.needed_n is None or 1 <= result.needed_n <= MAX_NEEDED_N
    watched = judge_observation(
        contract(a=rule), {"a": convert(baseline, Summary)}, {"a": convert(candidate, Summary)}
    )[0]
    assert watched.interval is not None and watched.interval[0] <= result.interval[0] + 1e-9 * abs(result.interval[0])
