"""The Replay stream: one judged candidate (SPEC §4.3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from dobby.engine.kernel.shapes import Hash, Identifier, TargetRef, Timestamp, View
from dobby.engine.model.chain import ChainedAggregate, ChainedEvent, EventPayload, chained
from dobby.engine.rules.judgement import MetricResult, MetricRule, Metrics, ThresholdContract, Verdict, flip_point


class ReplayEvaluated(EventPayload, frozen=True):
    """A candidate was judged against its baseline."""

    tenant_id: Identifier
    target: TargetRef
    family_versions: dict[str, str]
    metrics: Metrics
    threshold_contract: ThresholdContract
    workload_similar: bool
    run_ids: list[str]
    verdict: Literal["passed", "rejected", "revalidate_required", "inconclusive"]
    reasons: list[str]
    metric_results: list[MetricResult]
    candidate_hash: Hash
    provenance_hash: Hash
    request_hash: Hash
    evaluated_at: Timestamp
    change: dict[str, Any] | None = None
    """The candidate configuration that was judged (SPEC §4.3); absent from replays stored before."""
    change_hash: Hash | None = None
    """Its hash, inside candidate_hash; null when the replay named no change."""


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


class Replay(ChainedAggregate[ReplayState]):
    @staticmethod
    def evolve(state: ReplayState | None, event: ChainedEvent) -> ReplayState:
        assert isinstance(event, ReplayEvaluated.Event)
        return ReplayState(replay_id=str(event.originator_id), **event.payload)

    @classmethod
    def evaluate(cls, replay_id: UUID, evaluated: ReplayEvaluated, *, actor: str, at: datetime) -> Replay:
        replay: Replay = cls.start(evaluated, id=replay_id, actor=actor, at=at)
        return replay


chained(Replay, "dobby.engine.replay", ReplayEvaluated)
