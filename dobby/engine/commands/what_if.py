"""What-if (SPEC §4.3a): a stored replay re-judged under another contract, as a dry run that stores nothing."""

from __future__ import annotations

import msgspec

from dobby.engine.kernel.errors import RuleViolationError, Violation
from dobby.engine.kernel.shapes import (
    UNSET,
    Shape,
    UnsetType,
    View,
)
from dobby.engine.model.replay import ReplayState
from dobby.engine.rules.judgement import (
    DEFAULT_CONFIDENCE,
    MetricResult,
    Metrics,
    ThresholdContract,
    Verdict,
    check_contract,
    judge_replay,
)


class WhatIf(Shape, frozen=True):
    """Another threshold contract (and optionally another workload_similar) to re-judge a stored replay under."""

    threshold_contract: ThresholdContract
    workload_similar: bool | UnsetType = UNSET


class StoredJudgement(View, frozen=True):
    verdict: Verdict
    reasons: list[str]


class WhatIfJudgement(View, frozen=True):
    verdict: Verdict
    reasons: list[str]
    metric_results: list[MetricResult]


class Flip(View, frozen=True):
    name: str
    stored_passed: bool
    what_if_passed: bool


class WhatIfAnswer(View, frozen=True):
    """SPEC §4.3a: the stored judgement beside the one the other contract gives, and the metrics that flip."""

    replay_id: str
    stored: StoredJudgement
    what_if: WhatIfJudgement
    verdict_changed: bool
    flips: list[Flip]


def judge_what_if(
    replay: ReplayState, body: WhatIf, fabric_families: dict[str, str], confidence: float = DEFAULT_CONFIDENCE
) -> WhatIfAnswer:
    """A stored replay judged again under `body`: a pure function, so nothing is appended and no budget spent."""
    metrics = msgspec.convert(replay.metrics, Metrics)
    violations = [
        Violation(v.code, v.message, f"threshold_contract.metrics.{v.field.rsplit('.', 1)[-1]}")
        if v.code == "missing_metric" and v.field
        else v
        for v in check_contract(body.threshold_contract, metrics)
    ]
    if violations:
        raise RuleViolationError(violations)
    similar = replay.workload_similar if body.workload_similar is UNSET else body.workload_similar
    judgement = judge_replay(
        body.threshold_contract,
        metrics,
        similar,
        replay.family_versions,
        fabric_families,
        default_confidence=confidence,
    )
    stored = {result["name"]: result["passed"] for result in replay.metric_results}
    flips = [
        Flip(result.name, stored[result.name], result.passed)
        for result in judgement.metric_results
        if result.name in stored and stored[result.name] != result.passed
    ]
    return WhatIfAnswer(
        replay_id=replay.replay_id,
        stored=StoredJudgement(replay.verdict, list(replay.reasons)),  # type: ignore[arg-type]
        what_if=WhatIfJudgement(judgement.verdict, list(judgement.reasons), list(judgement.metric_results)),
        verdict_changed=judgement.verdict != replay.verdict,
        flips=flips,
    )
