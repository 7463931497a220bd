"""The Run stream: one recorded trace (SPEC §4.2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.shapes import GuardrailDecision, Hash, Outcome, ServedContent, TargetRef, Timestamp, View
from dobby.engine.model.chain import ChainedAggregate, ChainedCreated, ChainedEvent, EventPayload, chained
from dobby.engine.rules.intake import IntakeSignal


class RunRecorded(EventPayload, frozen=True):
    """A trace passed intake and was stored."""

    body: IntakeSignal
    run_hash: Hash
    provenance_hash: Hash
    sampled: bool
    learning_signal: bool
    evidence_digest: str | None
    recorded_at: Timestamp


class RunView(View, frozen=True):
    """A recorded run (SPEC §4.8)."""

    run_id: str
    tenant_id: str
    trace_id: str
    correlation_id: str
    outcome: Outcome
    guardrail_decision: GuardrailDecision
    family_versions: dict[str, str]
    target_hints: list[TargetRef]
    served: list[ServedContent]
    """The governed content the runtime said it ran (SPEC §15); empty when the intake named none."""
    run_hash: Hash
    provenance_hash: Hash
    sampled: bool
    learning_signal: bool
    evidence_digest: str | None
    recorded_at: Timestamp


@dataclass(frozen=True)
class RunState:
    run_id: str
    body: dict[str, Any]
    run_hash: str
    provenance_hash: str
    sampled: bool
    learning_signal: bool
    evidence_digest: str | None
    recorded_at: str

    @property
    def tenant_id(self) -> str:
        return str(self.body["tenant_id"])

    def view(self) -> RunView:
        body = self.body
        return RunView(
            run_id=self.run_id,
            tenant_id=body["tenant_id"],
            trace_id=body["trace_id"],
            correlation_id=body["correlation_id"],
            outcome=body["outcome"],
            guardrail_decision=body["guardrail_decision"],
            family_versions=body["family_versions"],
            target_hints=[TargetRef(hint["type"], hint["id"]) for hint in body.get("target_hints", ())],
            served=[ServedContent(item["type"], item["id"], item["live_hash"]) for item in body.get("served", ())],
            run_hash=self.run_hash,
            provenance_hash=self.provenance_hash,
            sampled=self.sampled,
            learning_signal=self.learning_signal,
            evidence_digest=self.evidence_digest,
            recorded_at=self.recorded_at,
        )


class Run(ChainedAggregate[RunState]):
    @staticmethod
    def evolve(state: RunState | None, event: ChainedEvent) -> RunState:
        assert isinstance(event, RunRecorded.Event)
        return RunState(run_id=str(event.originator_id), **event.payload)

    @classmethod
    def accept(cls, run_id: UUID, body: IntakeSignal, **facts: Any) -> Run:
        """A new Run stream holding its one event (`recorded`), pending until it is saved."""
        run: Run = cls.from_first(cls.recorded(run_id, body, **facts))
        return run

    @classmethod
    def recorded(
        cls,
        run_id: UUID,
        body: IntakeSignal,
        *,
        run_hash: str,
        provenance_hash: str,
        sampled: bool,
        learning_signal: bool,
        evidence_digest: str | None,
        actor: str,
        at: datetime,
    ) -> ChainedCreated:
        """The stream's one event; the intake path saves it without building the aggregate."""
        payload = RunRecorded(
            body=body,
            run_hash=run_hash,
            provenance_hash=provenance_hash,
            sampled=sampled,
            learning_signal=learning_signal,
            evidence_digest=evidence_digest,
            recorded_at=rfc3339(at),
        )
        return cls.first_event(payload, id=run_id, actor=actor, at=at)


chained(Run, "dobby.engine.run", RunRecorded)
