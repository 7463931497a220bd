"""Audit: a proposal's history with the state before and after each event, as-of views, chain checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dobby.engine.audit.verification import first_broken_version
from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.errors import InvalidInputError, Violation
from dobby.engine.kernel.shapes import UNSET, Hash, Timestamp, UnsetType, View
from dobby.engine.model.chain import ChainedEvent
from dobby.engine.model.proposal import Proposal, ProposalState, ProposalView


class HistoryEvent(View, frozen=True):
    version: int
    position: int
    """The event's global log position (SPEC §4.8)."""
    type: str
    occurred_at: Timestamp
    actor: str
    payload: dict[str, Any]
    state_before: str | None
    state_after: str
    prev_hash: Hash
    event_hash: Hash


class History(View, frozen=True):
    """A proposal's audit replay (SPEC §4.8); `as_of` only when the history was asked as of a point."""

    proposal_id: str
    events: list[HistoryEvent]
    chain_valid: bool
    broken_at: int | None
    """The version of the first event that breaks the chain (its hash or its link); null while it holds."""
    as_of: ProposalView | UnsetType | None = UNSET


def proposal_history(
    proposal_id: str,
    events: Sequence[ChainedEvent],
    positions: Mapping[int, int],
    *,
    as_of_version: int | None = None,
    as_of: datetime | None = None,
) -> History:
    """Every event in order with state_before/state_after; with an as-of bound, only events up to it. A version
    beyond the stream's last is out of range (SPEC §4), not "everything"."""
    last = events[-1].originator_version if events else 0
    if as_of_version is not None and as_of_version > last:
        message = f"as_of_version {as_of_version} is beyond this proposal's last version, {last}"
        raise InvalidInputError(message, [Violation("out_of_range", message, "as_of_version")])
    rows = []
    state: ProposalState | None = None
    as_of_state: ProposalState | None = None
    for event in events:
        if as_of_version is not None and event.originator_version > as_of_version:
            break
        if as_of is not None and event.timestamp > as_of:
            break
        before = state
        state = Proposal.evolve(before, event)
        as_of_state = state
        rows.append(
            HistoryEvent(
                version=event.originator_version,
                position=positions.get(event.originator_version, 0),
                type=event.type_name,
                occurred_at=rfc3339(event.timestamp),
                actor=event.actor,
                payload=event.payload,
                state_before=before.state if before else None,
                state_after=state.state,
                prev_hash=event.prev_hash,
                event_hash=event.event_hash,
            )
        )
    bounded = as_of_version is not None or as_of is not None
    broken_at = first_broken_version(events)
    return History(
        proposal_id=proposal_id,
        events=rows,
        chain_valid=broken_at is None,
        broken_at=broken_at,
        as_of=(as_of_state.view() if as_of_state else None) if bounded else UNSET,
    )


def fold(events: Sequence[ChainedEvent]) -> ProposalState | None:
    """The proposal state a stream's events fold to."""
    state: ProposalState | None = None
    for event in events:
        state = Proposal.evolve(state, event)
    return state
