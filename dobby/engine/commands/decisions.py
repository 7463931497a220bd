"""The decision queue (SPEC §12): proposals that wait on a person or a rule, and what they wait on.

- replay_validated — waits on an approval (pending, insufficient, Warp unavailable): "approval";
- approved but not active — waits on its activation, with the guards failing now (frozen, conflict, velocity, …)
  or its schedule: "activation";
- active but flagged revalidate_required: "revalidation";
- blocked, or rolled back by dobby:watch, in the last 24 h: "review".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from dobby.engine.commands.audit import AuditQueries
from dobby.engine.commands.context import Context
from dobby.engine.commands.watch import WATCH_ACTOR
from dobby.engine.kernel.clock import parse_rfc3339
from dobby.engine.kernel.shapes import TargetRef, View
from dobby.engine.rules.lifecycle import ACTIVE, APPROVED, BLOCKED, REPLAY_VALIDATED, ROLLED_BACK

WaitingOn = Literal["approval", "activation", "revalidation", "review"]
REVIEW_WINDOW = timedelta(hours=24)
CANDIDATE_STATES = (REPLAY_VALIDATED, APPROVED, ACTIVE, BLOCKED, ROLLED_BACK)


class Decision(View, frozen=True):
    proposal_id: str
    tenant_id: str
    target: TargetRef
    state: str
    waiting_on: WaitingOn
    reasons: list[str]
    since: str


@dataclass
class DecisionQueue:
    context: Context
    audit: AuditQueries

    def decisions(self, views: list[dict[str, Any]]) -> list[Decision]:
        """The proposals among `views` (proposal views, as the read side holds them) that wait, newest first."""
        now = self.context.now()
        found = [item for view in views if (item := self._decision(view, now)) is not None]
        return sorted(found, key=lambda item: item.since, reverse=True)

    def _decision(self, view: dict[str, Any], now: Any) -> Decision | None:
        state, pid = view["state"], view["proposal_id"]
        waiting: WaitingOn
        if state == REPLAY_VALIDATED:
            waiting, reasons = "approval", self._last_check(pid)
        elif state == APPROVED:
            explained = self.audit.get_explanation(pid)
            reasons = [f"{guard.name}: {guard.reason}" for guard in explained.guards if not guard.passed]
            if view.get("scheduled_for"):
                reasons.append(f"scheduled for {view['scheduled_for']}")
            waiting = "activation"
        elif state == ACTIVE and view["revalidate_required"]:
            waiting, reasons = "revalidation", ["revalidation is required"]
        elif state in (BLOCKED, ROLLED_BACK) and parse_rfc3339(view["updated_at"]) > now - REVIEW_WINDOW:
            last = self.context.uow.stream(UUID(pid))[-1]
            if state == ROLLED_BACK and last.actor != WATCH_ACTOR:
                return None
            waiting = "review"
            reasons = [str(last.payload["reason"]), *last.payload.get("reasons", [])]
        else:
            return None
        return Decision(
            proposal_id=pid,
            tenant_id=view["tenant_id"],
            target=TargetRef(view["target"]["type"], view["target"]["id"]),
            state=state,
            waiting_on=waiting,
            reasons=reasons,
            since=view["updated_at"],
        )

    def _last_check(self, pid: str) -> list[str]:
        for event in reversed(self.context.uow.stream(UUID(pid))):
            if event.type_name == "ApprovalChecked":
                outcome = event.payload.get("outcome", "pending")
                return [f"approval {outcome}", *event.payload.get("reasons", [])]
        return ["approval pending"]
