"""DSSE envelopes for promotion receipts (SPEC §11), through securesystemslib's DSSE implementation: the payload
is the canonical JSON of an in-toto Statement, signed with the audit key (Ed25519 over the pre-authentication
encoding), keyid the checkpoint key_id. Without a key the envelope carries no signature."""

from __future__ import annotations

from typing import Any

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import Key, SecretsHandler, Signature, Signer, SSlibKey

from dobby.engine.audit.checkpoint import CheckpointSigner, key_id_of
from dobby.engine.audit.receipts import PAYLOAD_TYPE
from dobby.engine.kernel.canonical import canonical_json


def public_key_of(raw: bytes) -> SSlibKey:
    """An Ed25519 public key (32 raw bytes) as securesystemslib names it, keyid dobby's key_id."""
    return SSlibKey(key_id_of(raw), "ed25519", "ed25519", {"public": raw.hex()})


class AuditKeySigner(Signer):
    """securesystemslib's Signer over the key dobby signs checkpoints with."""

    def __init__(self, signer: CheckpointSigner) -> None:
        self._signer = signer
        self._public = public_key_of(signer.public_key)

    @property
    def public_key(self) -> Key:
        return self._public

    @classmethod
    def from_priv_key_uri(
        cls, priv_key_uri: str, public_key: Key, secrets_handler: SecretsHandler | None = None
    ) -> Signer:
        raise NotImplementedError("the audit key is loaded from DOBBY_AUDIT_SIGNING_KEY")

    def sign(self, payload: bytes) -> Signature:
        return Signature(self._public.keyid, self._signer.sign(payload).hex())


def seal(statement: dict[str, Any], signer: CheckpointSigner | None) -> dict[str, Any]:
    """The Statement in a DSSE envelope: {payloadType, payload (base64), signatures [{keyid, sig (base64)}]}."""
    envelope = Envelope(canonical_json(statement), PAYLOAD_TYPE, {})
    if signer is not None:
        envelope.sign(AuditKeySigner(signer))
    sealed: dict[str, Any] = envelope.to_dict()
    return sealed


def open_envelope(envelope: dict[str, Any], public_key: bytes | None) -> tuple[bytes, list[str]]:
    """The payload of an envelope and what is wrong with it: its payloadType, and, given a public key, whether a
    signature by that key verifies over the pre-authentication encoding."""
    problems = []
    try:
        opened = Envelope.from_dict({**envelope, "signatures": [dict(one) for one in envelope["signatures"]]})
    except (KeyError, TypeError, ValueError) as error:
        return b"", [f"not a DSSE envelope: {error}"]
    if opened.payload_type != PAYLOAD_TYPE:
        problems.append(f"payloadType is {opened.payload_type!r}, not {PAYLOAD_TYPE!r}")
    if public_key is not None:
        key = public_key_of(public_key)
        if not opened.signatures:
            problems.append(f"the receipt is unsigned, but key {key.keyid} is expected to have signed it")
        else:
            try:
                opened.verify([key], 1)
            except VerificationError:
                signed_by = ", ".join(sorted(opened.signatures))
                problems.append(f"no signature by key {key.keyid} verifies (signed by {signed_by})")
    return opened.payload, problems
