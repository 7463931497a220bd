"""The watch family (SPEC §12): live metrics of an active proposal, and the automatic rollback on a regression."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from dobby.engine import payloads as stored
from dobby.engine.boundary import convert
from dobby.engine.chain import ChainedAggregate
from dobby.engine.context import Context
from dobby.engine.errors import InvalidStateError, RuleViolationError, StaleReadError, Violation
from dobby.engine.judgement import MetricResult, ThresholdContract, judge_observation
from dobby.engine.lifecycle import ACTIVE
from dobby.engine.proposals import load_proposal, proposal_uuid, target_of
from dobby.engine.replay import Replay
from dobby.engine.shapes import MetricValues, RecordId, Shape, View

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

    def observe(self, body: Observe, *, actor: str) -> ObserveAnswer:
        """Append an Observed event; on a regression, unless the proposal opted out, roll it back at once (actor
        dobby:watch), restoring the baseline without re-judging."""
        context = self.context
        context.require_mode("observe")
        pid = proposal_uuid(body.proposal_id)

        def attempt() -> ObserveAnswer:
            now = context.now()
            proposal = load_proposal(context, pid)
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
            results = judge_observation(contract, replay.state.metrics["baseline"], dict(body.metrics))
            regressed = [result for result in results if result.regressed]
            verdict: Literal["healthy", "regressed"] = "regressed" if regressed else "healthy"
            observed = stored.Observed(dict(body.metrics), verdict, list(results))
            proposal.observe(observed, actor=actor, at=now)
            touched: list[ChainedAggregate[Any]] = [proposal]
            rolled_back = bool(regressed) and state.auto_rollback
            if rolled_back:
                reason = "; ".join(
                    f"{r.name} regressed: baseline {r.baseline:g}, observed {r.candidate:g}"
                    + (" (veto)" if r.veto else "")
                    for r in regressed
                )
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

        return context.uow.transact(attempt)
