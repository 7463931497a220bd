"""Activation guards (SPEC §4.6), all evaluated and all reported. Pure function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dobby.engine.errors import Violation
from dobby.engine.ledger import Allowance
from dobby.engine.lifecycle import APPROVED
from dobby.engine.modes import Mode, required_mode
from dobby.engine.proposal import ProposalState


@dataclass(frozen=True)
class Guard:
    name: str
    passed: bool
    reason: str
    code: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "reason": self.reason}

    def violation(self) -> Violation:
        return Violation(self.code, self.reason, extra={"guard": self.name})


def activation_guards(
    proposal: ProposalState,
    *,
    mode: Mode,
    other_active_id: str | None,
    velocity: Allowance,
    now: datetime,
) -> list[Guard]:
    """The six guards of SPEC §4.6, in the spec's order; the first failing one decides the answer's status."""
    state_ok = proposal.state == APPROVED
    fresh = proposal.approval is not None and not proposal.approval_expired(now)
    return [
        Guard(
            "mode",
            mode >= required_mode("activate"),
            f"effective mode is {mode.name}; activation needs {required_mode('activate').name}",
            "mode_forbids",
        ),
        Guard("state", state_ok, f"state is {proposal.state}; activation needs approved", "invalid_state"),
        Guard(
            "approval_fresh",
            fresh,
            "approval expires at " + proposal.approval["expires_at"] if proposal.approval else "no approval granted",
            "approval_stale",
        ),
        Guard(
            "not_revalidate_required",
            not proposal.revalidate_required,
            "revalidation is required" if proposal.revalidate_required else "no revalidation required",
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
