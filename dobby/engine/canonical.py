"""Canonical JSON, content hashes and deterministic identities (SPEC §3)."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import UUID, uuid5

HASH_PREFIX = "sha256:"
GENESIS_HASH = "0" * 64

# A fixed namespace so that identities are stable across installations.
DOBBY_NAMESPACE = UUID("6f0e3c8a-3d1b-5c53-9a57-1d0bb0b7d0b1")


class NotCanonicalError(ValueError):
    """A value that has no canonical JSON form (NaN, Infinity, non-JSON types)."""


def canonical_json(value: Any) -> bytes:
    """UTF-8, sorted keys, `,`/`:` separators, no whitespace; NaN and Infinity refused."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError) as error:
        raise NotCanonicalError(str(error)) from error
    return text.encode("utf-8")


def content_hash(value: Any) -> str:
    return HASH_PREFIX + hashlib.sha256(canonical_json(value)).hexdigest()


def identity(kind: str, *parts: str) -> UUID:
    """A deterministic UUIDv5 for a record of `kind` named by `parts`."""
    return uuid5(DOBBY_NAMESPACE, canonical_json([kind, *parts]).decode("utf-8"))


def run_id_for(run_hash: str) -> UUID:
    return identity("run", run_hash)


def replay_id_for(candidate_hash: str, provenance_hash: str) -> UUID:
    return identity("replay", candidate_hash, provenance_hash)


def proposal_id_for(replay_id: UUID) -> UUID:
    return identity("proposal", str(replay_id))


def target_id_for(tenant_id: str, target_type: str, target_key: str) -> UUID:
    return identity("target", tenant_id, target_type, target_key)


def replay_budget_id_for(tenant_id: str, target_type: str, target_key: str) -> UUID:
    return identity("replay-budget", tenant_id, target_type, target_key)


def velocity_ledger_id_for(tenant_id: str) -> UUID:
    return identity("velocity", tenant_id)
