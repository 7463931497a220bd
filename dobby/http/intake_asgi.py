"""`POST /api/v1/learning/signals/intake` as a plain ASGI endpoint: the hottest route without a Request or a
Response object (bench/RESULTS.md, "Intake levers tried").

It does what `LearningRoutes.intake` does — the same authentication backend, the same roles, the same 415 for a
body that is not JSON, the same engine command — but reads the headers it needs in one pass over the raw list,
reads the body straight from `receive`, and sends the answer msgspec encoded once with a prebuilt header list.
Anything it raises before it answers is answered by DirectRoutes through the app's one error mapping.
"""

from __future__ import annotations

import msgspec
from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.requests import ClientDisconnect, HTTPConnection
from starlette.types import Receive, Scope, Send

from dobby.engine.service import Engine
from dobby.http.auth import TokenBackend, principal_for
from dobby.http.errors import HttpError

PATH = "/api/v1/learning/signals/intake"
_ENCODER = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")


class AnsweredError(Exception):
    """Raised around a failure after the answer started: nothing more can be sent for this request."""


class IntakeEndpoint:
    def __init__(self, engine: Engine, backend: TokenBackend) -> None:
        self.engine = engine
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = HTTPConnection(scope)
        found = await self.backend.authenticate(connection)
        scope["auth"], scope["user"] = found or (AuthCredentials(), UnauthenticatedUser())
        principal = principal_for(connection, "submitter")
        media: bytes | None = None
        tenant: str | None = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get reads them
            if name == b"content-type" and media is None:
                media = value
            elif name == b"x-tenant-id" and tenant is None:
                tenant = value.decode("latin-1")
        if not _is_json(media or b""):
            raise HttpError(415, "unsupported_media_type", "send the body as application/json")
        answer = await self.engine.intake.submit_async(
            await _body(receive), header_tenant=tenant, tenants=principal.tenants, actor=principal.name
        )
        created = getattr(answer, "accepted", False) and not getattr(answer, "duplicate", True)
        payload = _ENCODER.encode(answer)
        headers = [_JSON, (b"content-length", b"%d" % len(payload))]
        try:
            await send({"type": "http.response.start", "status": 201 if created else 200, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
        except Exception as error:
            raise AnsweredError() from error


def _is_json(raw: bytes) -> bool:
    media = raw.decode("latin-1").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
