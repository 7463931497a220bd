"""Routes without path parameters, dispatched by one dict lookup instead of Starlette's router.

Each endpoint is called as Starlette would call it — a Request, the caller authenticated by the same backend
(`request.user`, `request.auth`), its errors answered by the same exception handlers — but the router, the
authentication and exception middleware and the per-route wrapper are skipped. Each of those is a coroutine frame
that every await of the request suspends and resumes; at intake rates they were half of the HTTP work. Any other
request (a path with parameters, HEAD, an unknown path or method) goes on to the Starlette app behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.authentication import AuthCredentials, AuthenticationBackend, UnauthenticatedUser
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request, Exception], Awaitable[Response]]


class DirectRoutes:
    def __init__(
        self,
        app: ASGIApp,
        routes: Iterable[Route],
        backend: AuthenticationBackend,
        handlers: Mapping[Any, Handler],
    ) -> None:
        self.app = app
        self.backend = backend
        self.handlers = handlers
        self.routes = {
            (method, route.path): route
            for route in routes
            if not route.param_convertors
            for method in route.methods or ()
            if method != "HEAD"
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        request = Request(scope, receive, send)
        try:
            found = await self.backend.authenticate(request)
            scope["auth"], scope["user"] = found or (AuthCredentials(), UnauthenticatedUser())
            response: Response = await route.endpoint(request)
        except Exception as error:
            response = await self._handler(error)(request, error)
        await response(scope, receive, send)

    def _handler(self, error: Exception) -> Handler:
        for kind in type(error).__mro__:
            if kind in self.handlers:
                return self.handlers[kind]
        raise error
