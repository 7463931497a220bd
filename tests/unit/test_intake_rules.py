from __future__ import annotations

from typing import Any

from dobby.engine.commands.boundary import convert
from dobby.engine.rules.intake import (
    IntakeSignal,
    check_intake,
    is_kept,
    run_hash_of,
    run_provenance_hash_of,
    sample_fraction,
)


def body(**overrides: Any) -> IntakeSignal:
    return convert(fields(**overrides), IntakeSignal)


def fields(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "tenant_id": "t",
        "trace_id": "tr",
        "correlation_id": "c",
        "outcome": "success",
        "guardrail_decision": "ALLOW",
        "family_versions": {"f": "1"},
    }
    base.update(overrides)
    return base


def test_a_clean_body_violates_nothing() -> None:
    assert check_intake(body(), "t") == []


def test_every_violation_is_reported_together() -> None:
    found = check_intake(
        body(
            guardrail_decision="BLOCK",
            security_critical=True,
            steps=[{"name": "s", "tenant_id": "other", "classification": "security_critical"}],
            source_events=[{"event_id": "e", "tenant_id": "other"}],
        ),
        "header-tenant",
    )
    assert sorted(v.code for v in found) == [
        "guardrail_blocked",
        "security_critical",
        "security_critical",
        "tenant_inconsistent",
        "tenant_inconsistent",
        "tenant_inconsistent",
    ]
    assert {v.field for v in found if v.code == "tenant_inconsistent"} == {
        "X-Tenant-ID",
        "steps[0].tenant_id",
        "source_events[0].tenant_id",
    }


def test_warn_is_not_blocked() -> None:
    assert check_intake(body(guardrail_decision="WARN"), None) == []


def test_run_hash_ignores_key_order_but_not_content() -> None:
    first = fields(steps=[{"name": "a"}])
    second = dict(reversed(list(first.items())))
    assert run_hash_of(convert(first, IntakeSignal)) == run_hash_of(convert(second, IntakeSignal))
    assert run_hash_of(convert(first, IntakeSignal)) != run_hash_of(body(steps=[{"name": "b"}]))


def test_provenance_hash_covers_only_its_fields() -> None:
    assert run_provenance_hash_of(body()) == run_provenance_hash_of(body(outcome="failure"))
    assert run_provenance_hash_of(body()) != run_provenance_hash_of(body(trace_id="other"))


def test_sampling_uses_the_32_bits_after_the_prefix() -> None:
    run_hash = "sha256:80000000" + "0" * 56
    assert sample_fraction(run_hash) == 0.5
    assert is_kept("neutral_success", run_hash, 0.51)
    assert not is_kept("neutral_success", run_hash, 0.5)


def test_only_neutral_success_is_sampled() -> None:
    run_hash = "sha256:ffffffff" + "0" * 56
    assert is_kept("success", run_hash, 0.0)
    assert not is_kept("neutral_success", run_hash, 0.25)


def test_sampling_is_deterministic_per_trace() -> None:
    run_hash = run_hash_of(body(outcome="neutral_success"))
    assert len({is_kept("neutral_success", run_hash, 0.25) for _ in range(5)}) == 1
