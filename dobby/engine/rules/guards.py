"""Activation guards (SPEC §4.6), all evaluated and all reported. Pure function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dobby.engine.kernel.errors import Violation
from dobby.engine.kernel.shapes import View
from dobby.engine.rules.holds import Hold
from dobby.engine.rules.lifecycle import APPROVED
from dobby.engine.rules.modes import Mode, required_mode
from dobby.engine.rules.windows import Allowance


class GuardedProposal(Protocol):
    """What the guards read of a proposal (model.proposal.ProposalState is one)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def approval(self) -> dict[str, Any] | None: ...
    @property
    def revalidate_required(self) -> bool: ...
    def approval_expired(self, now: datetime) -> bool: ...


class GuardView(View, frozen=True):
    name: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class Guard:
    name: str
    passed: bool
    reason: str
    code: str

    def view(self) -> GuardView:
        return GuardView(self.name, self.passed, self.reason)

    def violation(self) -> Violation:
        return Violation(self.code, self.reason, extra={"guard": self.name})


ACTIVATION_GUARDS = (
    "mode",
    "state",
    "not_frozen",
    "approval_fresh",
    "not_revalidate_required",
    "target_free",
    "velocity",
)
"""Every guard an activation passes (SPEC §4.6, §12), in the order they are judged."""


def activation_guards(
    proposal: GuardedProposal,
    *,
    mode: Mode,
    other_active_id: str | None,
    velocity: Allowance,
    drift: Sequence[str],
    now: datetime,
    hold: Hold | None = None,
) -> list[Guard]:
    """The guards of SPEC §4.6 and §12 (`not_frozen`, after mode and state), in the spec's order; the first failing
    one decides the answer's status. `hold` is what the tenant's policy holds the target back with now, if anything.

    `drift` is the proposal's bound families against Fabric's document now: a flag set earlier by a processor is
    not needed for a stale binding to hold activation back."""
    state_ok = proposal.state == APPROVED
    fresh = proposal.approval is not None and not proposal.approval_expired(now)
    stale = proposal.revalidate_required or bool(drift)
    if proposal.revalidate_required:
        stale_reason = "revalidation is required"
    elif drift:
        stale_reason = "bound families differ from Fabric now: " + ", ".join(drift)
    else:
        stale_reason = "no revalidation required"
    return [
        Guard(
            "mode",
            mode >= required_mode("activate"),
            f"effective mode is {mode.name}; activation needs {required_mode('activate').name}",
            "mode_forbids",
        ),
        Guard("state", state_ok, f"state is {proposal.state}; activation needs approved", "invalid_state"),
        Guard(
            "not_frozen",
            hold is None,
            hold.describe(proposal.tenant_id) if hold else "no freeze or stop holds the target",
            "frozen",
        ),
        Guard(
            "approval_fresh",
            fresh,
            "approval expires at " + proposal.approval["expires_at"] if proposal.approval else "no approval granted",
            "approval_stale",
        ),
        Guard(
            "not_revalidate_required",
            not stale,
            stale_reason,
            "revalidate_required",
        ),
        Guard(
            "target_free",
            other_active_id is None,
            f"proposal {other_active_id} is active on this target" if other_active_id else "no other active proposal",
            "conflict",
        ),
        Guard(
            "velocity",
            not velocity.exhausted,
            f"{velocity.used} of {velocity.limit} activations used in the last {velocity.window_seconds:g} s",
            "velocity_breaker_open",
        ),
    ]
