"""The console's routes (SPEC §9): which page answers which path, every refusal shown as a page, the static files.
The caller is authenticated by the API's own backend."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dobby.engine.kernel.errors import DobbyError
from dobby.http.auth import Principal, TokenBackend
from dobby.http.console.actions import ActionPages
from dobby.http.console.policy_pages import PolicyPages
from dobby.http.console.read_pages import ReadPages
from dobby.http.console.session_pages import SessionPages
from dobby.http.console.web import CONSOLE, Endpoint, RefusedError, Renderer, redirect, refusal_of, secured
from dobby.http.errors import HttpError, status_of
from dobby.http.ports import AppServices
from dobby.http.sessions import SessionCodec
from dobby.http.surface import SurfaceRoutes


async def _to_console(_: Request) -> Response:
    """`GET /` leads a newcomer to the console (SPEC §7)."""
    return RedirectResponse(CONSOLE, status_code=307)


@dataclass
class ConsoleRoutes:
    services: AppServices
    surface: SurfaceRoutes
    backend: TokenBackend
    renderer: Renderer
    sessions: SessionCodec | None
    static: dict[str, tuple[bytes, str]]

    @property
    def enabled(self) -> bool:
        """With tokens the console needs DOBBY_CONSOLE_SECRET to sign sessions; without it, it stays shut."""
        return self.backend.tokens is None or self.sessions is not None

    def routes(self) -> list[Route]:
        policy = PolicyPages(self.services, self.renderer, self.guarded)
        reads = ReadPages(self.services, self.surface, self.renderer, policy)
        actions = ActionPages(self.services, reads)
        sessions = SessionPages(self.backend, self.renderer, self.sessions)
        pages: list[tuple[str, Endpoint, str]] = [
            (CONSOLE, reads.overview, "GET"),
            (f"{CONSOLE}/proposals", reads.proposals, "GET"),
            (f"{CONSOLE}/proposals/{{proposal_id}}", reads.proposal, "GET"),
            (f"{CONSOLE}/proposals/{{proposal_id}}/{{action}}", actions.act, "POST"),
            (f"{CONSOLE}/replays/{{replay_id}}", reads.replay, "GET"),
            (f"{CONSOLE}/replays/{{replay_id}}/what-if", actions.what_if, "POST"),
            (f"{CONSOLE}/runs", reads.runs, "GET"),
            (f"{CONSOLE}/sign-in", sessions.sign_in_form, "GET"),
            (f"{CONSOLE}/sign-in", sessions.sign_in, "POST"),
            (f"{CONSOLE}/sign-out", sessions.sign_out, "POST"),
        ]
        found = [Route(path, self.guarded(endpoint), methods=[method]) for path, endpoint, method in pages]
        found += policy.routes()
        found.append(Route(f"{CONSOLE}/static/{{name}}", self.asset, methods=["GET"]))
        found.append(Route("/", _to_console, methods=["GET"]))
        return found

    def guarded(self, endpoint: Endpoint) -> Endpoint:
        """Every page's refusals as pages: sign-in when nobody is signed in, else the reason in plain words."""

        async def guarded(request: Request) -> Response:
            if not self.enabled:
                text = "The console needs DOBBY_CONSOLE_SECRET when API tokens are configured; it is not set."
                return self._error(request, 503, text)
            try:
                return await endpoint(request)
            except HttpError as error:
                if error.status == 401:
                    return redirect(f"{CONSOLE}/sign-in")
                return self._error(request, error.status, error.message)
            except RefusedError as refused:
                return self._error(request, refused.status, refused.text)
            except DobbyError as error:
                message = refusal_of(error)
                return self._error(request, status_of(error), message.text, message.details)

        return guarded

    def _error(self, request: Request, status: int, text: str, details: tuple[str, ...] = ()) -> Response:
        user = request.scope.get("user")
        principal = user if isinstance(user, Principal) else None
        values = {"code": status, "text": text, "details": details}
        return self.renderer.page(request, "error.html", status, principal, **values)

    async def asset(self, request: Request) -> Response:
        found = self.static.get(request.path_params["name"])
        if found is None:
            return self._error(request, 404, "no such file")
        response = secured(Response(found[0], media_type=found[1]))
        response.headers["Cache-Control"] = "max-age=300"
        return response
