"""`dobby audit receipts` and `dobby audit check-receipt` (SPEC §11): a proposal's promotion receipts, and an
offline check of one — its DSSE signature, its in-toto Statement, and its event's inclusion in a kept checkpoint."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from dobby.adapters.dsse import open_envelope
from dobby.bootstrap import system_from_environment
from dobby.engine.audit import merkle
from dobby.engine.audit.checkpoint import Checkpoint, InclusionProof
from dobby.engine.audit.log_reading import read_entries
from dobby.engine.audit.receipts import PREDICATE_TYPE, STATEMENT_TYPE
from dobby.projections.batches import catch_up
from dobby.projections.merkle_tree import MERKLE


def print_receipts(proposal_id: str) -> int:
    """Every receipt of the proposal, one DSSE envelope per line."""
    system = system_from_environment()
    try:
        system.init_storage()  # the receipts' leaf indexes come from the digest: caught up with the log first
        catch_up(system.store, system.engine.context.uow.log, system.store.projections[MERKLE])
        envelopes = system.receipts.envelopes(proposal_id)
    finally:
        system.close()
    for envelope in envelopes:
        print(json.dumps(envelope, separators=(",", ":")))
    if not envelopes:
        print(f"dobby: proposal {proposal_id} has no receipt yet (none activated or rolled back)", file=sys.stderr)
    return 0


def check_receipts(
    path: Path,
    key: bytes | None,
    checkpoint_path: Path | None,
    proof_path: Path | None,
    checkpoint_signed: Callable[[Checkpoint, bytes | None], bool],
) -> int:
    """Each envelope in `path` (one JSON object, or one per line): signature, Statement, and with a checkpoint
    (itself signed by the key, when one is known: `checkpoint_signed`) the inclusion of its event in the log that
    checkpoint signed. Exit 1 and BROKEN lines when anything fails."""
    try:
        envelopes = _envelopes(path.read_text(encoding="utf-8"))
        checkpoint = None if checkpoint_path is None else _load(checkpoint_path, Checkpoint)
        proof = None if proof_path is None else _load(proof_path, InclusionProof)
    except (OSError, ValueError, msgspec.DecodeError, msgspec.ValidationError) as error:
        print(f"dobby: cannot read the receipt, checkpoint or proof: {error}", file=sys.stderr)
        return 2
    if checkpoint is not None and not checkpoint_signed(checkpoint, key):
        return 1
    ok = True
    for envelope in envelopes:
        ok &= _check_one(envelope, key, checkpoint, proof)
    return 0 if ok else 1


def _check_one(
    envelope: dict[str, Any], key: bytes | None, checkpoint: Checkpoint | None, proof: InclusionProof | None
) -> bool:
    payload, problems = open_envelope(envelope, key)
    statement: dict[str, Any] = {}
    if not problems:
        try:
            statement = json.loads(payload)
        except ValueError as error:
            problems.append(f"the payload is not JSON: {error}")
    if statement:
        problems += _statement_problems(statement)
    if not problems and checkpoint is not None:
        problems += _inclusion_problems(statement["predicate"], checkpoint, proof)
    for line in problems:
        print(f"BROKEN {line}")
    if problems:
        return False
    predicate = statement["predicate"]
    subject = statement["subject"][0]
    signed = "signature valid" if key is not None else "signature not checked (no key given or configured)"
    print(
        f"ok: {predicate['action']} of {subject['name']} to sha256:{subject['digest']['sha256']} by "
        f"{predicate['actor']} at {predicate['occurred_at']} (proposal {predicate['proposal_id']}, position "
        f"{predicate['position']}, leaf {predicate['leaf_index']}); {signed}"
        + ("; its event is in the checkpoint's log" if checkpoint is not None else "")
    )
    return True


def _statement_problems(statement: dict[str, Any]) -> list[str]:
    problems = []
    if statement.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type is {statement.get('_type')!r}, not {STATEMENT_TYPE}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"predicateType is {statement.get('predicateType')!r}, not {PREDICATE_TYPE}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or "sha256" not in subjects[0].get("digest", {}):
        problems.append("the Statement names no subject with a sha256 digest")
    predicate = statement.get("predicate")
    needed = ("proposal_id", "action", "actor", "occurred_at", "position", "leaf_index", "event_hash")
    if not isinstance(predicate, dict) or any(name not in predicate for name in needed):
        problems.append("the predicate lacks one of " + ", ".join(needed))
    return problems


def _inclusion_problems(predicate: dict[str, Any], checkpoint: Checkpoint, proof: InclusionProof | None) -> list[str]:
    index, position, event_hash = predicate["leaf_index"], predicate["position"], predicate["event_hash"]
    if index >= checkpoint.tree_size:
        return [f"leaf {index} is beyond the checkpoint's tree ({checkpoint.tree_size} events): keep a newer one"]
    problems: list[str] = []
    if proof is None:
        proof, problems = _proof_from_store(position, checkpoint.tree_size, event_hash)
        if proof is None:
            return problems
    if proof.leaf_index != index or proof.tree_size != checkpoint.tree_size:
        problems.append(
            f"the proof is for leaf {proof.leaf_index} of {proof.tree_size}, not leaf {index} of {checkpoint.tree_size}"
        )
        return problems
    try:
        path = [bytes.fromhex(node) for node in proof.proof]
        root = merkle.root_from_inclusion(index, checkpoint.tree_size, merkle.event_leaf(event_hash), path)
    except ValueError as error:
        return [*problems, f"the inclusion proof does not hold: {error}"]
    if root.hex() != checkpoint.root.lower():
        problems.append(
            f"event {event_hash} at leaf {index} is not in the log the checkpoint signed (the proof leads to root "
            f"{root.hex()}, the checkpoint signed {checkpoint.root})"
        )
    return problems


def _proof_from_store(position: int, size: int, event_hash: str) -> tuple[InclusionProof | None, list[str]]:
    """The proof from the configured store (untrusted: it must still lead to the kept root), and the stored event
    at that position, its hash recomputed from its content."""
    system = system_from_environment()
    try:
        proof = system.digest.inclusion(position, size)
        entry = next(read_entries(system.engine.context.uow.log, position - 1, position), None)
    finally:
        system.close()
    problems = []
    event = None if entry is None else entry.event
    if event is None or event.event_hash != event_hash:
        problems.append(f"position {position} of the store does not hold event {event_hash}")
    elif event.expected_hash() != event_hash:
        problems.append(f"position {position}: the stored event's content does not give its event_hash")
    return proof, problems


def _envelopes(text: str) -> list[dict[str, Any]]:
    text = text.strip()
    try:
        found = [json.loads(text)]
    except ValueError:
        found = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not found or not all(isinstance(one, dict) for one in found):
        raise ValueError("expected a DSSE envelope (a JSON object), or one per line")
    return found


def _load(path: Path, kind: type[Any]) -> Any:
    return msgspec.json.decode(path.read_bytes(), type=kind)
