"""Canonical JSON, content hashes and deterministic identities (SPEC §3)."""

from __future__ import annotations

import hashlib
import math
from typing import Any
from uuid import UUID, uuid5

import msgspec

HASH_PREFIX = "sha256:"
GENESIS_HASH = "0" * 64

# A fixed namespace so that identities are stable across installations.
DOBBY_NAMESPACE = UUID("6f0e3c8a-3d1b-5c53-9a57-1d0bb0b7d0b1")


class NotCanonicalError(ValueError):
    """A value that has no canonical JSON form (NaN, Infinity, non-JSON types)."""


_ENCODER = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> bytes:
    """UTF-8, sorted keys, `,`/`:` separators, no whitespace; NaN and Infinity refused. Structs encode as the
    objects they are on the wire (unset optional fields left out)."""
    try:
        encoded = _ENCODER.encode(value)
    except (TypeError, OverflowError) as error:
        raise NotCanonicalError(str(error)) from error
    if b"null" in encoded and _has_non_finite(value):  # msgspec writes NaN and Infinity as null
        raise NotCanonicalError("NaN and Infinity have no JSON form")
    return encoded


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(item) for item in value)
    if isinstance(value, msgspec.Struct):
        return _has_non_finite(msgspec.to_builtins(value))
    return False


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
