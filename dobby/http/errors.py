"""The one mapping from domain errors to HTTP answers, and the error body of SPEC §4."""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import JSONResponse

from dobby.engine.kernel.errors import (
    ConcurrentModificationError,
    ConflictError,
    DobbyError,
    ForbiddenError,
    InvalidInputError,
    InvalidStateError,
    MalformedInputError,
    ModeForbidsError,
    NotFoundError,
    RuleViolationError,
    ServiceUnavailableError,
)

STATUS_BY_CODE = {"invalid_state": 409, "conflict": 409, "concurrent_modification": 409}
STATUS_BY_CLASS: tuple[tuple[type[DobbyError], int], ...] = (
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ForbiddenError, 403),
    (MalformedInputError, 400),
    (InvalidStateError, 409),
    (ConflictError, 409),
    (ConcurrentModificationError, 409),
    (ModeForbidsError, 422),
    (ServiceUnavailableError, 503),
)


class HttpError(Exception):
    """A refusal decided by the HTTP layer itself (malformed JSON, wrong media type, body too large)."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []
        self.headers: dict[str, str] = {}


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def status_of(error: DobbyError) -> int:
    if isinstance(error, RuleViolationError):
        return STATUS_BY_CODE.get(error.code, 422)
    for kind, status in STATUS_BY_CLASS:
        if isinstance(error, kind):
            return status
    return 422


def error_response(error: DobbyError) -> JSONResponse:
    status = status_of(error)
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None and status in (422, 503):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if status == 503 and "Retry-After" not in headers:
        headers["Retry-After"] = "1"
    return JSONResponse(error_body(error.code, error.message, error.details), status_code=status, headers=headers)


def http_error_response(error: HttpError) -> JSONResponse:
    headers = {"Retry-After": "1", **error.headers} if error.status == 503 else dict(error.headers)
    return JSONResponse(error_body(error.code, error.message, error.details), status_code=error.status, headers=headers)
