"""The Starlette application: routes from the route table, auth, middleware and the one error mapping."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dobby.adapters.store_errors import refuses_writes
from dobby.engine.kernel.errors import DobbyError, ServiceUnavailableError
from dobby.http.audit import AuditRoutes
from dobby.http.auth import TokenBackend, load_tokens
from dobby.http.console.pages import ConsoleRoutes
from dobby.http.console.web import Renderer, environment, static_files
from dobby.http.direct import DirectRoutes
from dobby.http.errors import HttpError, error_body, error_response, http_error_response
from dobby.http.intake_asgi import PATH as INTAKE_PATH
from dobby.http.intake_asgi import IntakeEndpoint
from dobby.http.learning import LearningRoutes, json_response
from dobby.http.metrics import DobbyCollector, build_registry
from dobby.http.middleware import BackpressureState, EdgeMiddleware
from dobby.http.ofrep import OFREP, EvaluationFailure, OfrepRoutes
from dobby.http.policy import PolicyRoutes
from dobby.http.ports import AppServices
from dobby.http.readiness import PersistenceMonitor
from dobby.http.routes import OPERATIONS
from dobby.http.sessions import SessionCodec
from dobby.http.surface import SurfaceRoutes
from dobby.runtime.read_side import ReadSideSupervisor


def routes(*owners: object) -> list[Route]:
    """One Route per path of the route table, with every method it has (so 405 and OPTIONS `allow` name them
    all); each method's endpoint is named on the first of `owners` that has it."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for operation in OPERATIONS:
        endpoint = next(getattr(o, operation.handler) for o in owners if hasattr(o, operation.handler))
        by_path.setdefault(operation.route_path, {})[operation.method] = endpoint
    return [Route(path, _by_method(endpoints), methods=list(endpoints)) for path, endpoints in by_path.items()]


Endpoint = Callable[[Request], Awaitable[Response]]


def _by_method(endpoints: dict[str, Endpoint]) -> Endpoint:
    """The one endpoint of a path, or one that calls the endpoint of the request's method (HEAD as GET)."""
    if len(endpoints) == 1:
        return next(iter(endpoints.values()))

    async def endpoint(request: Request) -> Response:
        method = request.method if request.method in endpoints else "GET"
        return await endpoints[method](request)

    return endpoint


async def _domain_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, DobbyError)
    return error_response(error)


async def _http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, HttpError)
    return http_error_response(error)


async def _starlette_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if request.url.path.startswith(OFREP + "/") and error.status_code == 404:  # OFREP's own shape there (SPEC §15)
        failure = EvaluationFailure("FLAG_NOT_FOUND", "no flag at this path")
        return json_response(failure, 404)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code, headers=error.headers)


async def _persistence_error(_: Request, error: Exception) -> Response:
    message = f"the database did not answer: {type(error).__name__}"
    return JSONResponse(error_body("persistence_unavailable", message), status_code=503, headers={"Retry-After": "1"})


def _reporting_to(monitor: PersistenceMonitor) -> dict[Any, Any]:
    """The handlers of store failures (raw, or as the engine's 503), each telling `monitor` of a write the store
    refused for its own reasons (SPEC §16: the cap comes at once, not at the next probe)."""

    async def store_failure(request: Request, error: Exception) -> Response:
        monitor.write_failed(error)
        return await _persistence_error(request, error)

    async def unavailable(request: Request, error: Exception) -> Response:
        monitor.write_failed(error)
        return await _domain_error(request, error)

    return {**dict.fromkeys(STORE_ERRORS, store_failure), ServiceUnavailableError: unavailable}


async def _unexpected(_: Request, error: Exception) -> Response:
    return JSONResponse(error_body("internal", "an unexpected error; nothing was changed"), status_code=500)


LOG = logging.getLogger("dobby")
STORE_ERRORS = (PersistenceError, SQLAlchemyError, sqlite3.Error)

EXCEPTION_HANDLERS: dict[Any, Any] = {
    DobbyError: _domain_error,
    HttpError: _http_error,
    HTTPException: _starlette_error,
    PersistenceError: _persistence_error,
    SQLAlchemyError: _persistence_error,
    sqlite3.Error: _persistence_error,  # the library lets some through unwrapped (opening a connection)
    Exception: _unexpected,
}


def create_app(
    services: AppServices, *, background: bool = True, read_side: ReadSideSupervisor | None = None
) -> Starlette:
    """The dobby HTTP app over `services`; with `background`, it also runs projections and processors in this
    process; with `read_side`, they run in the child process it supervises (started and stopped with the app)."""
    tokens_file = services.tokens_file
    sessions = SessionCodec(services.console_secret) if services.console_secret else None
    backend = TokenBackend(load_tokens(tokens_file) if tokens_file is not None else None, sessions)
    monitor = PersistenceMonitor(
        services.probe_persistence,
        timeout=min(services.db_timeout_seconds, 2.0),
        write_probe=services.probe_write,
        refuses_writes=refuses_writes,
    )
    gate = BackpressureState(services.max_in_flight)
    registry, histogram = build_registry(DobbyCollector([services.counters], services.gauges))
    learning = LearningRoutes(services)
    surface = SurfaceRoutes(services, monitor, registry, gate, read_side)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        services.engine.context.persistence_reachable = monitor.reachable
        services.engine.context.persistence_cause = monitor.cause
        await run_in_threadpool(monitor.start)
        await run_in_threadpool(services.start, background=background, when_ready=monitor.check)
        if read_side is not None:
            read_side.start()
        try:
            yield
        finally:
            if read_side is not None:
                await run_in_threadpool(read_side.stop)
            monitor.stop()
            await run_in_threadpool(services.close)

    if backend.tokens is not None and sessions is None:
        LOG.warning(
            "no DOBBY_CONSOLE_SECRET: the console stays shut (the API serves); set one of 16+ characters to open it"
        )
    renderer = Renderer(environment(), tokens_configured=backend.tokens is not None)
    console = ConsoleRoutes(services, surface, backend, renderer, sessions, static_files())
    owners = (learning, surface, AuditRoutes(services), PolicyRoutes(services), OfrepRoutes(services, learning))
    table = routes(*owners) + console.routes()
    handlers = {**EXCEPTION_HANDLERS, **_reporting_to(monitor)}
    return Starlette(
        routes=table,
        middleware=[
            Middleware(EdgeMiddleware, histogram=histogram, gate=gate, timeout=services.body_timeout_seconds),
            Middleware(
                DirectRoutes,
                routes=table,
                backend=backend,
                handlers=handlers,
                plain={("POST", INTAKE_PATH): IntakeEndpoint(services.engine, backend)},
            ),
            Middleware(AuthenticationMiddleware, backend=backend),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
