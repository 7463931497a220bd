"""The engine: every command family of SPEC §4 over one context (event log, Fabric, limits, clock, observer)."""

from __future__ import annotations

from dataclasses import dataclass

from dobby.engine.commands.activation import ActivationCommands
from dobby.engine.commands.audit import AuditQueries
from dobby.engine.commands.context import Context
from dobby.engine.commands.decisions import DecisionQueue
from dobby.engine.commands.expiry import ExpiryCommands
from dobby.engine.commands.intake import IntakeCommands
from dobby.engine.commands.policy import PolicyCommands
from dobby.engine.commands.promotion import PromotionCommands
from dobby.engine.commands.replay import ReplayCommands
from dobby.engine.commands.schedule import ScheduleCommands
from dobby.engine.commands.watch import WatchCommands
from dobby.engine.kernel.ports import ApprovalSource, EvidenceSource


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
