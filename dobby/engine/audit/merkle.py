"""The RFC 6962 Merkle tree (SPEC §11): leaf and node hashes, roots, inclusion and consistency proofs, appending.

Nodes are named (level, index): the perfect subtree over leaves [index·2^level, (index+1)·2^level). A tree is read
through a `Nodes` function that answers any such perfect subtree of the stored tree; every hash the RFC asks for
is a fold of perfect subtrees, so nothing else needs storing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, MutableMapping

Nodes = Callable[[int, int], bytes]
"""(level, index) → the hash of that perfect subtree (level 0: a leaf hash)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def event_leaf(event_hash: str) -> bytes:
    """A leaf of dobby's log: SHA-256(0x00 ‖ the 32 raw bytes of the event's `sha256:<hex>` event_hash)."""
    raw = bytes.fromhex(event_hash.removeprefix("sha256:"))
    if len(raw) != hashlib.sha256().digest_size:
        raise ValueError(f"event_hash {event_hash!r} is not 32 bytes")
    return leaf_hash(raw)


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_hash(start: int, end: int, nodes: Nodes) -> bytes:
    """MTH(D[start:end]) for the ranges the RFC's recursion visits (start aligned to the range's left split)."""
    size = end - start
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return nodes(level, start >> level)
    k = _split(size)
    return node_hash(subtree_hash(start, start + k, nodes), subtree_hash(start + k, end, nodes))


def root(size: int, nodes: Nodes) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, nodes)


def inclusion_proof(index: int, size: int, nodes: Nodes) -> list[bytes]:
    """PATH(index, D[size]) of RFC 6962 §2.1.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(subtree_hash(start + k, end, nodes))
            end = start + k
        else:
            proof.append(subtree_hash(start, start + k, nodes))
            start += k
    proof.reverse()
    return proof


def consistency_proof(first: int, second: int, nodes: Nodes) -> list[bytes]:
    """PROOF(first, D[second]) of RFC 6962 §2.1.2."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    proof: list[bytes] = []
    start, end, whole = 0, second, True
    while first != end:
        k = _split(end - start)
        if first - start <= k:
            proof.append(subtree_hash(start + k, end, nodes))
            end = start + k
        else:
            proof.append(subtree_hash(start, start + k, nodes))
            start += k
            whole = False
    if not whole:
        proof.append(subtree_hash(start, end, nodes))
    proof.reverse()
    return proof


def frontier_ids(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees a tree of `size` leaves is made of, one per set bit of `size`."""
    return [(level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1]


def append(size: int, frontier: MutableMapping[int, bytes], leaf: bytes) -> list[tuple[int, int, bytes]]:
    """Add `leaf` as leaf number `size`: updates `frontier` (level → hash, as `frontier_ids`) and returns the
    perfect subtrees of level ≥ 1 the leaf completes, as (level, index, hash)."""
    completed = []
    node, level, index = leaf, 0, size
    while index & 1:
        node = node_hash(frontier.pop(level), node)
        level, index = level + 1, index >> 1
        completed.append((level, index, node))
    frontier[level] = node
    return completed


def needed(compute: Callable[[Nodes], object]) -> set[tuple[int, int]]:
    """The perfect subtrees `compute` asks for (which ones depends on sizes only, never on hashes), so a store
    can fetch them in one query before computing for real."""
    asked: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        asked.add((level, index))
        return EMPTY_ROOT

    compute(record)
    return asked


def memory_nodes(leaves: Iterable[bytes]) -> Nodes:
    """Nodes over leaf hashes held in memory (every perfect subtree, computed once)."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return lambda level, index: levels[level][index]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """The root an inclusion proof leads to from `leaf` at `index` in a tree of `size` (RFC 9162 §2.1.3.2); a
    proof of the wrong shape raises ValueError. The proof verifies when this equals a root one trusts."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    fn, sn, result = index, size - 1, leaf
    for node in proof:
        if sn == 0:
            raise ValueError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(node, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, node)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree is deep")
    return result
