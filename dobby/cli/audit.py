"""`dobby audit …` (SPEC §7, §11): a proposal's history, every chain, the whole log, keys and checkpoints."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from dobby.adapters.settings import load_settings
from dobby.adapters.signing import (
    SigningKeyError,
    generate_key_file,
    load_signer,
    public_key_from_base64,
    signature_is_valid,
)
from dobby.bootstrap import engine_from_environment, system_from_environment
from dobby.cli.receipts import check_receipts, print_receipts
from dobby.cli.store import require_store
from dobby.engine.audit.checkpoint import (
    Checkpoint,
    extension_problems,
    key_id_of,
    public_key_view,
    signed_message,
)
from dobby.engine.audit.log_reading import read_entries
from dobby.engine.audit.verification import LogReport, check_log
from dobby.projections.batches import catch_up
from dobby.projections.merkle_tree import MERKLE

ACTIONS = ("verify-log", "keygen", "export-checkpoint", "check-checkpoint", "receipts", "check-receipt")
DEFAULT_KEY_FILE = Path("var/audit-signing.key")
SHOWN_PROBLEMS = 200


def add_audit_parser(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="a proposal's history; --verify: every chain; " + " | ".join(ACTIONS),
    )
    audit.add_argument("proposal_id", nargs="?", default=None, help=f"a proposal id, or one of: {', '.join(ACTIONS)}")
    audit.add_argument(
        "file",
        nargs="?",
        default=None,
        help="keygen: the key file; check-checkpoint: the checkpoint; receipts: a proposal; check-receipt: a receipt",
    )
    audit.add_argument("--as-of-version", type=int, default=None)
    audit.add_argument("--verify", action="store_true", help="exit 1 unless the hash chain (or, alone, every) verifies")
    audit.add_argument("--json", action="store_true", help="print the history as JSON")
    audit.add_argument(
        "--public-key", default=None, help="check-checkpoint, check-receipt: the base64 key of GET /api/v1/audit/key"
    )
    audit.add_argument("--checkpoint", default=None, help="check-receipt: a kept checkpoint its event must be in")
    audit.add_argument("--proof", default=None, help="check-receipt: the inclusion proof (else from the store)")
    audit.set_defaults(handler=audit_command)


def audit_command(args: argparse.Namespace) -> int:
    action = args.proposal_id
    # keygen reads no store, nor does check-receipt unless it must fetch an inclusion proof from it
    offline = action == "keygen" or (action == "check-receipt" and (args.checkpoint is None or args.proof is not None))
    if not offline:
        require_store()
    if action is None:
        if not args.verify:
            print("dobby: name a proposal, use --verify, or one of: " + ", ".join(ACTIONS), file=sys.stderr)
            return 2
        return verify_streams()
    if action == "verify-log":
        return verify_log()
    if action == "keygen":
        return keygen(args.file)
    if action == "export-checkpoint":
        return export_checkpoint()
    if action == "check-checkpoint":
        if args.file is None:
            print("dobby: audit check-checkpoint FILE: name the checkpoint file", file=sys.stderr)
            return 2
        return check_checkpoint(Path(args.file), args.public_key)
    if action in ("receipts", "check-receipt"):
        return receipts_command(action, args)
    return history(args)


def receipts_command(action: str, args: argparse.Namespace) -> int:
    if args.file is None:
        what = "PROPOSAL_ID: name the proposal" if action == "receipts" else "FILE: name the receipt file"
        print(f"dobby: audit {action} {what}", file=sys.stderr)
        return 2
    if action == "receipts":
        return print_receipts(args.file)
    if args.proof is not None and args.checkpoint is None:
        print("dobby: audit check-receipt: --proof needs --checkpoint", file=sys.stderr)
        return 2
    try:
        key = _public_key(args.public_key)
    except SigningKeyError as error:
        print(f"dobby: {error}", file=sys.stderr)
        return 2
    checkpoint, proof = (None if value is None else Path(value) for value in (args.checkpoint, args.proof))
    return check_receipts(Path(args.file), key, checkpoint, proof, check_signature)


def history(args: argparse.Namespace) -> int:
    engine = engine_from_environment()
    try:
        found = msgspec.to_builtins(engine.audit.get_history(args.proposal_id, as_of_version=args.as_of_version))
    finally:
        engine.close()
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        _print_history(found)
    return 0 if found["chain_valid"] or not args.verify else 1


def _print_history(found: dict[str, Any]) -> None:
    print(f"proposal {found['proposal_id']}")
    for event in found["events"]:
        print(
            f"  v{event['version']:<3} #{event['position']:<8} {event['occurred_at']}  {event['type']:<22} "
            f"{event['state_before'] or '—':>16} → {event['state_after']:<16} by {event['actor']}"
        )
    print(f"chain {'valid' if found['chain_valid'] else 'BROKEN'}")


def verify_streams() -> int:
    """Every chain of every stream of every kind."""
    engine = engine_from_environment()
    try:
        report = check_log(read_entries(engine.context.uow.log))
    finally:
        engine.close()
    return _report("every stream", report)


def verify_log() -> int:
    """Every chain, and every event in exactly one stream position: positions without holes, and each event
    still where the log digest saw it."""
    system = system_from_environment()
    try:
        system.init_storage()
        log = system.engine.context.uow.log
        report = check_log(read_entries(log), positions=True, seen=system.digest.seen())
    finally:
        system.close()
    return _report("the log", report)


def _report(what: str, report: LogReport) -> int:
    for line in report.problems[:SHOWN_PROBLEMS]:
        print(f"BROKEN {line}")
    if len(report.problems) > SHOWN_PROBLEMS:
        print(f"… and {len(report.problems) - SHOWN_PROBLEMS} more")
    print(f"{what}: {report.summary()}")
    return 0 if report.ok else 1


def keygen(file: str | None) -> int:
    configured = os.environ.get("DOBBY_AUDIT_SIGNING_KEY", "").strip()
    path = Path(file) if file else Path(configured) if configured else DEFAULT_KEY_FILE
    try:
        signer = generate_key_file(path, make_directory=path == DEFAULT_KEY_FILE)
    except SigningKeyError as error:
        print(f"dobby: {error}", file=sys.stderr)
        return 1
    key = public_key_view(signer)
    print(f"wrote a new Ed25519 signing key to {path} (mode 0600: keep it secret, keep a copy)")
    print(f"key_id: {key.key_id}")
    print(f"public_key: {key.public_key}")
    print(f"sign checkpoints with it: DOBBY_AUDIT_SIGNING_KEY={path} (for dobby serve and dobby process)")
    return 0


def export_checkpoint() -> int:
    """The digest caught up with the log and a checkpoint of all of it printed: with a signing key configured,
    always one signed by that key (a fresh one is signed and stored when the newest is unsigned, signed by another
    key, or covers fewer events than the log holds)."""
    system = system_from_environment()
    try:
        system.init_storage()
        catch_up(system.store, system.engine.context.uow.log, system.store.projections[MERKLE])
        checkpoint = system.digest.fresh()
        signer = system.digest.signer
    finally:
        system.close()
    if signer is None:
        print("dobby: WARNING: this checkpoint is unsigned (no DOBBY_AUDIT_SIGNING_KEY)", file=sys.stderr)
    elif checkpoint.key_id != key_id_of(signer.public_key):
        print(f"dobby: no checkpoint signed by key {key_id_of(signer.public_key)} could be stored", file=sys.stderr)
        return 1
    print(msgspec.json.encode(checkpoint).decode("utf-8"))
    return 0


def check_checkpoint(path: Path, public_key: str | None) -> int:
    """Whether the log now is an append-only extension of the one `path`'s checkpoint signed."""
    try:
        checkpoint = msgspec.json.decode(path.read_bytes(), type=Checkpoint)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as error:
        print(f"dobby: {path}: not a checkpoint: {error}", file=sys.stderr)
        return 2
    try:
        key = _public_key(public_key)
    except SigningKeyError as error:
        print(f"dobby: {error}", file=sys.stderr)
        return 2
    signature_ok = check_signature(checkpoint, key)
    engine = engine_from_environment()
    try:
        problems, size, root = extension_problems(checkpoint, read_entries(engine.context.uow.log))
    finally:
        engine.close()
    for line in problems[:SHOWN_PROBLEMS]:
        print(f"BROKEN {line}")
    if len(problems) > SHOWN_PROBLEMS:
        print(f"… and {len(problems) - SHOWN_PROBLEMS} more")
    if signature_ok and not problems:
        print(
            f"ok: the log ({size} events, root {root.hex()}) is an append-only extension of the checkpoint "
            f"({checkpoint.tree_size} events, root {checkpoint.root}, signed at {checkpoint.signed_at})"
        )
    return 0 if signature_ok and not problems else 1


