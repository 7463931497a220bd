"""Promotion receipts (SPEC §11) over HTTP, verified by a second implementation that shares no code with dobby's:
the in-toto attestation bindings read and validate the Statement, PyCryptodome checks the Ed25519 signature over a
DSSE pre-authentication encoding built here from the DSSE text; a one-byte change is refused by both."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from Crypto.Signature import eddsa
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement

from dobby.adapters.signing import generate_key_file
from dobby.cli.command import main
from tests import tampering
from tests.support import CHANGE, LEARNING, InProcess, approved, eventually, post, serve_in_process

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
AUDIT = "/api/v1/audit"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding, from the protocol text."""
    kind = payload_type.encode()
    return b"DSSEv1 " + str(len(kind)).encode() + b" " + kind + b" " + str(len(payload)).encode() + b" " + payload


def independently_verified(envelope: dict[str, Any], public_key: bytes) -> dict[str, Any]:
    """The Statement of `envelope`, after the independent checks; raises when any fails."""
    payload = base64.b64decode(envelope["payload"], validate=True)
    verifier = eddsa.new(eddsa.import_public_key(public_key), "rfc8032")
    key_id = hashlib.sha256(public_key).hexdigest()[:16]
    (signature,) = [one for one in envelope["signatures"] if one["keyid"] == key_id]
    verifier.verify(pae(envelope["payloadType"], payload), base64.b64decode(signature["sig"]))  # raises ValueError
    parsed = json_format.Parse(payload, statement_pb2.Statement())
    Statement.copy_from_pb(parsed).validate()
    statement: dict[str, Any] = json.loads(payload)
    return statement


