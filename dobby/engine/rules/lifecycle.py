"""The proposal lifecycle of SPEC §1 as data: which event moves which state where."""

from __future__ import annotations

from typing import Final

GENERATED: Final = "generated"
REPLAY_VALIDATED: Final = "replay_validated"
APPROVED: Final = "approved"
BLOCKED: Final = "blocked"
ACTIVE: Final = "active"
ROLLED_BACK: Final = "rolled_back"
EXPIRED: Final = "expired"

STATES: Final = (GENERATED, REPLAY_VALIDATED, APPROVED, ACTIVE, ROLLED_BACK, BLOCKED, EXPIRED)
"""Every state, in the order a proposal meets them on its way (the console lists them so)."""
OPEN_STATES: Final = frozenset({GENERATED, REPLAY_VALIDATED, APPROVED})
TERMINAL_STATES: Final = frozenset({BLOCKED, ROLLED_BACK, EXPIRED})

# (from state, event type) → to state. None as the from state is the stream's first event.
TRANSITIONS: Final[dict[tuple[str | None, str], str]] = {
    (None, "Generated"): GENERATED,
    (GENERATED, "ReplayValidated"): REPLAY_VALIDATED,
    (GENERATED, "Blocked"): BLOCKED,
    (REPLAY_VALIDATED, "Approved"): APPROVED,
    (REPLAY_VALIDATED, "Blocked"): BLOCKED,
    (APPROVED, "Activated"): ACTIVE,
    (APPROVED, "Blocked"): BLOCKED,
    (ACTIVE, "RolledBack"): ROLLED_BACK,
    (GENERATED, "Expired"): EXPIRED,
    (REPLAY_VALIDATED, "Expired"): EXPIRED,
    (APPROVED, "Expired"): EXPIRED,
}

# Events that record a fact about a proposal without moving it, and the states they may occur in.
NON_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "ApprovalChecked": frozenset({REPLAY_VALIDATED}),
    "RevalidationRequired": OPEN_STATES | {ACTIVE},
    "Observed": frozenset({ACTIVE}),
    "ActivationScheduled": frozenset({APPROVED}),
    "ActivationUnscheduled": frozenset({APPROVED}),
    "ActivationSkipped": frozenset({APPROVED}),
}


OPERATOR_ACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "approve-check": ("ReplayValidated", "Approved"),
    "activate": ("Activated",),
    "rollback": ("RolledBack",),
}
"""What an operator may ask of a proposal (SPEC §4.5–§4.7), by the transitions each can make."""


def actions_in(state: str) -> tuple[str, ...]:
    """The operator actions a proposal in `state` can take: those whose transitions start there."""
    return tuple(
        action for action, events in OPERATOR_ACTIONS.items() if any((state, event) in TRANSITIONS for event in events)
    )


def next_state(state: str | None, event_type: str) -> str | None:
    """The state after `event_type` from `state`, or None when the lifecycle does not allow it."""
    if event_type in NON_TRANSITIONS:
        return state if state in NON_TRANSITIONS[event_type] else None
    return TRANSITIONS.get((state, event_type))
