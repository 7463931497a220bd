"""The audit family (SPEC §4.8): records, a proposal's history and its activation guards, read from the event store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from dobby.engine.audit.history import History, proposal_history
from dobby.engine.audit.log_reading import stream_positions
from dobby.engine.commands.context import Context, Scope, may_see
from dobby.engine.commands.loading import (
    guard_inputs,
    load_proposal,
    proposal_uuid,
)
from dobby.engine.kernel.canonical import target_id_for
from dobby.engine.kernel.errors import InvalidInputError, Violation, not_found
from dobby.engine.kernel.shapes import View
from dobby.engine.model.proposal import Generated, ProposalView
from dobby.engine.model.replay import Replay, ReplayInputs, ReplayView
from dobby.engine.model.run import Run, RunView
from dobby.engine.model.target import Target, TargetView
from dobby.engine.rules.guards import GuardView
from dobby.engine.rules.judgement import MetricResult
from dobby.engine.store.unit_of_work import parse_uuid


class Explanation(View, frozen=True):
    proposal_id: str
    state: str
    can_activate: bool
    guards: list[GuardView]
    change_hash: str
    """The hash of the change activation would put live."""
    change_judged: bool | None
    candidate_hash: str
    """What an approval binds (with change_hash inside it when the change was judged)."""
    metric_results: list[MetricResult] = []
    """The replay's judgement the proposal stands on: for summaries, estimate and interval beside the values
    (SPEC §14)."""


@dataclass
class AuditQueries:
    context: Context

    def get_proposal(self, proposal_id: str) -> ProposalView:
        return load_proposal(self.context, proposal_uuid(proposal_id)).state.view()

    def get_run(self, run_id: str) -> RunView:
        run = self.context.uow.get(Run, parse_uuid(run_id))
        if run is None:
            raise not_found("run", run_id)
        return run.state.view()

    def get_replay(self, replay_id: str) -> ReplayView:
        replay = self.context.uow.get(Replay, parse_uuid(replay_id))
        if replay is None:
            raise not_found("replay", replay_id)
        return replay.state.view()

    def get_replay_inputs(self, replay_id: str) -> ReplayInputs:
        replay = self.context.uow.get(Replay, parse_uuid(replay_id))
        if replay is None:
            raise not_found("replay", replay_id)
        state = replay.state
        return ReplayInputs(state.metrics, state.threshold_contract, state.workload_similar)

    def get_target(self, tenant_id: str, target_type: str, target_key: str) -> TargetView | None:
        holder = self.context.uow.get(Target, target_id_for(tenant_id, target_type, target_key))
        return None if holder is None else holder.state.view()

    def get_history(
        self,
        proposal_id: str,
        *,
        as_of_version: int | None = None,
        as_of: datetime | None = None,
        tenants: Scope = None,
    ) -> History:
        pid = proposal_uuid(proposal_id)
        if as_of_version is not None and as_of_version < 1:
            message = "as_of_version must be ≥ 1"
            raise InvalidInputError(message, [Violation("out_of_range", message, "as_of_version")])
        events = self.context.uow.stream(pid)
        if (
            not events
            or not isinstance(events[0], Generated.Event)
            or not may_see(tenants, events[0].payload["tenant_id"])
        ):
            raise not_found("proposal", proposal_id)
        positions = stream_positions(self.context.uow.log, pid)
        return proposal_history(str(pid), events, positions, as_of_version=as_of_version, as_of=as_of)

    def get_explanation(self, proposal_id: str, *, tenants: Scope = None) -> Explanation:
        context = self.context
        now = context.now()
        proposal = load_proposal(context, proposal_uuid(proposal_id), tenants)
        state = proposal.state
        guards = guard_inputs(context, proposal, context.mode(), now).guards
        replay = context.uow.get(Replay, parse_uuid(state.replay_id))
        return Explanation(
            proposal_id=state.proposal_id,
            state=state.state,
            can_activate=all(guard.passed for guard in guards),
            guards=[guard.view() for guard in guards],
            change_hash=state.content_hash,
            change_judged=state.change_judged,
            candidate_hash=state.candidate_hash,
            metric_results=[] if replay is None else replay.state.view().metric_results,
        )

    def verify_stream(self, stream_id: UUID) -> bool:
        return self.context.uow.verify_stream(stream_id)
