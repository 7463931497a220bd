"""Signing in to the console with an API token and out again (SPEC §9): a signed session cookie, CSRF-checked."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from dobby.http.auth import READERS, TokenBackend
from dobby.http.console.web import CONSOLE, RefusedError, Renderer, csrf_refusal, form_of, redirect, set_cookie
from dobby.http.sessions import SESSION_COOKIE, SESSION_SECONDS, SessionCodec


@dataclass
class SessionPages:
    backend: TokenBackend
    renderer: Renderer
    sessions: SessionCodec | None

    async def sign_in_form(self, request: Request) -> Response:
        if self.backend.tokens is None:
            return redirect(CONSOLE)
        return self.renderer.page(request, "sign_in.html", problem=None)

    async def sign_in(self, request: Request) -> Response:
        if self.backend.tokens is None or self.sessions is None:
            return redirect(CONSOLE)
        form = await form_of(request)
        refusal = csrf_refusal(request, form)
        found = None if refusal else self.backend.find(form.get("token", ""))
        if found is None:
            problem = refusal or "That token is not valid."
            return self.renderer.page(request, "sign_in.html", 401, problem=problem)
        if not found[1].roles & set(READERS):
            roles = ", ".join(sorted(found[1].roles))
            problem = (
                f"The token {found[1].name!r} ({roles}) cannot use the console: it needs the auditor or operator role."
            )
            return self.renderer.page(request, "sign_in.html", 403, problem=problem)
        response = redirect(CONSOLE)
        set_cookie(request, response, SESSION_COOKIE, self.sessions.issue(found[0]), max_age=SESSION_SECONDS)
        return response

    async def sign_out(self, request: Request) -> Response:
        form = await form_of(request)
        refusal = csrf_refusal(request, form)
        if refusal is not None:
            raise RefusedError(403, f"Refused: {refusal}.")
        response = redirect(f"{CONSOLE}/sign-in" if self.backend.tokens is not None else CONSOLE)
        response.delete_cookie(SESSION_COOKIE, path=CONSOLE, httponly=True, samesite="strict")
        return response
