"""Refusals of the dobby API as typed exceptions, each carrying the SPEC's error code (SPEC §4)."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec


class DobbyClientError(Exception):
    """Anything the client could not do: the server's refusal (DobbyApiError) or no answer at all."""


class DobbyUnreachableError(DobbyClientError):
    """No answer from the server (connection refused, timed out), after the retries an idempotent request gets."""


class DobbyApiError(DobbyClientError):
    """The server refused: `status`, and from its error body `code`, `message` and `details` (SPEC §4)."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]], retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details, self.retry_after = (
            status,
            code,
            message,
            details,
            retry_after,
        )


class MalformedRequestError(DobbyApiError):
    """400: the body is not I-JSON."""


class UnauthorizedError(DobbyApiError):
    """401: no valid bearer token."""


class ForbiddenError(DobbyApiError):
    """403: a role or tenant outside the token's scope."""


class NotFoundError(DobbyApiError):
    """404 `not_found`: an id that names nothing the caller may see."""


class ConflictError(DobbyApiError):
    """409: `invalid_state`, `conflict` or `concurrent_modification`."""


class UnprocessableError(DobbyApiError):
    """422: a schema or rule violation; `details` lists every violated field and rule."""


class UnavailableError(DobbyApiError):
    """503: persistence, an upstream or the projections not available now (`retry_after` seconds)."""


BY_STATUS: dict[int, type[DobbyApiError]] = {
    400: MalformedRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    503: UnavailableError,
}


class _ErrorBody(msgspec.Struct):
    code: str = "unknown"
    message: str = ""
    details: list[dict[str, Any]] = []


class _Envelope(msgspec.Struct):
    error: _ErrorBody


def refusal(response: httpx.Response) -> DobbyApiError:
    """The typed exception for a refused answer (any status of 400 or more)."""
    try:
        body = msgspec.json.decode(response.content, type=_Envelope).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        body = _ErrorBody("http_error", response.text[:500])
    kind = BY_STATUS.get(response.status_code, DobbyApiError)
    return kind(response.status_code, body.code, body.message, body.details, retry_after_of(response))


def retry_after_of(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isascii() and value.isdigit() else None
