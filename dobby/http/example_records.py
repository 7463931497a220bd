"""The one story every example answer of /openapi.json tells: tenant acme's greeting, its run, replay, proposal,
freeze and receipts, each record written once and shared by the answers that show it."""

from __future__ import annotations

from dobby.engine.kernel.canonical import content_hash
from dobby.http.route_docs import PROPOSAL_BODY, TENANT

PROPOSAL_ID = PROPOSAL_BODY["proposal_id"]
REPLAY_ID = "7d7b1c52-1f3e-4e0b-8a55-2f3c4d5e6f70"
RUN_ID = "b4cd5d4e-a7a5-5585-9425-8771bf8a30a0"
FREEZE_ID = "f85f1ab8-7129-54b1-b2ba-b3efaeedeaf4"
TARGET = {"type": "prompt_template", "id": "checkout/greeting"}
FAMILIES = {"ranking": "1.0.0"}
CHANGE, BASELINE = {"text": "Hello again"}, {"text": "Hello"}
CHANGE_HASH = content_hash(CHANGE)
CANDIDATE_HASH = "sha256:d6c0ca03c5d9ad14f841be4ac63263f730c244989d2fc8e733b915b110c85f53"
PROVENANCE_HASH = "sha256:173f42a39d3cb04663249919b2c9d44ca1abfa9d17ba51d9d8ea99b766117a6a"
RUN_HASH = "sha256:d5323fabe632cec645046ea76571c5fc3f14a7e41b9294ff82b7bf8a073d9ed0"
ROOT = "a41307e860f8231853fb7e794ac648413776c8cb5e2578a88611db2352206c87"
KEY_ID = "5fe9309c500ec597"
SIGNATURE = "0Ss7CJiJvTv0nnM3SncEvYWQizUqeaULeqDHSHJCevH/maV5pKoCSAf7548ZPnvM0J6AHIAxYK3hF2qBwtfPCA=="
AT, LATER = "2026-12-06T09:00:00.000000Z", "2026-12-06T09:05:00.000000Z"

