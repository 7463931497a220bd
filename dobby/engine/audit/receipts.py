"""Promotion receipts (SPEC §11): an in-toto Statement v1 per activation and rollback, derived from a proposal's
stored events alone. Pure functions; the DSSE envelope and its signature are an adapter's (dobby.adapters.dsse)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dobby.engine.kernel.canonical import content_hash
from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.shapes import View
from dobby.engine.model.chain import ChainedEvent
from dobby.engine.rules.guards import ACTIVATION_GUARDS

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://dobby.local/attestation/promotion-receipt/v1"
"""dobby's own predicate type (docs/AUDIT.md describes its fields)."""
ROLLBACK_GUARDS = ("mode", "state")
"""What a rollback must pass: a mode other than warmup, and an active proposal (SPEC §4.7)."""
ACTIONS = {"Activated": "activation", "RolledBack": "rollback"}


class EnvelopeSignature(View, frozen=True):
    keyid: str
    sig: str
    """base64 of the Ed25519 signature over the DSSE pre-authentication encoding."""


class ReceiptEnvelope(View, frozen=True, rename={"payload_type": "payloadType"}):
    """A DSSE envelope holding one in-toto Statement v1 (the base64 `payload`)."""

    payload_type: str
    payload: str
    signatures: list[EnvelopeSignature]


class ReceiptsAnswer(View, frozen=True):
    """GET /api/v1/audit/receipts/{proposal_id}: every receipt of the proposal, oldest first."""

    items: list[ReceiptEnvelope]


def receipt_statements(
    events: Sequence[ChainedEvent],
    positions: Mapping[int, int],
    leaf_index: Callable[[int], int | None],
    replay: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """One Statement per Activated and RolledBack event of a proposal's stream (in order), for those whose log
    position the Merkle tree already holds (`leaf_index` answers None for the others: not yet derived)."""
    if not events:
        return []
    generated = events[0].payload
    approvals: list[dict[str, Any]] = []
    statements = []
    for event in events:
        if event.type_name == "Approved":
            approvals.append(event.payload["approval"])
        action = ACTIONS.get(event.type_name)
        position = positions.get(event.originator_version)
        if action is None or position is None:
            continue
        index = leaf_index(position)
        if index is None:
            continue
        statements.append(_statement(event, action, position, index, generated, approvals, replay))
    return statements


def _statement(  # noqa: PLR0917
    event: ChainedEvent,
    action: str,
    position: int,
    index: int,
    generated: Mapping[str, Any],
    approvals: list[dict[str, Any]],
    replay: Mapping[str, Any] | None,
) -> dict[str, Any]:
    change_hash = generated.get("change_hash") or content_hash(generated["change"])
    live_hash = change_hash if action == "activation" else content_hash(event.payload["restored_baseline"])
    target = generated["target"]
    predicate: dict[str, Any] = {
        "proposal_id": str(event.originator_id),
        "action": action,
        "actor": event.actor,
        "occurred_at": rfc3339(event.timestamp),
        "position": position,
        "leaf_index": index,
        "stream_version": event.originator_version,
        "event_hash": event.event_hash,
        "tenant_id": generated["tenant_id"],
        "target": target,
        "risk": generated["risk"],
        "change_hash": change_hash,
        "change_judged": generated.get("change_judged"),
        "candidate_hash": generated["candidate_hash"],
        "provenance_hash": generated["provenance_hash"],
        "replay": _replay(generated["replay_id"], replay),
        "approvals": [_approval(granted) for granted in approvals],
        "guards_passed": list(ACTIVATION_GUARDS if action == "activation" else ROLLBACK_GUARDS),
    }
    if action == "rollback":
        predicate["reason"] = event.payload["reason"]
        predicate["restored_baseline_hash"] = live_hash
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"{generated['tenant_id']}/{target['type']}/{target['id']}",
                "digest": {"sha256": live_hash.removeprefix("sha256:")},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def _replay(replay_id: str, replay: Mapping[str, Any] | None) -> dict[str, Any]:
    if replay is None:
        return {"replay_id": replay_id}
    return {
        "replay_id": replay_id,
        "verdict": replay["verdict"],
        "threshold_contract_hash": content_hash(replay["threshold_contract"]),
        "candidate_hash": replay["candidate_hash"],
        "provenance_hash": replay["provenance_hash"],
        "change_hash": replay.get("change_hash"),
        "evaluated_at": replay["evaluated_at"],
    }


def _approval(granted: Mapping[str, Any]) -> dict[str, Any]:
    approvers = granted.get("approvers") or [{"id": granted["approver"], "kind": granted["kind"]}]
    return {
        "approval_id": granted["id"],
        "approvers": [{"id": one["id"], "kind": one["kind"]} for one in approvers],
        "decided_at": granted["decided_at"],
        "expires_at": granted["expires_at"],
        "binding": {key: value for key, value in granted["binding"].items() if value is not None},
    }
