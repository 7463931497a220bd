"""The policy family (SPEC §12): declare and lift freezes, stop and resume a tenant's activations, list freezes.

Safety actions: allowed in every mode but warmup. Each is an event of the tenant's policy stream, so history shows
who froze what and why. Re-sending the same freeze finds the same freeze (its id is its content).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, structs

from dobby.engine.commands.context import Context, Scope, may_see, require_tenant, transaction
from dobby.engine.kernel.canonical import freeze_id_for, policy_id_for
from dobby.engine.kernel.clock import parse_moment, rfc3339
from dobby.engine.kernel.errors import InvalidInputError, InvalidStateError, Violation, not_found
from dobby.engine.kernel.shapes import UNSET, Identifier, Moment, Reason, Shape, UnsetType, View, is_identifier
from dobby.engine.model import policy as stored
from dobby.engine.model.policy import FreezeFile, FreezeView, PolicyState, TenantPolicy
from dobby.engine.store.unit_of_work import parse_uuid

TargetPattern = Annotated[str, Meta(min_length=1, max_length=400, pattern=r"^[^\x00-\x1f\x7f]*$")]


class DeclareFreeze(Shape, frozen=True):
    """Hold back activations of the tenant's targets matching `targets` (fnmatch over `type:id`) for a window."""

    tenant_id: Identifier
    ends_at: Moment
    reason: Reason
    targets: TargetPattern = "*"
    starts_at: Moment | UnsetType = UNSET


class TenantAction(Shape, frozen=True):
    """Stop or resume every activation of a tenant."""

    tenant_id: Identifier
    reason: Reason


class FreezeAnswer(FreezeView, frozen=True, kw_only=True):
    position: int
    duplicate: bool = False


class StopAnswer(View, frozen=True, kw_only=True):
    tenant_id: str
    stopped: bool
    reason: str | None
    since: str | None
    position: int


