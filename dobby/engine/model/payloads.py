"""Every event's stored shape by its name: `schemas/events/` is generated from these, and the state machine checks
every payload it stores against them. Each is declared once, with its stream (chain.EventPayload)."""

from __future__ import annotations

from typing import Any

import msgspec

from dobby.engine.model import ledger, policy, proposal, replay, run, target
from dobby.engine.model.chain import EventPayload

STREAMS = (
    run.Run,
    replay.Replay,
    proposal.Proposal,
    target.Target,
    ledger.Ledger,
    policy.TenantPolicy,
    policy.FreezeFile,
)

EVENT_PAYLOADS: dict[str, type[EventPayload]] = {
    event.payload_type.__name__: event.payload_type for stream in STREAMS for event in stream.events
}


def payload_problem(event_type: str, payload: dict[str, Any]) -> str | None:
    """Why `payload` is not a valid payload of `event_type`, or None."""
    try:
        msgspec.convert(payload, EVENT_PAYLOADS[event_type])
    except (msgspec.ValidationError, KeyError) as error:
        return str(error)
    return None
