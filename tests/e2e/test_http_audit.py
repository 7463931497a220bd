"""SPEC §11 over HTTP: the signed checkpoint, its key, and inclusion and consistency proofs that an independent
verifier (tests/rfc6962.py, written from the RFC text) accepts."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dobby.adapters.signing import generate_key_file
from dobby.engine.model.chain import ChainedEvent
from tests import rfc6962
from tests.support import FAMILIES, LEARNING, InProcess, approved, intake_body, post, serve_in_process

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
AUDIT = "/api/v1/audit"


def traffic(served: InProcess) -> str:
    """A lifecycle and some runs; the proposal's id."""
    for index in range(6):
        post(served.client, "/signals/intake", intake_body(FAMILIES, trace_id=f"t-{index}"), 201)
    proposal = approved(served)
    post(served.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
    post(served.client, "/promotions/rollback", {"proposal_id": proposal["proposal_id"], "reason": "worse"}, 200)
    served.catch_up()
    return str(proposal["proposal_id"])


def event_hashes(served: InProcess) -> list[bytes]:
    """Every event's raw 32-byte hash in log order, read from the event store."""
    log = served.system.engine.context.uow.log
    notifications = log.recorder.select_notifications(start=1, limit=10_000)
    assert [n.id for n in notifications] == list(range(1, len(notifications) + 1))
    hashes = []
    for notification in notifications:
        event = log.mapper.to_domain_event(notification)
        assert isinstance(event, ChainedEvent)
        hashes.append(bytes.fromhex(event.event_hash.removeprefix("sha256:")))
    return hashes


def test_the_checkpoint_is_signed_over_the_root_of_every_event_hash(database_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "signing.key"
    generate_key_file(key_file)
    with serve_in_process(database_url, tmp_path, audit_signing_key=key_file) as served:
        proposal_id = traffic(served)
        checkpoint = served.client.get(f"{AUDIT}/checkpoint").json()
        key = served.client.get(f"{AUDIT}/key").json()
        hashes = event_hashes(served)
        assert set(checkpoint) == {"tree_size", "root", "signed_at", "key_id", "signature"}
        assert checkpoint["tree_size"] == len(hashes)
        assert checkpoint["root"] == rfc6962.mth(hashes).hex()
        public = base64.b64decode(key["public_key"])
        assert key["key_id"] == checkpoint["key_id"] == hashlib.sha256(public).hexdigest()[:16]
        signed = {name: checkpoint[name] for name in ("tree_size", "root", "signed_at")}
        message = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
        Ed25519PublicKey.from_public_bytes(public).verify(base64.b64decode(checkpoint["signature"]), message)

        history = served.client.get(f"{LEARNING}/proposals/{proposal_id}/history").json()
        for event in history["events"]:
            assert hashes[event["position"] - 1].hex() == event["event_hash"].removeprefix("sha256:")


def test_after_a_restart_with_a_new_key_the_checkpoint_is_signed_by_it(database_url: str, tmp_path: Path) -> None:
    first, second = tmp_path / "first.key", tmp_path / "second.key"
    generate_key_file(first)
    generate_key_file(second)
    with serve_in_process(database_url, tmp_path) as served:
        traffic(served)
        assert served.client.get(f"{AUDIT}/checkpoint").json()["signature"] is None
    for key_file in (first, second):
        with serve_in_process(database_url, tmp_path, audit_signing_key=key_file) as served:
            checkpoint = served.client.get(f"{AUDIT}/checkpoint").json()
            key = served.client.get(f"{AUDIT}/key").json()
            assert checkpoint["key_id"] == key["key_id"] and checkpoint["signature"], checkpoint
            signed = {name: checkpoint[name] for name in ("tree_size", "root", "signed_at")}
            message = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
            public.verify(base64.b64decode(checkpoint["signature"]), message)


def test_inclusion_and_consistency_proofs_verify_independently(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path) as served:
        traffic(served)
        checkpoint = served.client.get(f"{AUDIT}/checkpoint").json()
        assert checkpoint["key_id"] is None and checkpoint["signature"] is None
        assert served.client.get(f"{AUDIT}/key").status_code == 404
        hashes = event_hashes(served)
        size = checkpoint["tree_size"]
        roots = {n: rfc6962.mth(hashes[:n]) for n in range(1, size + 1)}
        rng = random.Random(6962)
        pairs = [(1, 1), (size, size), (1, size)] + [
            tuple(sorted(rng.sample(range(1, size + 1), 2))) for _ in range(25)
        ]
        for position, tree_size in pairs:
            answer = served.client.get(f"{AUDIT}/proofs/inclusion?position={position}&tree_size={tree_size}")
            assert answer.status_code == 200, answer.text
            found = answer.json()
            assert found["event_hash"] == "sha256:" + hashes[position - 1].hex()
            assert found["leaf_hash"] == rfc6962.leaf(hashes[position - 1]).hex()
            assert found["root"] == roots[tree_size].hex()
            proof = [bytes.fromhex(p) for p in found["proof"]]
            leaf = bytes.fromhex(found["leaf_hash"])
            assert rfc6962.verify_inclusion(position - 1, tree_size, leaf, proof, roots[tree_size])
        for first, second in pairs:
            answer = served.client.get(f"{AUDIT}/proofs/consistency?first={first}&second={second}")
            assert answer.status_code == 200, answer.text
            found = answer.json()
            assert (found["first_root"], found["second_root"]) == (roots[first].hex(), roots[second].hex())
            proof = [bytes.fromhex(p) for p in found["proof"]]
            assert rfc6962.verify_consistency(first, second, proof, roots[first], roots[second])
        latest = served.client.get(f"{AUDIT}/proofs/inclusion?position={size}").json()
        assert latest["tree_size"] == size


def test_a_proof_beyond_the_checkpoint_is_refused(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path) as served:
        traffic(served)
        size = served.client.get(f"{AUDIT}/checkpoint").json()["tree_size"]
        refusals = [
            f"proofs/inclusion?position={size + 1}",
            f"proofs/inclusion?position=1&tree_size={size + 1}",
            "proofs/inclusion?position=3&tree_size=2",
            "proofs/inclusion?position=0",
            "proofs/inclusion",
            "proofs/inclusion?position=x",
            f"proofs/consistency?first=1&second={size + 1}",
            "proofs/consistency?first=3&second=2",
            "proofs/consistency?first=0",
            "proofs/consistency",
        ]
        for query in refusals:
            answer = served.client.get(f"{AUDIT}/{query}")
            assert answer.status_code == 422, (query, answer.text)
            assert answer.json()["error"]["code"] in ("beyond_checkpoint", "invalid_input"), answer.text


@pytest.mark.backends(["sqlite"])
def test_proofs_need_an_auditor_and_the_checkpoint_is_open_to_anyone(database_url: str, tmp_path: Path) -> None:
    tokens = [
        {"name": name, "sha256": hashlib.sha256(name.encode()).hexdigest(), "tenants": "*", "roles": [role]}
        for name, role in (("audit", "auditor"), ("ops", "operator"), ("send", "submitter"))
    ]
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(tokens))
    with serve_in_process(database_url, tmp_path, api_tokens_file=path) as served:
        client = served.client
        body = intake_body(FAMILIES)
        assert client.post(f"{LEARNING}/signals/intake", json=body, headers={"Authorization": "Bearer send"}).is_success
        served.catch_up()
        assert client.get(f"{AUDIT}/checkpoint").json()["tree_size"] == 1
        proof = f"{AUDIT}/proofs/inclusion?position=1"
        assert client.get(proof).status_code == 401
        assert client.get(proof, headers={"Authorization": "Bearer send"}).status_code == 403
        assert client.get(proof, headers={"Authorization": "Bearer audit"}).status_code == 200
        assert client.get(proof, headers={"Authorization": "Bearer ops"}).status_code == 200
