"""Signed checkpoints of the log digest and the proofs served against them (SPEC §11), as values and pure rules."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from dobby.engine.audit import merkle
from dobby.engine.audit.verification import ChainCheck, Entry
from dobby.engine.kernel.canonical import canonical_json
from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.shapes import Hash, Timestamp, View


class Checkpoint(View, frozen=True):
    """The log's Merkle root at `tree_size` events, signed with Ed25519 (key_id and signature null: unsigned)."""

    tree_size: int
    root: str
    signed_at: Timestamp
    key_id: str | None
    signature: str | None


class PublicKey(View, frozen=True):
    key_id: str
    public_key: str
    """base64 of the 32 raw bytes of the Ed25519 public key."""


class InclusionProof(View, frozen=True):
    position: int
    tree_size: int
    event_hash: Hash
    leaf_hash: str
    proof: list[str]
    root: str
    leaf_index: int
    """position − 1 in a log without holes: the index the proof is for."""


class ConsistencyProof(View, frozen=True):
    first: int
    second: int
    proof: list[str]
    first_root: str
    second_root: str


class CheckpointSigner(Protocol):
    """The key checkpoints are signed with (an adapter holds it)."""

    @property
    def public_key(self) -> bytes:
        """The 32 raw bytes of the public key."""

    def sign(self, message: bytes) -> bytes: ...


def key_id_of(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def signed_message(tree_size: int, root: str, signed_at: str) -> bytes:
    """What a checkpoint's signature covers: the canonical JSON (SPEC §3) of {tree_size, root, signed_at}."""
    return canonical_json({"tree_size": tree_size, "root": root, "signed_at": signed_at})


def make_checkpoint(tree_size: int, root: bytes, at: datetime, signer: CheckpointSigner | None) -> Checkpoint:
    signed_at = rfc3339(at)
    if signer is None:
        return Checkpoint(tree_size, root.hex(), signed_at, None, None)
    signature = signer.sign(signed_message(tree_size, root.hex(), signed_at))
    return Checkpoint(
        tree_size, root.hex(), signed_at, key_id_of(signer.public_key), base64.b64encode(signature).decode("ascii")
    )


def public_key_view(signer: CheckpointSigner) -> PublicKey:
    return PublicKey(key_id_of(signer.public_key), base64.b64encode(signer.public_key).decode("ascii"))


def frontier_root(size: int, frontier: dict[int, bytes]) -> bytes:
    """The root of a tree from the perfect subtrees it is made of (merkle.frontier_ids)."""
    if size == 0:
        return merkle.EMPTY_ROOT
    levels = sorted(frontier)
    result = frontier[levels[0]]
    for level in levels[1:]:
        result = merkle.node_hash(frontier[level], result)
    return result


def extension_problems(checkpoint: Checkpoint, entries: Iterable[Entry]) -> tuple[list[str], int, bytes]:
    """Whether the log in `entries` is an append-only extension of the log `checkpoint` signed: its first
    tree_size events must have the checkpoint's root. Returns (problems, the log's size, the log's root).
    Nothing stored is trusted: each event's hash is recomputed from its content and each chain link checked
    before its leaf enters the root, and the roots come from the events themselves, never from the stored tree."""
    problems: list[str] = []
    frontier: dict[int, bytes] = {}
    size = 0
    at_checkpoint = merkle.EMPTY_ROOT if checkpoint.tree_size == 0 else None
    chains = ChainCheck()
    for entry in entries:
        problems += chains.check(entry)
        if entry.event is None:
            return problems, size, b""
        try:
            leaf = merkle.event_leaf(entry.event.event_hash)
        except ValueError as error:
            problems.append(f"position {entry.position}: {error}")
            return problems, size, b""
        merkle.append(size, frontier, leaf)
        size += 1
        if size == checkpoint.tree_size:
            at_checkpoint = frontier_root(size, frontier)
    if at_checkpoint is None:
        problems.append(f"the log holds {size} events; the checkpoint signed {checkpoint.tree_size}: events are gone")
    elif at_checkpoint.hex() != checkpoint.root.lower():
        problems.append(
            f"the first {checkpoint.tree_size} events have root {at_checkpoint.hex()}, the checkpoint signed "
            f"{checkpoint.root}: the log was changed, not only appended to"
        )
    return problems, size, frontier_root(size, frontier)