RESULT = {
    "name": "accuracy",
    "baseline": 0.8,
    "candidate": 0.85,
    "improvement": 0.05,
    "passed": True,
    "regressed": False,
    "veto": False,
    "margin": 0.05,
    "flip_at": 0.8,
    "estimate": None,
    "interval": None,
    "confidence": None,
    "inconclusive": False,
    "needed_n": None,
}
APPROVAL = {
    "id": "warp-3f1c2a9e",
    "approver": "alice",
    "kind": "human",
    "approvers": [{"id": "alice", "kind": "human"}],
    "expires_at": "2026-12-07T09:00:00.000000Z",
}
PROPOSAL = {
    "proposal_id": PROPOSAL_ID,
    "tenant_id": TENANT,
    "target": TARGET,
    "risk": "low",
    "state": "active",
    "replay_id": REPLAY_ID,
    "candidate_hash": CANDIDATE_HASH,
    "change_hash": CHANGE_HASH,
    "change_judged": True,
    "provenance_hash": PROVENANCE_HASH,
    "family_versions": FAMILIES,
    "change": CHANGE,
    "baseline": BASELINE,
    "rationale": None,
    "approval_requirement": "human",
    "approval": APPROVAL,
    "revalidate_required": False,
    "auto_rollback": True,
    "scheduled_for": None,
    "created_at": AT,
    "updated_at": LATER,
    "expires_at": "2026-12-13T09:00:00.000000Z",
    "activated_at": LATER,
    "version": 4,
}
GENERATED = {**PROPOSAL, "state": "generated", "approval": None, "updated_at": AT, "activated_at": None, "version": 1}
RUN = {
    "run_id": RUN_ID,
    "tenant_id": TENANT,
    "trace_id": "trace-1",
    "correlation_id": "corr-1",
    "outcome": "success",
    "guardrail_decision": "ALLOW",
    "family_versions": FAMILIES,
    "target_hints": [TARGET],
    "served": [],
    "run_hash": RUN_HASH,
    "provenance_hash": "sha256:4bba21db1e9bd4b3b1ed1c931a882c5efc3f86e8b3d03da97c9ff4f3a3d82cae",
    "sampled": False,
    "learning_signal": True,
    "evidence_digest": None,
    "recorded_at": AT,
}
REPLAY = {
    "replay_id": REPLAY_ID,
    "tenant_id": TENANT,
    "target": TARGET,
    "family_versions": FAMILIES,
    "verdict": "passed",
    "reasons": [],
    "metric_results": [RESULT],
    "candidate_hash": CANDIDATE_HASH,
    "change_hash": None,
    "provenance_hash": PROVENANCE_HASH,
    "run_ids": [],
    "evaluated_at": AT,
}
REPLAYED = {
    **{name: REPLAY[name] for name in ("replay_id", "verdict", "reasons", "metric_results", "candidate_hash")},
    "change_hash": None,
    "provenance_hash": PROVENANCE_HASH,
    "budget": {"remaining": 19, "window_seconds": 3600, "resets_at": "2026-12-06T10:00:00.000000Z"},
    "duplicate": False,
    "position": 6,
}
PROPOSED = {**GENERATED, "position": 9, "duplicate": False}
FREEZE = {
    "freeze_id": FREEZE_ID,
    "tenant_id": TENANT,
    "targets": "*",
    "starts_at": AT,
    "ends_at": "2026-12-27T00:00:00.000000Z",
    "reason": "holidays",
    "declared_by": "ops-bot",
    "declared_at": AT,
    "lifted_at": None,
    "lifted_by": None,
    "lift_reason": None,
}
DECLARED = {**FREEZE, "position": 27, "duplicate": False}
FLAG = {
    "key": f"{TARGET['type']}:{TARGET['id']}",
    "value": CHANGE,
    "reason": "STATIC",
    "variant": CHANGE_HASH,
    "metadata": {"source": "proposal", "live_hash": CHANGE_HASH, "position": 14, "proposal_id": PROPOSAL_ID},
}
STATEMENT = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": f"{TENANT}/{TARGET['type']}/{TARGET['id']}", "digest": {"sha256": CHANGE_HASH[7:]}}],
    "predicateType": "https://dobby.local/attestation/promotion-receipt/v1",
    "predicate": {"action": "activation", "proposal_id": PROPOSAL_ID, "position": 14, "actor": "operator-1"},
}
GUARDS = [
    ("mode", True, "effective mode is promotion_enabled; activation needs promotion_enabled"),
    ("state", False, "state is active; activation needs approved"),
    ("not_frozen", True, "no freeze or stop holds the target"),
    ("approval_fresh", True, "approval expires at 2026-12-07T09:00:00.000000Z"),
    ("not_revalidate_required", True, "no revalidation required"),
    ("target_free", True, "no other active proposal"),
    ("velocity", True, "1 of 5 activations used in the last 3600 s"),
]
GENERATED_HASH = "sha256:17b5fd9bac1aeeae695a3842878ffd4066e802f9e67e086d745bf69f6606701b"
EVENTS = [
    {
        "version": 1,
        "position": 7,
        "type": "Generated",
        "occurred_at": AT,
        "actor": "proposer-1",
        "payload": {"tenant_id": TENANT, "target": TARGET, "risk": "low", "replay_id": REPLAY_ID, "change": CHANGE},
        "state_before": None,
        "state_after": "generated",
        "prev_hash": "0" * 64,
        "event_hash": GENERATED_HASH,
    },
    {
        "version": 2,
        "position": 10,
        "type": "ReplayValidated",
        "occurred_at": AT,
        "actor": "operator-1",
        "payload": {"checks": ["replay_passed", "binding_matches", "families_current"]},
        "state_before": "generated",
        "state_after": "replay_validated",
        "prev_hash": GENERATED_HASH,
        "event_hash": "sha256:32ee179237e88110f598bfff48a6ee274a3df36015fc6e7c887a25976de19a3c",
    },
]
PROOF = [
    "8e3eca01a80348dd66b82c228a1ad4fb32e696f33715196457f348559a6e7130",
    "7bb20600d407a5cf9302906bf5ed810dd9e713981c416a56f53af780c3cbe7f0",
]
METRICS_TEXT = """# HELP dobby_intake_total Signals submitted to intake, by result
# TYPE dobby_intake_total counter
dobby_intake_total{result="accepted"} 3.0
"""
