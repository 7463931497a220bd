"""Simulated replays and watches (SPEC §14): the engine's intervals cover, its needed_n delivers the power it
promises, and its watch keeps the false-rollback rate under 1 − confidence however often it looks. Seeded; the
figures are printed (`pytest -s`) and quoted in docs/JUDGEMENT.md."""

from __future__ import annotations

from typing import Any

import numpy as np

from dobby.engine.commands.boundary import convert
from dobby.engine.rules.judgement import MetricRule, ThresholdContract, judge_observation, judge_summary
from dobby.engine.rules.summaries import Summary

REPLAYS = 2000
INCREASE = MetricRule("increase")


def judged(baseline: Summary, candidate: Summary, rule: MetricRule = INCREASE) -> Any:
    return judge_summary("m", rule, baseline, candidate, veto=False, confidence=0.95)


def summaries_of_means(rng: np.random.Generator, mu: float, sd: float, n: int) -> list[Summary]:
    draws = rng.normal(mu, sd, (REPLAYS, n))
    return [
        Summary(mean=float(m), sd=float(s), n=n)
        for m, s in zip(draws.mean(axis=1), draws.std(axis=1, ddof=1), strict=True)
    ]


def summaries_of_shares(rng: np.random.Generator, p: float, n: int) -> list[Summary]:
    return [Summary(successes=int(x), n=n) for x in rng.binomial(n, p, REPLAYS)]


def coverage(baselines: list[Summary], candidates: list[Summary], truth: float) -> float:
    covered = 0
    for baseline, candidate in zip(baselines, candidates, strict=True):
        low, high = judged(baseline, candidate).interval
        covered += low <= truth <= high
    return covered / REPLAYS


def test_welch_intervals_cover_the_true_difference_of_means() -> None:
    rng = np.random.default_rng(26)
    share = coverage(summaries_of_means(rng, 10, 2, 12), summaries_of_means(rng, 10.5, 5, 30), 0.5)
    print(f"Welch 95 % coverage over {REPLAYS} replays: {share:.3f}")
    assert share >= 0.93


def test_newcombe_intervals_cover_the_true_difference_of_proportions() -> None:
    rng = np.random.default_rng(27)
    share = coverage(summaries_of_shares(rng, 0.30, 150), summaries_of_shares(rng, 0.36, 90), 0.06)
    print(f"Newcombe 95 % coverage over {REPLAYS} replays: {share:.3f}")
    assert share >= 0.93


def test_small_and_extreme_proportions_are_still_covered() -> None:
    rng = np.random.default_rng(28)
    share = coverage(summaries_of_shares(rng, 0.02, 40), summaries_of_shares(rng, 0.05, 40), 0.03)
    print(f"Newcombe 95 % coverage at p = 0.02 vs 0.05, n = 40: {share:.3f}")
    assert share >= 0.93


def power_at_needed_n(pilot: tuple[Summary, Summary], draw: Any) -> tuple[int, float]:
    result = judged(*pilot)
    assert result.inconclusive and result.needed_n is not None
    n = result.needed_n
    passed = sum(judged(baseline, candidate).passed for baseline, candidate in draw(n))
    return n, passed / REPLAYS


def test_needed_n_for_means_passes_a_true_improvement_in_about_eighty_percent() -> None:
    rng = np.random.default_rng(29)
    pilot = Summary(mean=10, sd=3, n=50), Summary(mean=10.5, sd=3, n=50)
    n, share = power_at_needed_n(
        pilot, lambda n: zip(summaries_of_means(rng, 10, 3, n), summaries_of_means(rng, 10.5, 3, n), strict=True)
    )
    print(f"means: needed_n {n}; passed at it in {share:.3f} of {REPLAYS}")
    assert 0.76 <= share <= 0.85


def test_needed_n_for_proportions_passes_a_true_improvement_in_about_eighty_percent() -> None:
    rng = np.random.default_rng(30)
    pilot = Summary(successes=80, n=200), Summary(successes=88, n=200)
    n, share = power_at_needed_n(
        pilot, lambda n: zip(summaries_of_shares(rng, 0.40, n), summaries_of_shares(rng, 0.44, n), strict=True)
    )
    print(f"proportions: needed_n {n}; passed at it in {share:.3f} of {REPLAYS}")
    assert 0.76 <= share <= 0.85


def a_a_watch(runs: int, looks: int, step: int, live_mean: float = 10) -> tuple[float, float]:
    """`looks` cumulative observations of `step` more samples each, the candidate's true mean `live_mean` against a
    baseline's 10 (an A/A test by default). The share of runs the watch rolls back, and the share a fixed-horizon
    95 % interval re-applied at every look would."""
    rng = np.random.default_rng(31)
    contract = convert({"mode": "all", "metrics": {"m": {"direction": "increase"}}}, ThresholdContract)
    watched = fixed = 0
    for _ in range(runs):
        history = rng.normal(10, 3, 5000)
        baseline = {"m": Summary(mean=float(history.mean()), sd=float(history.std(ddof=1)), n=5000)}
        live = rng.normal(live_mean, 3, looks * step)
        sums, squares = np.cumsum(live), np.cumsum(live * live)
        watch_fired = horizon_fired = False
        for look in range(1, looks + 1):
            n = look * step
            mean = sums[n - 1] / n
            sd = float(np.sqrt(max(squares[n - 1] - n * mean * mean, 0) / (n - 1)))
            observed = {"m": Summary(mean=float(mean), sd=sd, n=n)}
            watch_fired |= judge_observation(contract, baseline, observed)[0].regressed  # type: ignore[arg-type]
            horizon_fired |= judged(baseline["m"], observed["m"]).regressed
        watched += watch_fired
        fixed += horizon_fired
    return watched / runs, fixed / runs


def test_an_a_a_watch_rolls_back_rarely_however_often_it_looks() -> None:
    watched, fixed = a_a_watch(runs=1000, looks=20, step=50)
    print(f"A/A, 20 looks, 1000 runs: watch rolled back {watched:.3f}; fixed-horizon re-applied {fixed:.3f}")
    assert watched <= 0.05
    assert fixed > 0.05


def test_the_watch_still_catches_a_real_regression() -> None:
    watched, fixed = a_a_watch(runs=200, looks=20, step=50, live_mean=9.4)
    print(f"true regression of 0.2 sd, 20 looks, 200 runs: watch rolled back {watched:.3f} (fixed-horizon {fixed:.3f})")
    assert watched >= 0.8