def lifecycle(served: InProcess) -> dict[str, Any]:
    proposal = approved(served)
    post(served.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
    post(served.client, "/promotions/rollback", {"proposal_id": proposal["proposal_id"], "reason": "worse"}, 200)
    return proposal


def receipts(served: InProcess, proposal_id: str, count: int) -> list[dict[str, Any]]:
    """The proposal's receipts once `count` of them are derived (the tree follows the log within seconds)."""
    found: list[dict[str, Any]] = []

    def derived() -> bool:
        served.catch_up()
        answer = served.client.get(f"{AUDIT}/receipts/{proposal_id}")
        assert answer.status_code == 200, answer.text
        found[:] = answer.json()["items"]
        return len(found) >= count

    assert eventually(derived, timeout=10)
    return found


def test_every_activation_and_rollback_has_a_receipt_another_implementation_verifies(
    database_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "signing.key"
    generate_key_file(key_file)
    with serve_in_process(database_url, tmp_path, audit_signing_key=key_file) as served:
        proposal = lifecycle(served)
        activation, rollback = receipts(served, proposal["proposal_id"], 2)
        public = base64.b64decode(served.client.get(f"{AUDIT}/key").json()["public_key"])
        history = served.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}/history").json()["events"]
        by_type = {event["type"]: event for event in history}

        live = independently_verified(activation, public)
        assert activation["payloadType"] == "application/vnd.in-toto+json"
        assert live["_type"] == "https://in-toto.io/Statement/v1"
        assert live["predicateType"] == "https://dobby.local/attestation/promotion-receipt/v1"
        (subject,) = live["subject"]
        assert subject["name"] == f"acme/{proposal['target']['type']}/{proposal['target']['id']}"
        assert "sha256:" + subject["digest"]["sha256"] == proposal["change_hash"] == content_hash_of(CHANGE)
        predicate = live["predicate"]
        assert predicate["action"] == "activation" and predicate["proposal_id"] == proposal["proposal_id"]
        assert predicate["event_hash"] == by_type["Activated"]["event_hash"]
        assert predicate["position"] == by_type["Activated"]["position"]
        assert predicate["leaf_index"] == predicate["position"] - 1
        assert predicate["replay"]["verdict"] == "passed" and predicate["replay"]["change_hash"] == subject_hash(live)
        assert predicate["approvals"][0]["approvers"] == [{"id": "alice", "kind": "human"}]
        assert "not_frozen" in predicate["guards_passed"] and "velocity" in predicate["guards_passed"]

        restored = independently_verified(rollback, public)
        assert restored["predicate"]["action"] == "rollback" and restored["predicate"]["reason"] == "worse"
        assert subject_hash(restored) == content_hash_of(proposal["baseline"])

        tampered = json.loads(base64.b64decode(activation["payload"]))
        tampered["predicate"]["actor"] = tampered["predicate"]["actor"][:-1] + "X"
        forged = {**activation, "payload": base64.b64encode(json.dumps(tampered).encode()).decode()}
        with pytest.raises(ValueError):
            independently_verified(forged, public)


def test_check_receipt_proves_the_signature_and_the_inclusion_in_a_kept_checkpoint(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "signing.key"
    generate_key_file(key_file)
    with serve_in_process(database_url, tmp_path, audit_signing_key=key_file) as served:
        proposal = lifecycle(served)
        activation, _ = receipts(served, proposal["proposal_id"], 2)
        key = served.client.get(f"{AUDIT}/key").json()["public_key"]
        checkpoint = served.client.get(f"{AUDIT}/checkpoint").json()
        position = json.loads(base64.b64decode(activation["payload"]))["predicate"]["position"]
        proof = served.client.get(f"{AUDIT}/proofs/inclusion?position={position}").json()
    files = {"receipt": activation, "checkpoint": checkpoint, "proof": proof}
    for name, value in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(value))
    monkeypatch.setenv("DOBBY_DATABASE_URL", database_url)
    monkeypatch.delenv("DOBBY_AUDIT_SIGNING_KEY", raising=False)

    def check(receipt: Path, *extra: str) -> tuple[int, str]:
        capsys.readouterr()
        status = main(["audit", "check-receipt", str(receipt), "--public-key", key, *extra])
        return status, capsys.readouterr().out

    offline = ("--checkpoint", str(tmp_path / "checkpoint.json"), "--proof", str(tmp_path / "proof.json"))
    status, out = check(tmp_path / "receipt.json", *offline)
    assert status == 0 and "\nok: activation of acme/" in out and "in the checkpoint's log" in out, out
    status, out = check(tmp_path / "receipt.json", "--checkpoint", str(tmp_path / "checkpoint.json"))
    assert status == 0 and "in the checkpoint's log" in out, out

    raw = bytearray((tmp_path / "receipt.json").read_bytes())
    envelope = json.loads(raw)
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[payload.index(b"activation")] ^= 0x01  # one byte
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()
    (tmp_path / "one-byte.json").write_text(json.dumps(envelope))
    status, out = check(tmp_path / "one-byte.json", *offline)
    assert status == 1 and "BROKEN" in out and "ok:" not in out, out

    stripped = {**json.loads(raw), "signatures": []}
    (tmp_path / "stripped.json").write_text(json.dumps(stripped))
    status, out = check(tmp_path / "stripped.json")
    assert status == 1 and "unsigned" in out, out


def test_receipts_wait_for_an_activation(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path) as served:
        proposal = approved(served)
        served.catch_up()
        assert served.client.get(f"{AUDIT}/receipts/{proposal['proposal_id']}").json() == {"items": []}
        assert served.client.get(f"{AUDIT}/receipts/{'0' * 36}").status_code == 404
        post(served.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
        (unsigned,) = receipts(served, proposal["proposal_id"], 1)
        assert unsigned["signatures"] == []


def test_no_receipt_vouches_for_an_event_past_a_break_in_the_chain(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path) as served:
        proposal = lifecycle(served)
        receipts(served, proposal["proposal_id"], 2)
        history = served.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}/history").json()["events"]
        rolled_back = next(event for event in history if event["type"] == "RolledBack")
        table = tampering.Table(served.system.engine.context.uow.log, served.system.store.engine)
        table.change(rolled_back["position"], tampering.other_actor)
        items = served.client.get(f"{AUDIT}/receipts/{proposal['proposal_id']}").json()["items"]
        (left,) = [json.loads(base64.b64decode(item["payload"]))["predicate"]["action"] for item in items]
        assert left == "activation"
        approved_event = next(event for event in history if event["type"] == "Approved")
        table.change(approved_event["position"], lambda event: tampering.other_payload(event, 0))
        assert served.client.get(f"{AUDIT}/receipts/{proposal['proposal_id']}").json() == {"items": []}


def content_hash_of(value: Any) -> str:
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def subject_hash(statement: dict[str, Any]) -> str:
    return "sha256:" + str(statement["subject"][0]["digest"]["sha256"])
