"""Canonical JSON, content hashes and deterministic identities (SPEC §3)."""

from __future__ import annotations

import hashlib
import math
import re
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
    if b"null" in encoded and _may_hold_non_finite(value) and _has_non_finite(value):
        raise NotCanonicalError("NaN and Infinity have no JSON form")  # msgspec would have written them as null
    return encoded


# In MessagePack, as msgspec writes it, every float is 0xcb and eight big-endian bytes; NaN and ±Infinity have all
# exponent bits set. Bytes that cannot be such a float prove the value holds none, without walking it in Python
# (most payloads hold a null, so the JSON alone cannot tell); a match may be a false alarm, and the walk decides.
_NON_FINITE_FLOAT = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]")


def _may_hold_non_finite(value: Any) -> bool:
    try:
        packed = msgspec.msgpack.encode(value)
    except (TypeError, OverflowError):
        return True
    return _NON_FINITE_FLOAT.search(packed) is not None


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


def policy_id_for(tenant_id: str) -> UUID:
    return identity("policy", tenant_id)


def freeze_id_for(tenant_id: str, targets: str, starts_at: str, ends_at: str, reason: str) -> UUID:
    return identity("freeze", tenant_id, targets, starts_at, ends_at, reason)
