"""The Starlette application: every route of SPEC §4 as a thin call into the engine or the projection queries."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from eventsourcing.persistence import PersistenceError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dobby import __version__
from dobby.bootstrap import MANIFEST_PATH, System
from dobby.engine.clock import parse_rfc3339, rfc3339
from dobby.engine.errors import DobbyError, InvalidInputError, RuleViolationError, Violation
from dobby.engine.modes import Mode
from dobby.engine.ports import UpstreamUnavailableError
from dobby.engine.schemas import PROPOSAL_REF, ROLLBACK
from dobby.engine.validation import check_shape
from dobby.http.auth import Authenticator, Principal, load_tokens
from dobby.http.errors import HttpError, error_body, error_response, http_error_response
from dobby.http.metrics import DobbyCollector, build_registry
from dobby.http.middleware import (
    BackpressureGate,
    BackpressureState,
    BodyLimitMiddleware,
    BodyTooLargeError,
    MetricsMiddleware,
    RequestIdMiddleware,
)
from dobby.http.openapi import openapi_document
from dobby.http.readiness import PersistenceMonitor, fabric_section
from dobby.projections.tallies import DurableTallies

MIN_POSITION_WAIT_SECONDS = 2.0
CALL_DEADLINE_SECONDS = 2.8
T = TypeVar("T")
READY_DEADLINE_SECONDS = 2.7
Endpoint = Callable[[Request], Awaitable[Response]]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Api:
    """The route handlers; each parses, calls one engine command or query in the thread pool, and answers."""

    def __init__(
        self,
        system: System,
        monitor: PersistenceMonitor,
        counters: DurableTallies,
        auth: Authenticator,
        gate: BackpressureState,
    ) -> None:
        self.auth = auth
        self.gate = gate
        self.system = system
        self.engine = system.engine
        self.queries = system.queries
        self.monitor = monitor
        self.counters = counters
        self.manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))

    # ----- helpers -----------------------------------------------------------------------------------

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking engine or query call in the thread pool, answering 503 if it outlives the deadline."""
        try:
            return await asyncio.wait_for(run_in_threadpool(function, *args, **kwargs), CALL_DEADLINE_SECONDS)
        except TimeoutError:
            raise HttpError(503, "persistence_unavailable", "the database did not answer in time") from None

    async def body(self, request: Request) -> Any:
        if request.scope.get("state", {}).get("body_too_large"):
            raise BodyTooLargeError()
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
            raise HttpError(415, "unsupported_media_type", "send the body as application/json")
        raw = await request.body()
        try:
            return json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as error:
            raise HttpError(400, "malformed_json", f"the body is not valid JSON: {error}"[:300]) from None

    async def body_for(self, request: Request, role: str) -> tuple[Principal, Any]:
        """Authenticate for `role`, read the body, and hold a body's tenant_id to the token's tenants."""
        principal = self.auth.principal(request, role)
        body = await self.body(request)
        if isinstance(body, dict):
            principal.require_tenant(body.get("tenant_id"))
        return principal, body

    async def proposal_command(
        self, request: Request, schema: dict[str, Any] = PROPOSAL_REF
    ) -> tuple[Principal, Any, str]:
        """An operator's command on one proposal: authenticated, shape-checked, and within the token's tenants."""
        principal, body = await self.body_for(request, "operator")
        check_shape(schema, body)
        await self.require_proposal_tenant(principal, body["proposal_id"])
        return principal, body, body["proposal_id"]

    async def require_proposal_tenant(self, principal: Principal, proposal_id: str) -> None:
        if principal.tenants is not None:
            view = await self.call(self.engine.get_proposal, proposal_id)
            principal.require_tenant(view["tenant_id"])

    async def wait_for_min_position(self, request: Request) -> None:
        raw = request.query_params.get("min_position")
        if raw is None:
            return
        if not raw.isdigit() or len(raw) > 18:
            raise _invalid("min_position", "min_position must be a non-negative integer")
        wanted = int(raw)
        if wanted > await self.call(self.engine.position):
            raise _invalid("min_position", "min_position is beyond the last written position of the log")
        deadline = asyncio.get_running_loop().time() + MIN_POSITION_WAIT_SECONDS
        pause = 0.005
        while True:
            positions = await self.call(self.system.store.positions)
            if positions and min(positions.values()) >= wanted:
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise HttpError(503, "projection_lagging", f"projections have not reached position {wanted} yet")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    @staticmethod
    def written(outcome: Any) -> JSONResponse:
        return JSONResponse(outcome.body, status_code=201 if outcome.created else 200)

    # ----- service surface ---------------------------------------------------------------------------

    async def health(self, _: Request) -> Response:
        return JSONResponse({"status": "ok", "service": "jhf-dobby"})

    async def version(self, _: Request) -> Response:
        mode = await self.call(self.engine.mode)
        return JSONResponse(
            {"version": __version__, "requested_mode": self.engine.requested_mode.name, "effective_mode": mode.name}
        )

    async def fabric_manifest(self, _: Request) -> Response:
        return JSONResponse(self.manifest)

    async def ready(self, request: Request) -> Response:
        try:
            body = await asyncio.wait_for(self._readiness(), READY_DEADLINE_SECONDS)
        except TimeoutError:
            body = self._unreachable_readiness("readiness checks did not finish in time")
        strict = request.query_params.get("strict") == "true"
        status = 503 if strict and body["status"] != "ready" else 200
        return JSONResponse(body, status_code=status, headers={"Retry-After": "1"} if status == 503 else None)

    async def _readiness(self) -> dict[str, Any]:
        probe = await self.call(self.monitor.check)
        alignment = await self.call(self.engine.alignment)
        mode = await self.call(self.engine.mode)
        projections: dict[str, Any] = {}
        queue_depth = None
        problems = []
        if probe.reachable:
            projections, queue_depth = await self.call(self._projection_state)
            problems += [f"projection {name}: {p['failing']}" for name, p in projections.items() if p["failing"]]
        else:
            problems.append(f"persistence unreachable: {probe.detail}")
        if mode < self.engine.requested_mode:
            problems.append(f"effective mode {mode.name} is below the requested {self.engine.requested_mode.name}")
        problems += list(alignment.drift)
        return {
            "status": "ready"
            if probe.reachable and mode == self.engine.requested_mode and not problems
            else "degraded",
            "requested_mode": self.engine.requested_mode.name,
            "effective_mode": mode.name,
            "fabric": fabric_section(alignment, getattr(self.engine.governance, "checked_at", None)),
            "persistence": {"reachable": probe.reachable, "latency_ms": probe.latency_ms},
            "projections": projections,
            "queue_depth": queue_depth,
            "backpressure": self.gate.saturated or self._committer_saturated(),
            "detail": "; ".join(problems) or "ok",
        }

    def _committer_saturated(self) -> bool:
        committer = self.engine.committer
        return committer is not None and committer.pending > 1024

    def _projection_state(self) -> tuple[dict[str, dict[str, Any]], int]:
        health = self.system.follower.health(self.engine.position())
        projections = {name: runner.as_json() for name, runner in sorted(health.items())}
        return projections, self.queries.revalidation_queue_depth()

    def _unreachable_readiness(self, detail: str) -> dict[str, Any]:
        return {
            "status": "degraded",
            "requested_mode": self.engine.requested_mode.name,
            "effective_mode": Mode.warmup.name,
            "fabric": {"aligned": False, "drift": [], "checked_at": rfc3339(self.engine.clock())},
            "persistence": {"reachable": False, "latency_ms": None},
            "projections": {},
            "queue_depth": None,
            "backpressure": False,
            "detail": detail,
        }

    async def contract(self, request: Request) -> Response:
        self.auth.principal(request, "any")

        def view() -> dict[str, Any]:
            alignment = self.engine.alignment()
            try:
                document = self.engine.governance.current()
            except UpstreamUnavailableError:
                document = None
            return {
                "families": dict(document.families) if document else {},
                "target_types": list(document.target_types) if document else [],
                "no_learn_zones": list(document.no_learn_zones) if document else [],
                "capability_class": document.capability_class if document else None,
                "aligned": alignment.aligned,
                "drift": list(alignment.drift),
                "effective_mode": self.engine.mode().name,
            }

        return JSONResponse(await self.call(view))

    async def metrics(self, request: Request) -> Response:
        registry = request.app.state.registry
        return Response(await self.call(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, _: Request) -> Response:
        return JSONResponse(openapi_document())

    # ----- writes ------------------------------------------------------------------------------------

    async def intake(self, request: Request) -> Response:
        principal, body = await self.body_for(request, "submitter")
        try:
            outcome = await self.engine.intake_signal_async(
                body, header_tenant=request.headers.get("x-tenant-id"), actor=principal.name
            )
        except (InvalidInputError, RuleViolationError):
            self.counters.add("dobby_intake_total", result="rejected")
            raise
        if not outcome.body.get("accepted", True):
            self.counters.add("dobby_intake_total", result="sampled_out")
        elif not outcome.created:
            self.counters.add("dobby_intake_total", result="duplicate")
        return self.written(outcome)

    async def evaluate_replay(self, request: Request) -> Response:
        principal, body = await self.body_for(request, "submitter")
        return self.written(await self.call(self.engine.evaluate_replay, body, actor=principal.name))

    async def propose(self, request: Request) -> Response:
        principal, body = await self.body_for(request, "proposer")
        return self.written(await self.call(self.engine.propose, body, actor=principal.name))

    async def approve_check(self, request: Request) -> Response:
        principal, _, proposal_id = await self.proposal_command(request)
        outcome = await self.call(self.engine.approve_check, proposal_id, actor=principal.name)
        return JSONResponse(outcome.body)

    async def activate(self, request: Request) -> Response:
        principal, _, proposal_id = await self.proposal_command(request)
        try:
            outcome = await self.call(self.engine.activate, proposal_id, actor=principal.name)
        except RuleViolationError as error:
            for detail in error.details:
                if detail["code"] != "approval_stale":
                    self.counters.add("dobby_activation_denials_total", reason=detail["code"])
            raise
        return JSONResponse(outcome.body)

    async def rollback(self, request: Request) -> Response:
        principal, body, _ = await self.proposal_command(request, ROLLBACK)
        outcome = await self.call(self.engine.rollback, body, actor=principal.name)
        return JSONResponse(outcome.body)

    # ----- reads -------------------------------------------------------------------------------------

    def _getter(self, query: Callable[[str], dict[str, Any]], key: str) -> Endpoint:
        async def read(request: Request) -> Response:
            principal = self.auth.principal(request, "auditor")
            await self.wait_for_min_position(request)
            view = await self.call(query, request.path_params[key])
            principal.require_tenant(view["tenant_id"])
            return JSONResponse(view)

        return read

    def _lister(self, query: Callable[..., Any]) -> Endpoint:
        async def read(request: Request) -> Response:
            principal = self.auth.principal(request, "auditor")
            await self.wait_for_min_position(request)
            page = await self.call(query, dict(request.query_params), principal.tenants)
            return JSONResponse(page.as_json())

        return read

    async def history(self, request: Request) -> Response:
        principal = self.auth.principal(request, "auditor")
        await self.wait_for_min_position(request)
        await self.require_proposal_tenant(principal, request.path_params["proposal_id"])
        as_of_version, as_of = _as_of(request)
        history = await self.call(
            self.engine.get_history, request.path_params["proposal_id"], as_of_version=as_of_version, as_of=as_of
        )
        return JSONResponse(history)

    async def explain(self, request: Request) -> Response:
        principal = self.auth.principal(request, "auditor")
        await self.wait_for_min_position(request)
        await self.require_proposal_tenant(principal, request.path_params["proposal_id"])
        return JSONResponse(await self.call(self.engine.get_explanation, request.path_params["proposal_id"]))

    def routes(self) -> list[Route]:
        learning = "/api/v1/learning"
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/version", self.version, methods=["GET"]),
            Route("/fabric-manifest.json", self.fabric_manifest, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/api/v1/contract", self.contract, methods=["GET"]),
            Route(f"{learning}/signals/intake", self.intake, methods=["POST"]),
            Route(f"{learning}/replay/evaluate", self.evaluate_replay, methods=["POST"]),
            Route(f"{learning}/promotions/propose", self.propose, methods=["POST"]),
            Route(f"{learning}/promotions/approve-check", self.approve_check, methods=["POST"]),
            Route(f"{learning}/promotions/activate", self.activate, methods=["POST"]),
            Route(f"{learning}/promotions/rollback", self.rollback, methods=["POST"]),
            Route(f"{learning}/runs", self._lister(self.queries.list_runs), methods=["GET"]),
            Route(f"{learning}/runs/{{run_id}}", self._getter(self.queries.get_run, "run_id"), methods=["GET"]),
            Route(f"{learning}/replays", self._lister(self.queries.list_replays), methods=["GET"]),
            Route(
                f"{learning}/replays/{{replay_id}}", self._getter(self.queries.get_replay, "replay_id"), methods=["GET"]
            ),
            Route(f"{learning}/proposals", self._lister(self.queries.list_proposals), methods=["GET"]),
            Route(
                f"{learning}/proposals/{{proposal_id}}",
                self._getter(self.queries.get_proposal, "proposal_id"),
                methods=["GET"],
            ),
            Route(f"{learning}/proposals/{{proposal_id}}/history", self.history, methods=["GET"]),
            Route(f"{learning}/proposals/{{proposal_id}}/explain", self.explain, methods=["GET"]),
        ]


def _invalid(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(message, [Violation("invalid_value", message, field)])


def _as_of(request: Request) -> tuple[int | None, datetime | None]:
    raw_version = request.query_params.get("as_of_version")
    raw_time = request.query_params.get("as_of")
    version = None
    moment = None
    if raw_version is not None:
        if not raw_version.isdigit() or not 1 <= int(raw_version) <= 10**9:
            raise _invalid("as_of_version", "as_of_version must be a positive integer")
        version = int(raw_version)
    if raw_time is not None:
        try:
            moment = parse_rfc3339(raw_time)
            moment + timedelta(0)
        except (ValueError, OverflowError):
            raise _invalid("as_of", "as_of must be an RFC 3339 timestamp with an offset") from None
    return version, moment


def create_app(system: System, *, background: bool = True) -> Starlette:
    """The dobby HTTP app over a built System; with `background`, it also runs projections and processors."""
    tokens_file = system.settings.api_tokens_file
    auth = Authenticator(load_tokens(tokens_file) if tokens_file is not None else None)
    monitor = PersistenceMonitor(system.probe_persistence, timeout=min(system.settings.db_timeout_seconds, 2.0))
    system.engine.persistence_reachable = monitor.reachable
    counters = system.tallies
    gate = BackpressureState()
    api = Api(system, monitor, counters, auth, gate)
    counts = (system.queries.counters_by_metric, system.tallies.totals)
    registry, histogram = build_registry(DobbyCollector(counts, system.gauges))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(system.init_storage)
        monitor.start()
        system.tallies.start()
        await run_in_threadpool(system.start_fabric_refresh)
        if background:
            system.start_background()
        try:
            yield
        finally:
            monitor.stop()
            await run_in_threadpool(system.close)

    async def domain_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, DobbyError)
        return error_response(error)

    async def http_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, HttpError)
        return http_error_response(error)

    async def starlette_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code, headers=error.headers)

    async def persistence_error(_: Request, error: Exception) -> Response:
        return JSONResponse(
            error_body("persistence_unavailable", f"the database did not answer: {type(error).__name__}"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    async def unexpected(_: Request, error: Exception) -> Response:
        return JSONResponse(error_body("internal", "an unexpected error; nothing was changed"), status_code=500)

    app = Starlette(
        routes=api.routes(),
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware, histogram=histogram),
            Middleware(BodyLimitMiddleware),
            Middleware(BackpressureGate, gate=gate),
        ],
        exception_handlers={
            DobbyError: domain_error,
            HttpError: http_error,
            HTTPException: starlette_error,
            PersistenceError: persistence_error,
            SQLAlchemyError: persistence_error,
            Exception: unexpected,
        },
        lifespan=lifespan,
    )
    app.state.registry = registry
    return app
