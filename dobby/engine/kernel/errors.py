"""Every error a command can raise, under one base; each names the rules it violated."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Violation:
    """One violated rule: a stable code, the field it concerns (if any) and a human message."""

    code: str
    message: str
    field: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            detail["field"] = self.field
        detail.update(self.extra)
        return detail


class DobbyError(Exception):
    """Base of every domain error. `code` is the stable machine-readable name."""

    code = "error"

    def __init__(self, message: str, violations: list[Violation] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or []

    @property
    def details(self) -> list[dict[str, Any]]:
        return [violation.as_dict() for violation in self.violations]


class InvalidInputError(DobbyError):
    """The command's input does not have the required shape (types, enums, sizes, unknown fields)."""

    code = "invalid_input"


class MalformedInputError(DobbyError):
    """The body is not I-JSON (RFC 7493): not JSON, duplicate member names, lone surrogates, nesting too deep."""

    code = "malformed_json"


class RuleViolationError(DobbyError):
    """One or more business rules refused the command; `code` is the first violation's code."""

    def __init__(self, violations: list[Violation], retry_after: float | None = None) -> None:
        assert violations, "a rule violation names at least one rule"
        super().__init__("; ".join(v.message for v in violations), violations)
        self.code = violations[0].code
        self.retry_after = retry_after


class ForbiddenError(DobbyError):
    """The caller may not act for this tenant."""

    code = "forbidden"


class NotFoundError(DobbyError):
    code = "not_found"


class InvalidStateError(DobbyError):
    """The transition is not in the lifecycle table from the proposal's current state."""

    code = "invalid_state"


class ConflictError(DobbyError):
    """Another record holds what this command needs (another active proposal, a different re-submission)."""

    code = "conflict"


class ConcurrentModificationError(DobbyError):
    """Concurrent writers kept winning; the command was retried and gave up without changing anything."""

    code = "concurrent_modification"


class ModeForbidsError(DobbyError):
    """The effective service mode is below what the command needs."""

    code = "mode_forbids"


class ServiceUnavailableError(DobbyError):
    """Persistence or a required upstream is unavailable, or the service is in warmup."""

    code = "unavailable"

    def __init__(
        self,
        message: str,
        code: str = "unavailable",
        retry_after: float = 1.0,
        violations: list[Violation] | None = None,
    ) -> None:
        super().__init__(message, violations)
        self.code = code
        self.retry_after = retry_after


class StaleReadError(Exception):
    """Two aggregates read for one command disagree because a concurrent command moved one of them; the command
    is retried from fresh reads (like a version conflict)."""


def not_found(kind: str, identifier: str, field: str | None = None) -> NotFoundError:
    """The one answer for a record that is unknown — or belongs to a tenant the caller may not see, which must be
    indistinguishable (SPEC §8): the id as a canonical UUID when it is one, else as given (cut to 80 characters)."""
    try:
        shown = str(UUID(identifier))
    except (ValueError, TypeError, AttributeError):
        shown = repr(identifier[:80])
    message = f"no {kind} {shown}"
    return NotFoundError(message, [Violation("not_found", message, field)] if field else None)


def describe(error: BaseException) -> str:
    """One line naming the error. Only the first line of its text: SQL errors go on with statements and
    parameters, which may hold tenants' data, and this line is shown by the open /ready route."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:500]
