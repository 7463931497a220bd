"""The blocking client of the dobby API (`dobby.client.Client`)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from dobby.client import calls
from dobby.client.calls import Call, Page
from dobby.client.errors import DobbyUnreachableError
from dobby.client.session import DEFAULT_TIMEOUT, Body, Session
from dobby.engine.audit.history import History
from dobby.engine.commands.activation import RollbackAnswer
from dobby.engine.commands.audit import Explanation
from dobby.engine.commands.decisions import Decision
from dobby.engine.commands.intake import IntakeAccepted, SampledOut
from dobby.engine.commands.loading import ProposalAnswer
from dobby.engine.commands.promotion import CheckAnswer, Propose
from dobby.engine.commands.replay import EvaluateReplay, ReplayAnswer
from dobby.engine.commands.schedule import ScheduledAnswer
from dobby.engine.commands.watch import ObserveAnswer
from dobby.engine.model.proposal import ProposalView
from dobby.engine.model.replay import ReplayView
from dobby.engine.model.run import RunView
from dobby.engine.model.target import TargetRead
from dobby.engine.rules.intake import IntakeSignal

T = TypeVar("T")


class Client:
    """The blocking client. `http` may be an httpx.Client of your own (its base_url is then used)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:18096",
        *,
        token: str | None = None,
        actor: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        http: httpx.Client | None = None,
    ) -> None:
        self.session = Session(token, actor, retries)
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)

    @property
    def position(self) -> int:
        return self.session.position

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self.http.request(**self.session.arguments(call), headers=self.session.headers)
            except httpx.TransportError as error:
                pause = self.session.pause(call, attempt, error)
                if pause is None:
                    raise DobbyUnreachableError(f"no answer from dobby: {error!r}") from error
            else:
                pause = self.session.pause(call, attempt, response)
                if pause is None:
                    return self.session.outcome(call, response)
            time.sleep(pause)
            attempt += 1

    def intake(self, body: IntakeSignal | Body) -> IntakeAccepted | SampledOut:
        return self.run(calls.intake(body))

    def evaluate_replay(self, body: EvaluateReplay | Body) -> ReplayAnswer:
        return self.run(calls.evaluate_replay(body))

    def propose(self, body: Propose | Body) -> ProposalAnswer:
        return self.run(calls.propose(body))

    def approve_check(self, proposal_id: str) -> CheckAnswer:
        return self.run(calls.approve_check(proposal_id))

    def activate(self, proposal_id: str, not_before: str | None = None) -> ProposalAnswer | ScheduledAnswer:
        return self.run(calls.activate(proposal_id, not_before))

    def unschedule(self, proposal_id: str) -> ProposalAnswer:
        return self.run(calls.unschedule(proposal_id))

    def rollback(self, proposal_id: str, reason: str) -> RollbackAnswer:
        return self.run(calls.rollback(proposal_id, reason))

    def observe(self, proposal_id: str, metrics: Body) -> ObserveAnswer:
        return self.run(calls.observe(proposal_id, metrics))

    def get_run(self, run_id: str) -> RunView:
        return self.run(calls.get_run(run_id))

    def get_replay(self, replay_id: str) -> ReplayView:
        return self.run(calls.get_replay(replay_id))

    def get_proposal(self, proposal_id: str) -> ProposalView:
        return self.run(calls.get_proposal(proposal_id))

    def list_runs(self, **filters: Any) -> Page[RunView]:
        return self.run(calls.list_runs(**filters))

    def list_replays(self, **filters: Any) -> Page[ReplayView]:
        return self.run(calls.list_replays(**filters))

    def list_proposals(self, **filters: Any) -> Page[ProposalView]:
        return self.run(calls.list_proposals(**filters))

    def decisions(self, tenant_id: str, **filters: Any) -> Page[Decision]:
        return self.run(calls.decisions(tenant_id, **filters))

    def history(self, proposal_id: str, *, as_of_version: int | None = None, as_of: str | None = None) -> History:
        return self.run(calls.history(proposal_id, as_of_version=as_of_version, as_of=as_of))

    def explain(self, proposal_id: str) -> Explanation:
        return self.run(calls.explain(proposal_id))

    def target(self, tenant_id: str, target_type: str, target_id: str) -> TargetRead:
        return self.run(calls.target(tenant_id, target_type, target_id))
