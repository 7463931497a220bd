"""What /openapi.json shows as each operation's success answer: one example per status, validated against the
operation's own schema by tests/e2e/test_contract.py."""

from __future__ import annotations

import base64
import json
from typing import Any

from dobby.http.example_records import (
    AT,
    BASELINE,
    CANDIDATE_HASH,
    CHANGE,
    CHANGE_HASH,
    DECLARED,
    EVENTS,
    FAMILIES,
    FLAG,
    FREEZE,
    GUARDS,
    KEY_ID,
    LATER,
    METRICS_TEXT,
    PROOF,
    PROPOSAL,
    PROPOSAL_ID,
    PROPOSED,
    REPLAY,
    REPLAY_ID,
    REPLAYED,
    RESULT,
    ROOT,
    RUN,
    RUN_HASH,
    RUN_ID,
    SIGNATURE,
    STATEMENT,
    TARGET,
)
from dobby.http.route_docs import TENANT

ANSWERS: dict[str, dict[int, Any]] = {
    # handler: {status: example answer}
    "health": {200: {"status": "ok", "service": "jhf-dobby"}},
    "ready": {
        200: {
            "status": "ready",
            "requested_mode": "promotion_enabled",
            "effective_mode": "promotion_enabled",
            "fabric": {"aligned": True, "drift": [], "checked_at": AT},
            "persistence": {"reachable": True, "writable": True, "latency_ms": 0.95},
            "projections": {"proposals": {"position": 32, "lag": 0, "failing": None}},
            "queue_depth": 0,
            "backpressure": False,
            "detail": "ok",
        }
    },
    "version": {
        200: {"version": "0.1.0", "requested_mode": "promotion_enabled", "effective_mode": "promotion_enabled"}
    },
    "fabric_manifest": {200: {"service": "jhf-dobby", "name": "dobby", "capability_class": "adaptive_learning"}},
    "metrics": {200: METRICS_TEXT},
    "openapi": {200: {"openapi": "3.1.0", "info": {"title": "dobby", "version": "0.1.0"}, "paths": {}}},
    "contract": {
        200: {
            "families": FAMILIES,
            "target_types": ["prompt_template", "routing_rule"],
            "no_learn_zones": [],
            "capability_class": "adaptive_learning",
            "aligned": True,
            "drift": [],
            "effective_mode": "promotion_enabled",
        }
    },
    "intake": {
        201: {
            "accepted": True,
            "run_id": RUN_ID,
            "run_hash": RUN_HASH,
            "provenance_hash": RUN["provenance_hash"],
            "sampled": False,
            "duplicate": False,
            "position": 3,
        },
        200: {"accepted": False, "reason": "sampled_out", "run_hash": RUN_HASH, "position": 3},
    },
    "evaluate_replay": {201: REPLAYED, 200: {**REPLAYED, "duplicate": True}},
    "propose": {201: PROPOSED, 200: {**PROPOSED, "duplicate": True}},
    "approve_check": {
        200: {
            "proposal_id": PROPOSAL_ID,
            "state": "approved",
            "approval_outcome": "approved",
            "reasons": [],
            "position": 11,
        }
    },
    "activate": {
        200: {**PROPOSAL, "position": 14},
        202: {
            "proposal_id": PROPOSAL_ID,
            "state": "approved",
            "scheduled_for": "2026-12-24T09:00:00.000000Z",
            "position": 12,
        },
    },
    "unschedule": {200: {**PROPOSAL, "state": "approved", "activated_at": None, "position": 13}},
    "rollback": {
        200: {**PROPOSAL, "state": "rolled_back", "version": 5, "position": 20, "restored_baseline": BASELINE}
    },
    "list_runs": {200: {"items": [RUN], "next_cursor": "3"}},
    "get_run": {200: RUN},
    "list_replays": {200: {"items": [REPLAY], "next_cursor": None}},
    "get_replay": {200: REPLAY},
    "what_if": {
        200: {
            "replay_id": REPLAY_ID,
            "stored": {"verdict": "passed", "reasons": []},
            "what_if": {
                "verdict": "rejected",
                "reasons": ["not_passed:accuracy"],
                "metric_results": [{**RESULT, "passed": False, "margin": -0.05, "flip_at": 0.9}],
            },
            "verdict_changed": True,
            "flips": [{"name": "accuracy", "stored_passed": True, "what_if_passed": False}],
        }
    },
    "get_target": {
        200: {
            "tenant_id": TENANT,
            "target": TARGET,
            "source": "proposal",
            "live": CHANGE,
            "live_hash": CHANGE_HASH,
            "active_proposal_id": PROPOSAL_ID,
            "revalidate_required": False,
            "updated_at": LATER,
            "position": 14,
        }
    },
    "list_proposals": {200: {"items": [PROPOSAL], "next_cursor": None}},
    "get_proposal": {200: PROPOSAL},
    "history": {200: {"proposal_id": PROPOSAL_ID, "events": EVENTS, "chain_valid": True, "broken_at": None}},
    "explain": {
        200: {
            "proposal_id": PROPOSAL_ID,
            "state": "active",
            "can_activate": False,
            "guards": [{"name": name, "passed": passed, "reason": reason} for name, passed, reason in GUARDS],
            "change_hash": CHANGE_HASH,
            "change_judged": True,
            "candidate_hash": CANDIDATE_HASH,
            "metric_results": [RESULT],
        }
    },
    "observe": {
        200: {
            "proposal_id": PROPOSAL_ID,
            "verdict": "healthy",
            "metric_results": [{**RESULT, "candidate": 0.84, "improvement": 0.04, "margin": 0.04}],
            "rolled_back": False,
            "position": 18,
        }
    },
    "declare_freeze": {201: DECLARED, 200: {**DECLARED, "duplicate": True}},
    "list_freezes": {200: {"items": [FREEZE], "next_cursor": None}},
    "lift_freeze": {
        200: {
            **FREEZE,
            "lifted_at": LATER,
            "lifted_by": "ops-bot",
            "lift_reason": "over",
            "position": 28,
            "duplicate": False,
        }
    },
    "decisions": {
        200: {
            "items": [
                {
                    "proposal_id": PROPOSAL_ID,
                    "tenant_id": TENANT,
                    "target": TARGET,
                    "state": "replay_validated",
                    "waiting_on": "approval",
                    "reasons": ["approval pending in Warp"],
                    "since": AT,
                }
            ],
            "next_cursor": None,
        }
    },
    "stop": {200: {"tenant_id": TENANT, "stopped": True, "reason": "incident 42", "since": AT, "position": 29}},
    "resume": {200: {"tenant_id": TENANT, "stopped": False, "reason": None, "since": None, "position": 30}},
    "ofrep_evaluate": {200: FLAG},
    "ofrep_bulk": {200: {"flags": [FLAG]}},
    "checkpoint": {200: {"tree_size": 32, "root": ROOT, "signed_at": AT, "key_id": KEY_ID, "signature": SIGNATURE}},
    "key": {200: {"key_id": KEY_ID, "public_key": "SkDWB2YCki35wMCSzz/+bjGEHJCG1ayExk+IEYFUWW4="}},
    "inclusion_proof": {
        200: {
            "position": 3,
            "tree_size": 32,
            "event_hash": RUN_HASH,
            "leaf_hash": "98b649226425a499500075201c300ccffcd04a0c81e30f2d5f8351902ec87d1e",
            "proof": PROOF,
            "root": ROOT,
            "leaf_index": 2,
        }
    },
    "consistency_proof": {
        200: {
            "first": 3,
            "second": 32,
            "proof": PROOF,
            "first_root": "c36882253d0d6e03c90f4664825dbba80cf9b24c439774443f6fa2e0147e9b8d",
            "second_root": ROOT,
        }
    },
    "receipts": {
        200: {
            "items": [
                {
                    "payloadType": "application/vnd.in-toto+json",
                    "payload": base64.b64encode(json.dumps(STATEMENT).encode()).decode("ascii"),
                    "signatures": [{"keyid": KEY_ID, "sig": SIGNATURE}],
                }
            ]
        }
    },
}
