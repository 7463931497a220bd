"""OpenFeature Remote Evaluation Protocol (OFREP 0.3.0) over the targets read (SPEC §15): a flag is a target.

Under /ofrep OFREP's own shapes apply instead of SPEC §4's: every refusal is `{key?, errorCode, errorDetails}`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from dobby.engine.commands.boundary import decode
from dobby.engine.kernel.errors import DobbyError, InvalidInputError, MalformedInputError
from dobby.engine.kernel.shapes import View, is_identifier
from dobby.http.auth import principal_for
from dobby.http.errors import HttpError, error_response
from dobby.http.learning import LearningRoutes, call, json_response
from dobby.http.ports import AppServices

OFREP = "/ofrep/v1"
ErrorCode = Literal["PARSE_ERROR", "INVALID_CONTEXT", "FLAG_NOT_FOUND", "GENERAL"]


class EvaluationRequest(msgspec.Struct, frozen=True):
    """OFREP's evaluationRequest and bulkEvaluationRequest: the evaluation context (providers leave it out when
    they have none). `tenant_id` names the tenant; `targetingKey` and any other attribute are allowed, and ignored."""

    context: dict[str, Any] = {}


class FlagEvaluation(View, frozen=True):
    """OFREP's evaluationSuccess: `value` is the target's live object, `variant` its live_hash."""

    key: str
    value: dict[str, Any]
    reason: Literal["STATIC"]
    variant: str
    metadata: dict[str, str | int]


class BulkEvaluation(View, frozen=True):
    """OFREP's bulkEvaluationSuccess: one flag per target of the tenant whose source is not "none"."""

    flags: list[FlagEvaluation]


class EvaluationFailure(View, frozen=True, omit_defaults=True):
    """OFREP's evaluationFailure, flagNotFound and bulkEvaluationFailure."""

    errorCode: ErrorCode  # noqa: N815 (OFREP's name)
    errorDetails: str  # noqa: N815 (OFREP's name)
    key: str | None = None


class OfrepError(Exception):
    def __init__(self, status: int, code: ErrorCode, details: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(details)
        self.status, self.code, self.details, self.headers = status, code, details, headers or {}


def flag(target: dict[str, Any]) -> FlagEvaluation:
    """A targets read (SPEC §4.1) whose source is not "none" as an OFREP flag."""
    metadata: dict[str, str | int] = {
        "source": target["source"],
        "live_hash": target["live_hash"],
        "position": target["position"],
    }
    if target["active_proposal_id"] is not None:
        metadata["proposal_id"] = target["active_proposal_id"]
    key = f"{target['target']['type']}:{target['target']['id']}"
    return FlagEvaluation(key, target["live"], "STATIC", target["live_hash"], metadata)


def parse_key(key: str) -> tuple[str, str] | None:
    """`<target type>:<target id>`, or None for a key that can name no target."""
    kind, colon, name = key.partition(":")
    if not colon or not is_identifier(kind) or not is_identifier(name):
        return None
    return kind, name


def etag_of(body: bytes) -> str:
    """A strong ETag of a bulk answer: it changes whenever any flag does (each carries its target's position)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison of If-None-Match against the current ETag."""
    if if_none_match is None:
        return False
    candidates = [part.strip().removeprefix("W/") for part in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


@dataclass
class OfrepRoutes:
    services: AppServices
    learning: LearningRoutes

    async def ofrep_evaluate(self, request: Request) -> Response:
        key = request.path_params["key"]
        try:
            tenant = await self._tenant(request)
            parsed = parse_key(key)
            if parsed is None or tenant is None:
                raise OfrepError(404, "FLAG_NOT_FOUND", f"flag {key[:200]!r} was not found")
            target = await call(self.services.queries.get_target, tenant, *parsed)
            if target["source"] == "none":
                raise OfrepError(404, "FLAG_NOT_FOUND", f"flag {key[:200]!r} was not found")
            return json_response(flag(target))
        except Exception as error:
            return _failure(error, key)

    async def ofrep_bulk(self, request: Request) -> Response:
        try:
            tenant = await self._tenant(request)
            targets = [] if tenant is None else await call(self.services.queries.live_targets, tenant)
            body = msgspec.json.encode(BulkEvaluation([flag(target) for target in targets]))
            etag = etag_of(body)
            headers = {"ETag": etag}
            if matches(request.headers.get("if-none-match"), etag):
                return Response(status_code=304, headers=headers)
            return Response(body, media_type="application/json", headers=headers)
        except Exception as error:
            return _failure(error, None)

    async def _tenant(self, request: Request) -> str | None:
        """The tenant the caller evaluates for: None for a tenant outside its token's scope, whose flags answer as
        unknown ones do (SPEC §8, §15)."""
        principal = principal_for(request, "any")
        body = await request.body()
        try:
            context = decode(body, EvaluationRequest).context
        except MalformedInputError as error:
            raise OfrepError(400, "PARSE_ERROR", error.message) from None
        except InvalidInputError as error:
            code: ErrorCode = "INVALID_CONTEXT" if error.message.startswith("context") else "PARSE_ERROR"
            raise OfrepError(400, code, error.message) from None
        await self.learning.wait_for_min_position(request)
        tenant = context.get("tenant_id")
        if tenant is None and principal.tenants is not None and len(principal.tenants) == 1:
            tenant = next(iter(principal.tenants))
        if tenant is None:
            message = "the context names no tenant: set tenant_id (or use a token scoped to exactly one tenant)"
            raise OfrepError(400, "INVALID_CONTEXT", message)
        if not isinstance(tenant, str) or not is_identifier(tenant):
            raise OfrepError(400, "INVALID_CONTEXT", "tenant_id must be 1 to 200 characters without control characters")
        return tenant if principal.may_see(tenant) else None


def _failure(error: Exception, key: str | None) -> Response:
    """Any refusal in OFREP's shape; what is not OFREP's own keeps its HTTP status (401, 403, 422, 503)."""
    if isinstance(error, OfrepError):
        status, code, details, headers = error.status, error.code, error.details, error.headers
    elif isinstance(error, HttpError):
        status, code, details, headers = error.status, "GENERAL", error.message, error.headers
        if status == 503:
            headers = {"Retry-After": "1", **headers}
    elif isinstance(error, DobbyError):
        answer = error_response(error)
        status, code, details = answer.status_code, "GENERAL", error.message
        headers = {name: value for name, value in answer.headers.items() if name.lower() == "retry-after"}
    elif isinstance(error, PersistenceError | SQLAlchemyError):
        status, code, details, headers = 503, "GENERAL", "the database did not answer", {"Retry-After": "1"}
    else:
        raise error
    failure = EvaluationFailure(code, details, key)
    return json_response(failure, status, headers=headers or None)
