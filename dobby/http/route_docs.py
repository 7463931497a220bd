"""What /openapi.json says of each route beside its types: summary, description, tag and the error codes of SPEC."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BODY = {400: ("malformed_json",), 413: ("body_too_large",), 415: ("unsupported_media_type",)}
"""Refusals of every route that takes a body (SPEC §4)."""
INPUT = ("invalid_input",)
"""A malformed field, a value out of range or a control character in an identifier (SPEC §4 input hygiene)."""
ACCESS = {401: ("unauthorized",), 403: ("forbidden",)}
"""Every /api/v1 route but the open ones (SPEC §8)."""
READ = {422: (*INPUT, "out_of_range"), 503: ("projection_lagging", "persistence_unavailable")}
"""Every read: `min_position` beyond the log's head is a 422 at once, not reached in 2 s a 503 (SPEC §4)."""
UNAVAILABLE = {503: ("unavailable", "persistence_unavailable")}
"""Warmup, or the database did not answer (SPEC §2, §4)."""
ACTIVATION_GUARDS = ("mode_forbids", "frozen", "approval_stale", "revalidate_required", "velocity_breaker_open")


def _merge(*parts: Mapping[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
    merged: dict[int, tuple[str, ...]] = {}
    for part in parts:
        for status, codes in part.items():
            merged[status] = tuple(dict.fromkeys((*merged.get(status, ()), *codes)))
    return merged


def _write(**statuses: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    """The refusals of a command: those of every body, access, unavailability, and its own."""
    own = {int(status.removeprefix("s")): codes for status, codes in statuses.items()}
    return _merge(BODY, ACCESS, {409: ("conflict", "concurrent_modification"), 422: INPUT}, UNAVAILABLE, own)


def _read(**statuses: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    own = {int(status.removeprefix("s")): codes for status, codes in statuses.items()}
    return _merge(ACCESS, READ, own)


PROPOSAL_BODY = {"proposal_id": "3f1c2a9e-2f4b-4d55-9f0e-0c6a1b2d3e4f"}
TENANT = "acme"

DOCS: dict[str, tuple[str, str, str, dict[int, tuple[str, ...]], Any]] = {
    # handler: (tag, summary, description, {status: error codes}, example request body or None)
    "health": ("service", "Liveness", "Answers at once, without I/O (SPEC §4.1).", {}, None),
    "ready": (
        "service",
        "Readiness",
        "Modes, Fabric alignment, persistence, projections and backpressure; `strict=true` answers 503 when"
        " degraded (SPEC §4.1).",
        {422: INPUT, 503: ("degraded",)},
        None,
    ),
    "version": ("service", "Version and modes", "The running version, requested and effective mode.", {}, None),
    "fabric_manifest": ("service", "Fabric manifest", "The repository's fabric-manifest.json.", {}, None),
    "metrics": ("service", "Prometheus metrics", "Counters, gauges and histograms of SPEC §6.", {}, None),
    "openapi": ("service", "This document", "Every route, generated from the route table.", {}, None),
    "contract": (
        "service",
        "The contract view",
        "Families, permitted target types, no-learn zones, alignment and effective mode, derived from Fabric.",
        _read(),
        None,
    ),
    "intake": (
        "learning",
        "Record a trace",
        "Stores a run (201), finds a duplicate (200) or samples a neutral success out (200, nothing stored). Every"
        " rule is checked and reported (SPEC §4.2).",
        _write(s422=("tenant_inconsistent", "guardrail_blocked", "security_critical", "mode_forbids")),
        {
            "tenant_id": TENANT,
            "trace_id": "trace-1",
            "correlation_id": "corr-1",
            "outcome": "success",
            "guardrail_decision": "ALLOW",
            "family_versions": {"ranking": "1.0.0"},
            "target_hints": [{"type": "prompt_template", "id": "checkout/greeting"}],
        },
    ),
    "evaluate_replay": (
        "learning",
        "Judge a replay",
        "Judges candidate metrics against a baseline under a threshold contract; spends replay budget (SPEC §4.3).",
        _write(
            s404=("not_found",),
            s422=(
                "weight_training_forbidden",
                "target_not_permitted",
                "missing_metric",
                "unknown_veto_metric",
                "unknown_run",
                "replay_budget_exhausted",
                "metric_out_of_range",
                "mode_forbids",
            ),
        ),
        {
            "tenant_id": TENANT,
            "target": {"type": "prompt_template", "id": "checkout/greeting"},
            "family_versions": {"ranking": "1.0.0"},
            "metrics": {"baseline": {"accuracy": 0.8}, "candidate": {"accuracy": 0.85}},
            "threshold_contract": {"mode": "all", "metrics": {"accuracy": {"direction": "increase"}}},
            "workload_similar": True,
        },
    ),
    "propose": (
        "promotions",
        "Propose a change",
        "Generates a proposal bound to a passed replay's hashes (SPEC §4.4).",
        _write(
            s404=("not_found",),
            s422=(
                "replay_not_passed",
                "no_learn_zone",
                "target_not_permitted",
                "invalid_target_id",
                "change_mismatch",
                "change_not_judged",
                "mode_forbids",
            ),
        ),
        {
            "tenant_id": TENANT,
            "replay_id": "7d7b1c52-1f3e-4e0b-8a55-2f3c4d5e6f70",
            "target": {"type": "prompt_template", "id": "checkout/greeting"},
            "risk": "low",
            "change": {"text": "Hello again"},
            "baseline": {"text": "Hello"},
        },
    ),
    "approve_check": (
        "promotions",
        "Check Warp's approval",
        "Re-verifies the replay evidence, then asks Warp; every check is appended with its outcome (SPEC §4.5).",
        _write(s404=("not_found",), s409=("invalid_state", "concurrent_modification"), s422=("mode_forbids",)),
        PROPOSAL_BODY,
    ),
    "activate": (
        "promotions",
        "Activate, or schedule",
        "Every guard of SPEC §4.6 evaluated and reported, the first failing one setting the status; with"
        " `not_before` the activation is scheduled (202, SPEC §12).",
        _write(
            s404=("not_found",), s409=("invalid_state", "conflict", "concurrent_modification"), s422=ACTIVATION_GUARDS
        ),
        {**PROPOSAL_BODY, "not_before": "2026-12-24T09:00:00Z"},
    ),
    "unschedule": (
        "promotions",
        "Cancel a scheduled activation",
        "The proposal stays approved (SPEC §12).",
        _write(s404=("not_found",), s409=("invalid_state", "concurrent_modification"), s422=("mode_forbids",)),
        PROPOSAL_BODY,
    ),
    "rollback": (
        "promotions",
        "Roll back",
        "An active proposal → rolled_back; its target's baseline is restored (SPEC §4.7).",
        _write(s404=("not_found",), s409=("invalid_state", "concurrent_modification"), s422=("mode_forbids",)),
        {**PROPOSAL_BODY, "reason": "error rate rose"},
    ),
    "list_runs": ("reads", "List runs", "Keyset-paginated, newest first (SPEC §4.8).", _read(), None),
    "get_run": ("reads", "A run", "The projected run (SPEC §4.8).", _read(s404=("not_found",)), None),
    "list_replays": ("reads", "List replays", "Keyset-paginated, newest first (SPEC §4.8).", _read(), None),
    "get_replay": ("reads", "A replay", "The projected replay (SPEC §4.8).", _read(s404=("not_found",)), None),
    "what_if": (
        "learning",
        "Re-judge a replay under another contract",
        "A dry run: nothing is appended, no budget spent (SPEC §4.3a).",
        _write(s404=("not_found",), s422=("missing_metric", "unknown_veto_metric", "metric_out_of_range")),
        {"threshold_contract": {"mode": "all", "metrics": {"accuracy": {"direction": "increase"}}}},
    ),
    "get_target": (
        "reads",
        "What a runtime should run now",
        "The live change of a target, its source and hash (SPEC §4.1).",
        _read(),
        None,
    ),
    "list_proposals": ("reads", "List proposals", "Keyset-paginated, newest first (SPEC §4.8).", _read(), None),
    "get_proposal": (
        "reads",
        "A proposal",
        "The projected proposal view (SPEC §4.8).",
        _read(s404=("not_found",)),
        None,
    ),
    "history": (
        "audit",
        "A proposal's history",
        "Every event in order with its hashes, from the event store; `as_of_version` or `as_of` adds the view"
        " as it stood then (SPEC §4.8).",
        _read(s404=("not_found",)),
        None,
    ),
    "explain": (
        "reads",
        "Why a proposal can or cannot activate",
        "Every activation guard evaluated now, nothing changed (SPEC §4.8).",
        _read(s404=("not_found",)),
        None,
    ),
    "observe": (
        "promotions",
        "Observe live metrics",
        "Judged as the replay's candidate was; a regression rolls back at once unless auto_rollback is off (SPEC §12).",
        _write(s404=("not_found",), s409=("invalid_state", "concurrent_modification"), s422=("missing_metric",)),
        {**PROPOSAL_BODY, "metrics": {"accuracy": 0.84}},
    ),
    "declare_freeze": (
        "policy",
        "Declare a freeze",
        "No activation of matching targets between starts_at and ends_at (SPEC §12).",
        _write(),
        {"tenant_id": TENANT, "targets": "*", "ends_at": "2026-12-27T00:00:00Z", "reason": "holidays"},
    ),
    "list_freezes": ("policy", "List freezes", "Current and future ones; past ones too on request.", _read(), None),
    "lift_freeze": (
        "policy",
        "Lift a freeze",
        "Answers the freeze as lifted (SPEC §12).",
        _merge(ACCESS, {404: ("not_found",), 409: ("invalid_state",), 422: INPUT}, UNAVAILABLE),
        None,
    ),
    "decisions": (
        "policy",
        "The decision queue",
        "Proposals that wait on a person or a rule, newest first (SPEC §12).",
        _read(),
        None,
    ),
    "stop": (
        "policy",
        "Emergency stop",
        "Halts every activation of the tenant until resumed (SPEC §12).",
        _write(),
        {"tenant_id": TENANT, "reason": "incident 42"},
    ),
    "resume": (
        "policy",
        "Resume after a stop",
        "Activations of the tenant may go on (SPEC §12).",
        _write(),
        {"tenant_id": TENANT, "reason": "incident 42 closed"},
    ),
    "checkpoint": (
        "audit",
        "The signed checkpoint",
        "The log's size and Merkle root, signed; open to anyone (SPEC §11).",
        _merge(READ, {404: ("not_found",), 503: ("unavailable", "persistence_unavailable")}),
        None,
    ),
    "key": (
        "audit",
        "The checkpoint key",
        "The public key that signs checkpoints (SPEC §11).",
        _merge(READ, {404: ("not_found",)}),
        None,
    ),
    "inclusion_proof": (
        "audit",
        "Inclusion proof",
        "RFC 6962 audit path of one position in a tree size (SPEC §11).",
        _read(s404=("not_found",), s422=("beyond_checkpoint",)),
        None,
    ),
    "receipts": (
        "audit",
        "Promotion receipts",
        "The signed statements of a proposal's promotion (SPEC §11).",
        _read(s404=("not_found",)),
        None,
    ),
    "consistency_proof": (
        "audit",
        "Consistency proof",
        "RFC 6962 proof that one tree size extends another (SPEC §11).",
        _read(s404=("not_found",), s422=("beyond_checkpoint",)),
        None,
    ),
    "ofrep_evaluate": (
        "openfeature",
        "Evaluate one flag (OFREP)",
        "OpenFeature's remote evaluation protocol over what is live (SPEC §15); its refusals use OFREP's own shape.",
        {},
        {"context": {"tenant_id": TENANT}},
    ),
    "ofrep_bulk": (
        "openfeature",
        "Evaluate every flag (OFREP)",
        "Every flag of the context's tenant (SPEC §15); an `If-None-Match` that is still current answers 304.",
        {},
        {"context": {"tenant_id": TENANT}},
    ),
}
