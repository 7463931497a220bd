"""The watch family (SPEC §12): live metrics of an active proposal, and the automatic rollback on a regression."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from dobby.engine.commands.boundary import convert
from dobby.engine.commands.context import Context, Scope, transaction
from dobby.engine.commands.loading import load_proposal, proposal_uuid, target_of
from dobby.engine.kernel.errors import InvalidStateError, RuleViolationError, StaleReadError, Violation
from dobby.engine.kernel.shapes import RecordId, Shape, View
from dobby.engine.model import proposal as stored
from dobby.engine.model.chain import ChainedAggregate
from dobby.engine.model.replay import Replay
from dobby.engine.rules.judgement import (
    MetricResult,
    Metrics,
    MetricValues,
    ThresholdContract,
    judge_observation,
    kind_mismatches,
)
from dobby.engine.rules.lifecycle import ACTIVE
from dobby.engine.rules.summaries import MetricValue, Summary

WATCH_ACTOR = "dobby:watch"


class Observe(Shape, frozen=True):
    """Live metrics of an active proposal, by contract metric name."""

    proposal_id: RecordId
    metrics: MetricValues


class ObserveAnswer(View, frozen=True, kw_only=True):
    proposal_id: str
    verdict: Literal["healthy", "regressed"]
    metric_results: list[MetricResult]
    rolled_back: bool
    position: int


@dataclass
class WatchCommands:
    context: Context

    def observe(self, body: Observe, *, actor: str, tenants: Scope = None) -> ObserveAnswer:
        """Append an Observed event; on a regression, unless the proposal opted out, roll it back at once (actor
        dobby:watch), restoring the baseline without re-judging."""
        self.context.require_mode("observe")
        return self._observe(proposal_uuid(body.proposal_id), body, tenants, actor=actor)

    @transaction
    def _observe(self, now: datetime, pid: UUID, body: Observe, tenants: Scope, *, actor: str) -> ObserveAnswer:
        context = self.context
        proposal = load_proposal(context, pid, tenants)
        state = proposal.state
        if state.state != ACTIVE:
            raise InvalidStateError(f"proposal {pid} is {state.state}; only an active proposal is observed")
        replay = context.uow.get(Replay, UUID(state.replay_id))
        assert replay is not None, f"the replay {state.replay_id} of {pid} is not stored"
        contract = convert(replay.state.threshold_contract, ThresholdContract)
        missing = [name for name in sorted(contract.metrics) if name not in body.metrics]
        if missing:
            raise RuleViolationError(
                [
                    Violation("missing_metric", f"contract metric {name!r} is not observed", f"metrics.{name}")
                    for name in missing
                ]
            )
        baseline = convert(replay.state.metrics, Metrics).baseline
        violations = kind_mismatches(baseline, {name: body.metrics[name] for name in contract.metrics}, "metrics")
        violations += shrunk_samples(state.observed_n or {}, body.metrics)
        if violations:
            raise RuleViolationError(violations)
        limits = context.limits
        results = judge_observation(contract, baseline, dict(body.metrics), limits.confidence)
        regressed = [result for result in results if result.regressed]
        verdict: Literal["healthy", "regressed"] = "regressed" if regressed else "healthy"
        observed = stored.Observed(dict(body.metrics), verdict, list(results))
        proposal.observe(observed, actor=actor, at=now)
        touched: list[ChainedAggregate[Any]] = [proposal]
        rolled_back = bool(regressed) and state.auto_rollback
        if rolled_back:
            reason = "; ".join(_regression(r) for r in regressed)
            proposal.roll_back(reason, actor=WATCH_ACTOR, at=now)
            holder = target_of(context, proposal)
            if holder is None or holder.state.active_proposal_id != str(pid):
                raise StaleReadError(f"target of {pid} no longer shows it active")
            holder.restore_baseline(str(pid), state.baseline, actor=WATCH_ACTOR, at=now)
            touched.append(holder)
        position = context.uow.save(*touched)
        return ObserveAnswer(
            proposal_id=str(pid),
            verdict=verdict,
            metric_results=list(results),
            rolled_back=rolled_back,
            position=position,
        )


def shrunk_samples(previous: dict[str, int], observed: dict[str, MetricValue]) -> list[Violation]:
    """Summaries are cumulative (SPEC §14): an n smaller than the latest observation's is refused."""
    found = []
    for name, value in sorted(observed.items()):
        if isinstance(value, Summary) and value.n < previous.get(name, 0):
            message = (
                f"metric {name!r}: n={value.n} is smaller than the previous observation's {previous[name]}; "
                "an observation's summaries count all live traffic since activation"
            )
            found.append(Violation("sample_shrank", message, f"metrics.{name}.n"))
    return found


def _regression(result: MetricResult) -> str:
    veto = " (veto)" if result.veto else ""
    if result.interval is None:
        return f"{result.name} regressed: baseline {result.baseline:g}, observed {result.candidate:g}{veto}"
    low, high = result.interval
    return (
        f"{result.name} regressed: improvement {result.estimate:.6g}, always-valid interval [{low:.6g}, {high:.6g}] "
        f"(confidence {result.confidence:g} across the contract){veto}"
    )
