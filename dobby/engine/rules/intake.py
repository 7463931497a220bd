"""Intake (SPEC §4.2): the body, its rules (consistency, refusals, deterministic sampling) as pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from msgspec import Meta

from dobby.engine.kernel.canonical import content_hash
from dobby.engine.kernel.errors import Violation
from dobby.engine.kernel.shapes import (
    UNSET,
    FamilyVersions,
    FreeObject,
    GuardrailDecision,
    Identifier,
    Outcome,
    ServedContent,
    Shape,
    TargetRef,
    Text,
    UnsetType,
)


class Step(Shape, frozen=True):
    name: Identifier
    tenant_id: Identifier | UnsetType = UNSET
    classification: Text | UnsetType = UNSET
    attributes: FreeObject | UnsetType = UNSET


class SourceEvent(Shape, frozen=True):
    event_id: Identifier
    tenant_id: Identifier | UnsetType = UNSET
    kind: Text | UnsetType = UNSET


class IntakeSignal(Shape, frozen=True):
    """A runtime trace submitted as a learning signal."""

    tenant_id: Identifier
    trace_id: Identifier
    correlation_id: Identifier
    outcome: Outcome
    guardrail_decision: GuardrailDecision
    family_versions: FamilyVersions
    steps: Annotated[list[Step], Meta(max_length=1000)] | UnsetType = UNSET
    source_events: Annotated[list[SourceEvent], Meta(max_length=1000)] | UnsetType = UNSET
    target_hints: Annotated[list[TargetRef], Meta(max_length=100)] | UnsetType = UNSET
    security_critical: bool | UnsetType = UNSET
    served: Annotated[list[ServedContent], Meta(max_length=100)] | UnsetType = UNSET
    """What the runtime ran (SPEC §15); absent from run_hash when absent, so older bodies keep their run ids."""


def check_intake(body: IntakeSignal, header_tenant: str | None) -> list[Violation]:
    """Every rule a shape-valid intake body violates: tenant consistency, guardrail BLOCK, security-critical."""
    tenant = body.tenant_id
    found: list[Violation] = []
    if header_tenant is not None and header_tenant != tenant:
        message = f"X-Tenant-ID {header_tenant!r} differs from tenant_id {tenant!r}"
        found.append(Violation("tenant_inconsistent", message, "X-Tenant-ID"))
    parts: list[tuple[str, Sequence[Step | SourceEvent] | UnsetType]] = [
        ("steps", body.steps),
        ("source_events", body.source_events),
    ]
    for list_name, items in parts:
        for index, item in enumerate(items or ()):
            if item.tenant_id is not UNSET and item.tenant_id != tenant:
                field = f"{list_name}[{index}].tenant_id"
                message = f"{field} {item.tenant_id!r} differs from {tenant!r}"
                found.append(Violation("tenant_inconsistent", message, field))
    if body.guardrail_decision == "BLOCK":
        found.append(Violation("guardrail_blocked", "the guardrail decision is BLOCK", "guardrail_decision"))
    if body.security_critical is True:
        found.append(Violation("security_critical", "the trace is marked security_critical", "security_critical"))
    for index, step in enumerate(body.steps or ()):
        if step.classification == "security_critical":
            field = f"steps[{index}].classification"
            found.append(Violation("security_critical", f"{field} is security_critical", field))
    return found


def run_hash_of(body: IntakeSignal) -> str:
    return content_hash(body)


def run_provenance_hash_of(body: IntakeSignal) -> str:
    return content_hash(
        {
            "tenant_id": body.tenant_id,
            "trace_id": body.trace_id,
            "correlation_id": body.correlation_id,
            "source_events": body.source_events or [],
            "family_versions": body.family_versions,
        }
    )


def sample_fraction(run_hash: str) -> float:
    """The run's fixed position in [0, 1): the 32 bits after the `sha256:` prefix."""
    return int(run_hash[7:15], 16) / 2**32


def is_kept(outcome: str, run_hash: str, neutral_sample_rate: float) -> bool:
    """neutral_success traces are kept only when their fraction falls under the rate; all others are kept."""
    return outcome != "neutral_success" or sample_fraction(run_hash) < neutral_sample_rate


def is_learning_signal(body: IntakeSignal) -> bool:
    return bool(body.target_hints)