@dataclass
class PolicyCommands:
    context: Context

    def declare_freeze(self, body: DeclareFreeze, *, actor: str, tenants: Scope = None) -> tuple[FreezeAnswer, bool]:
        """The freeze and whether it was created now (False: the same freeze was already declared)."""
        require_tenant(tenants, body.tenant_id)
        context = self.context
        context.require_mode("freeze")
        now = context.now()
        starts = now if isinstance(body.starts_at, UnsetType) else _moment("starts_at", body.starts_at)
        ends = _moment("ends_at", body.ends_at)
        if ends <= starts or ends <= now:
            message = "ends_at must be later than starts_at and than now"
            raise InvalidInputError(message, [Violation("out_of_range", message, "ends_at")])
        starts_at, ends_at = rfc3339(starts), rfc3339(ends)
        freeze_id = str(freeze_id_for(body.tenant_id, body.targets, starts_at, ends_at, body.reason))
        declared = stored.FreezeDeclared(freeze_id, body.targets, starts_at, ends_at, body.reason)
        return self._declare(body.tenant_id, declared, actor=actor)

    @transaction
    def _declare(
        self, at: datetime, tenant_id: str, declared: stored.FreezeDeclared, *, actor: str
    ) -> tuple[FreezeAnswer, bool]:
        freeze_id = declared.freeze_id
        policy = self._policy(tenant_id, actor, at)
        known = policy.state.freeze(freeze_id)
        if known is not None:
            return _freeze_answer(known.view(), self.context.uow.position(), duplicate=True), False
        policy.declare(declared, actor=actor, at=at)
        filed = FreezeFile.open(UUID(freeze_id), tenant_id, actor=actor, at=at)
        position = self.context.uow.save(policy, filed)
        recorded = policy.state.freeze(freeze_id)
        assert recorded is not None
        return _freeze_answer(recorded.view(), position), True

    def lift_freeze(self, freeze_id: str, reason: str, *, tenants: frozenset[str] | None, actor: str) -> FreezeAnswer:
        """End a freeze now. `tenants`: those the caller may act for (None: any)."""
        context = self.context
        context.require_mode("lift_freeze")
        if not is_identifier(reason, 2000):
            message = "reason is required: say why the freeze ends early (1 to 2000 characters, no control characters)"
            raise InvalidInputError(message, [Violation("out_of_range", message, "reason")])
        tenant_id = self.tenant_of_freeze(freeze_id, tenants)

        return self._lift(tenant_id, freeze_id, reason, actor)

    @transaction
    def _lift(self, at: datetime, tenant_id: str, freeze_id: str, reason: str, actor: str) -> FreezeAnswer:
        policy = self._policy(tenant_id, actor, at)
        freeze = policy.state.freeze(freeze_id)
        assert freeze is not None
        if freeze.is_past(at):
            raise InvalidStateError(f"freeze {freeze_id} has already ended")
        policy.lift(freeze_id, reason, actor=actor, at=at)
        position = self.context.uow.save(policy)
        lifted = policy.state.freeze(freeze_id)
        assert lifted is not None
        return _freeze_answer(lifted.view(), position)

    def stop(self, body: TenantAction, *, actor: str, tenants: Scope = None) -> StopAnswer:
        require_tenant(tenants, body.tenant_id)
        return self._stop_or_resume(body, "stop", actor)

    def resume(self, body: TenantAction, *, actor: str, tenants: Scope = None) -> StopAnswer:
        require_tenant(tenants, body.tenant_id)
        return self._stop_or_resume(body, "resume", actor)

    def _stop_or_resume(self, body: TenantAction, action: Literal["stop", "resume"], actor: str) -> StopAnswer:
        """Stopping a stopped tenant, or resuming a running one, writes nothing and answers the state as it is."""
        self.context.require_mode(action)
        return self._stop_or_resume_now(body, action, actor)

    @transaction
    def _stop_or_resume_now(
        self, at: datetime, body: TenantAction, action: Literal["stop", "resume"], actor: str
    ) -> StopAnswer:
        policy = self._policy(body.tenant_id, actor, at)
        stopped = policy.state.stop is not None
        if (action == "stop") == stopped:
            return _stop_answer(policy.state, self.context.uow.position())
        if action == "stop":
            policy.stop(body.reason, actor=actor, at=at)
        else:
            policy.resume(body.reason, actor=actor, at=at)
        return _stop_answer(policy.state, self.context.uow.save(policy))

    def freezes(self, tenant_id: str, *, include_past: bool) -> list[FreezeView]:
        """The tenant's freezes in force or to come (and ended ones too when asked), newest first."""
        state = self.policy_state(tenant_id)
        if state is None:
            return []
        now = self.context.now()
        found = [freeze.view() for freeze in state.freezes if include_past or not freeze.is_past(now)]
        return found[::-1]

    def policy_state(self, tenant_id: str) -> PolicyState | None:
        policy = self.context.uow.get(TenantPolicy, policy_id_for(tenant_id))
        return None if policy is None else policy.state

    def tenant_of_freeze(self, freeze_id: str, tenants: frozenset[str] | None) -> str:
        """The tenant a freeze belongs to; a freeze of a tenant the caller may not act for is not found."""
        filed = self.context.uow.get(FreezeFile, parse_uuid(freeze_id))
        if filed is None or not may_see(tenants, filed.state):
            raise not_found("freeze", freeze_id)
        return filed.state

    def _policy(self, tenant_id: str, actor: str, at: datetime) -> TenantPolicy:
        policy_id = policy_id_for(tenant_id)
        return self.context.uow.get(TenantPolicy, policy_id) or TenantPolicy.open(
            policy_id, tenant_id, actor=actor, at=at
        )


def _moment(field: str, text: str) -> datetime:
    return parse_moment(text, field)


def _freeze_answer(view: FreezeView, position: int, *, duplicate: bool = False) -> FreezeAnswer:
    return FreezeAnswer(**structs.asdict(view), position=position, duplicate=duplicate)


def _stop_answer(state: PolicyState, position: int) -> StopAnswer:
    stop = state.stop
    return StopAnswer(
        tenant_id=state.tenant_id,
        stopped=stop is not None,
        reason=None if stop is None else stop.reason,
        since=None if stop is None else stop.stopped_at,
        position=position,
    )