def check_signature(checkpoint: Checkpoint, key: bytes | None) -> bool:
    """With a key (given or configured) the checkpoint must be signed by it; without one, only its root counts."""
    unsigned = checkpoint.signature is None or checkpoint.key_id is None
    if key is None:
        if unsigned:
            print("note: the checkpoint is unsigned; only its root is checked")
        else:
            print("note: signature not checked: give --public-key (GET /api/v1/audit/key) or DOBBY_AUDIT_SIGNING_KEY")
        return True
    if unsigned:
        print(f"BROKEN the checkpoint is unsigned, but key {key_id_of(key)} is expected to have signed it")
        return False
    assert checkpoint.signature is not None
    if key_id_of(key) != checkpoint.key_id:
        print(f"BROKEN the checkpoint was signed by key {checkpoint.key_id}, not by key {key_id_of(key)}")
        return False
    message = signed_message(checkpoint.tree_size, checkpoint.root, checkpoint.signed_at)
    if not signature_is_valid(key, message, checkpoint.signature):
        print(f"BROKEN the signature does not verify with key {checkpoint.key_id}: the checkpoint was altered")
        return False
    print(f"signature valid (key {checkpoint.key_id})")
    return True


def _public_key(given: str | None) -> bytes | None:
    if given is not None:
        return public_key_from_base64(given)
    settings = load_settings(os.environ)
    if settings.audit_signing_key is None:
        return None
    return load_signer(settings.audit_signing_key).public_key
