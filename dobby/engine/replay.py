"""The Replay stream: one judged candidate (SPEC §4.3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from dobby.engine import payloads as stored
from dobby.engine.chain import ChainedAggregate, ChainedCreated, ChainedEvent
from dobby.engine.clock import rfc3339
from dobby.engine.judgement import Judgement, MetricResult, MetricRule, Verdict, flip_point
from dobby.engine.shapes import Hash, TargetRef, Timestamp, View

if TYPE_CHECKING:
    from dobby.engine.replay_commands import EvaluateReplay


class ReplayView(View, frozen=True):
    """A judged replay (SPEC §4.8)."""

    replay_id: str
    tenant_id: str
    target: TargetRef
    family_versions: dict[str, str]
    verdict: Verdict
    reasons: list[str]
    metric_results: list[MetricResult]
    candidate_hash: Hash
    change_hash: Hash | None
    """The hash of the change the replay judged (SPEC §3); null when it named none."""
    provenance_hash: Hash
    run_ids: list[str]
    evaluated_at: Timestamp


class ReplayInputs(View, frozen=True):
    """What a replay was judged from: the console's what-if form starts from these."""

    metrics: dict[str, Any]
    threshold_contract: dict[str, Any]
    workload_similar: bool


@dataclass(frozen=True)
class ReplayState:
    replay_id: str
    tenant_id: str
    target: dict[str, str]
    family_versions: dict[str, str]
    metrics: dict[str, Any]
    threshold_contract: dict[str, Any]
    workload_similar: bool
    run_ids: list[str]
    verdict: str
    reasons: list[str]
    metric_results: list[dict[str, Any]]
    candidate_hash: str
    provenance_hash: str
    request_hash: str
    evaluated_at: str
    change: dict[str, Any] | None = None
    change_hash: str | None = None

    def view(self) -> ReplayView:
        return ReplayView(
            replay_id=self.replay_id,
            tenant_id=self.tenant_id,
            target=TargetRef(self.target["type"], self.target["id"]),
            family_versions=self.family_versions,
            verdict=self.verdict,  # type: ignore[arg-type]
            reasons=self.reasons,
            metric_results=[self._result(result) for result in self.metric_results],
            candidate_hash=self.candidate_hash,
            change_hash=self.change_hash,
            provenance_hash=self.provenance_hash,
            run_ids=self.run_ids,
            evaluated_at=self.evaluated_at,
        )

    def _result(self, result: dict[str, Any]) -> MetricResult:
        """A stored metric result; one stored before results carried `flip_at` gets it from its contract rule."""
        if "flip_at" not in result:
            rule = msgspec.convert(self.threshold_contract["metrics"][result["name"]], MetricRule)
            result = {**result, "flip_at": flip_point(rule, result["baseline"])}
        return msgspec.convert(result, MetricResult)


class ReplayEvaluated(ChainedCreated):
    """A candidate was judged against its baseline."""


class Replay(ChainedAggregate[ReplayState]):
    @staticmethod
    def evolve(state: ReplayState | None, event: ChainedEvent) -> ReplayState:
        assert isinstance(event, ReplayEvaluated)
        return ReplayState(replay_id=str(event.originator_id), **event.payload)

    @classmethod
    def evaluate(
        cls,
        replay_id: UUID,
        body: EvaluateReplay,
        judgement: Judgement,
        *,
        candidate_hash: str,
        change_hash: str | None,
        provenance_hash: str,
        request_hash: str,
        actor: str,
        at: datetime,
    ) -> Replay:
        payload = stored.ReplayEvaluated(
            tenant_id=body.tenant_id,
            target=body.target,
            family_versions=body.family_versions,
            metrics=body.metrics,
            threshold_contract=body.threshold_contract,
            workload_similar=body.workload_similar,
            run_ids=body.sorted_run_ids,
            verdict=judgement.verdict,
            reasons=list(judgement.reasons),
            metric_results=list(judgement.metric_results),
            candidate_hash=candidate_hash,
            provenance_hash=provenance_hash,
            request_hash=request_hash,
            evaluated_at=rfc3339(at),
            change=body.named_change,
            change_hash=change_hash,
        )
        replay: Replay = cls.start(ReplayEvaluated, id=replay_id, payload=payload, actor=actor, at=at)
        return replay
