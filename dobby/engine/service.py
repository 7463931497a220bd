"""The engine: every command family of SPEC §4 over one context (event log, Fabric, limits, clock, observer)."""

from __future__ import annotations

from dataclasses import dataclass

from dobby.engine.activation_commands import ActivationCommands
from dobby.engine.audit_queries import AuditQueries
from dobby.engine.context import Context
from dobby.engine.decision_queue import DecisionQueue
from dobby.engine.expiry_commands import ExpiryCommands
from dobby.engine.intake_commands import IntakeCommands
from dobby.engine.policy_commands import PolicyCommands
from dobby.engine.ports import ApprovalSource, EvidenceSource
from dobby.engine.promotion_commands import PromotionCommands
from dobby.engine.replay_commands import ReplayCommands
from dobby.engine.schedule_commands import ScheduleCommands
from dobby.engine.watch_commands import WatchCommands


@dataclass
class Engine:
    """The command families, each standing on the same context."""

    context: Context
    intake: IntakeCommands
    replays: ReplayCommands
    promotions: PromotionCommands
    activations: ActivationCommands
    schedule: ScheduleCommands
    expiry: ExpiryCommands
    policy: PolicyCommands
    watch: WatchCommands
    audit: AuditQueries
    decisions: DecisionQueue

    @classmethod
    def build(cls, context: Context, *, approvals: ApprovalSource, evidence: EvidenceSource | None) -> Engine:
        activations = ActivationCommands(context)
        audit = AuditQueries(context)
        return cls(
            context=context,
            intake=IntakeCommands(context, evidence),
            replays=ReplayCommands(context),
            promotions=PromotionCommands(context, approvals),
            activations=activations,
            schedule=ScheduleCommands(context, activations),
            expiry=ExpiryCommands(context),
            policy=PolicyCommands(context),
            watch=WatchCommands(context),
            audit=audit,
            decisions=DecisionQueue(context, audit),
        )

    def position(self) -> int:
        return self.context.uow.position()

    def close(self) -> None:
        self.context.uow.close()
