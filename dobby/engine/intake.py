"""Intake rules (SPEC §4.2): consistency checks, refusals and deterministic sampling. Pure functions."""

from __future__ import annotations

from typing import Any

from dobby.engine.canonical import content_hash
from dobby.engine.errors import Violation


def check_intake(body: dict[str, Any], header_tenant: str | None) -> list[Violation]:
    """Every rule a shape-valid intake body violates: tenant consistency, guardrail BLOCK, security-critical."""
    tenant = body["tenant_id"]
    found: list[Violation] = []
    if header_tenant is not None and header_tenant != tenant:
        found.append(
            Violation(
                "tenant_inconsistent",
                f"X-Tenant-ID {header_tenant!r} differs from tenant_id {tenant!r}",
                "X-Tenant-ID",
            )
        )
    for list_name in ("steps", "source_events"):
        for index, item in enumerate(body.get(list_name, [])):
            if "tenant_id" in item and item["tenant_id"] != tenant:
                field = f"{list_name}[{index}].tenant_id"
                found.append(
                    Violation("tenant_inconsistent", f"{field} {item['tenant_id']!r} differs from {tenant!r}", field)
                )
    if body["guardrail_decision"] == "BLOCK":
        found.append(Violation("guardrail_blocked", "the guardrail decision is BLOCK", "guardrail_decision"))
    if body.get("security_critical") is True:
        found.append(Violation("security_critical", "the trace is marked security_critical", "security_critical"))
    for index, step in enumerate(body.get("steps", [])):
        if step.get("classification") == "security_critical":
            field = f"steps[{index}].classification"
            found.append(Violation("security_critical", f"{field} is security_critical", field))
    return found


def run_hash_of(body: dict[str, Any]) -> str:
    return content_hash(body)


def run_provenance_hash_of(body: dict[str, Any]) -> str:
    return content_hash(
        {
            "tenant_id": body["tenant_id"],
            "trace_id": body["trace_id"],
            "correlation_id": body["correlation_id"],
            "source_events": body.get("source_events", []),
            "family_versions": body["family_versions"],
        }
    )


def sample_fraction(run_hash: str) -> float:
    """The run's fixed position in [0, 1): the 32 bits after the `sha256:` prefix."""
    return int(run_hash[7:15], 16) / 2**32


def is_kept(outcome: str, run_hash: str, neutral_sample_rate: float) -> bool:
    """neutral_success traces are kept only when their fraction falls under the rate; all others are kept."""
    return outcome != "neutral_success" or sample_fraction(run_hash) < neutral_sample_rate


def is_learning_signal(body: dict[str, Any]) -> bool:
    return bool(body.get("target_hints"))
