"""The service surface of SPEC §4.1: health, readiness, version, the manifest, the contract view, metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from dobby import __version__
from dobby.engine.commands.context import Context
from dobby.engine.kernel.clock import rfc3339
from dobby.engine.rules.modes import Mode
from dobby.http.auth import principal_for
from dobby.http.learning import LearningRoutes, call, invalid, json_response
from dobby.http.middleware import BackpressureState
from dobby.http.openapi import openapi_document
from dobby.http.ports import AppServices
from dobby.http.readiness import PersistenceMonitor, fabric_section
from dobby.resources import manifest_json
from dobby.runtime.read_side import ReadSideSupervisor

READY_DEADLINE_SECONDS = 2.7
HEALTH = b'{"status":"ok","service":"jhf-dobby"}'
COMMITTER_SATURATED = 1024


@dataclass
class SurfaceRoutes:
    services: AppServices
    monitor: PersistenceMonitor
    registry: CollectorRegistry
    backpressure: BackpressureState
    read_side: ReadSideSupervisor | None = None

    @property
    def context(self) -> Context:
        return self.services.engine.context

    async def health(self, _: Request) -> Response:
        return Response(HEALTH, media_type="application/json")

    async def version(self, _: Request) -> Response:
        mode = await call(self.context.mode)
        requested = self.context.requested_mode.name
        return json_response({"version": __version__, "requested_mode": requested, "effective_mode": mode.name})

    async def fabric_manifest(self, _: Request) -> Response:
        return Response(manifest_json(), media_type="application/json")

    async def openapi(self, _: Request) -> Response:
        return json_response(openapi_document())

    async def metrics(self, _: Request) -> Response:
        return Response(await call(generate_latest, self.registry), media_type=CONTENT_TYPE_LATEST)

    async def contract(self, request: Request) -> Response:
        principal_for(request, "any")
        await LearningRoutes(self.services).wait_for_min_position(request)

        def view() -> dict[str, Any]:
            context = self.context
            document = context.document()
            alignment = context.alignment()
            return {
                "families": dict(document.families) if document else {},
                "target_types": list(document.target_types) if document else [],
                "no_learn_zones": list(document.no_learn_zones) if document else [],
                "capability_class": document.capability_class if document else None,
                "aligned": alignment.aligned,
                "drift": list(alignment.drift),
                "effective_mode": context.mode().name,
            }

        return json_response(await call(view))

    async def ready(self, request: Request) -> Response:
        strict = request.query_params.get("strict", "false")
        if strict not in ("true", "false"):
            raise invalid("strict", "strict must be true or false")
        body = await self.readiness_view()
        status = 503 if strict == "true" and body["status"] != "ready" else 200
        return json_response(body, status, headers={"Retry-After": "1"} if status == 503 else None)

    async def readiness_view(self) -> dict[str, Any]:
        """The body of /ready, within its deadline (the console's overview shows it too)."""
        try:
            return await asyncio.wait_for(self._readiness(), READY_DEADLINE_SECONDS)
        except TimeoutError:
            return self._unreachable("readiness checks did not finish in time")

    async def _readiness(self) -> dict[str, Any]:
        context = self.context
        probe = await call(self.monitor.check)
        alignment = await call(context.alignment)
        mode = await call(context.mode)
        projections: dict[str, Any] = {}
        queue_depth = None
        problems = []
        if probe.cause is not None:
            problems.append(probe.cause)
        if probe.reachable:
            projections, queue_depth = await call(self._projection_state)
            problems += [f"projection {name}: {p['failing']}" for name, p in projections.items() if p["failing"]]
            problems += [rebuild_problem(name, p) for name, p in projections.items() if p.get("rebuilding") is not None]
        read_side = self.read_side.state() if self.read_side is not None else None
        if read_side is not None and (problem := read_side.problem()) is not None:
            problems.append(problem)
        if mode < context.requested_mode:
            problems.append(f"effective mode {mode.name} is below the requested {context.requested_mode.name}")
        problems += list(alignment.drift)
        return {
            "status": "degraded" if problems else "ready",
            "requested_mode": context.requested_mode.name,
            "effective_mode": mode.name,
            "fabric": fabric_section(alignment, self.services.fabric_checked_at()),
            "persistence": {
                "reachable": probe.reachable,
                "writable": probe.reachable and probe.writable,
                "latency_ms": probe.latency_ms,
            },
            "projections": projections,
            "queue_depth": queue_depth,
            "backpressure": self.backpressure.saturated or self.services.committer_pending() > COMMITTER_SATURATED,
            "detail": "; ".join(problems) or "ok",
            **({"read_side": read_side.as_json()} if read_side is not None else {}),
        }

    def _projection_state(self) -> tuple[dict[str, dict[str, Any]], int]:
        return self.services.projection_health(), self.services.queue_depth()

    def _unreachable(self, detail: str) -> dict[str, Any]:
        return {
            "status": "degraded",
            "requested_mode": self.context.requested_mode.name,
            "effective_mode": Mode.warmup.name,
            "fabric": {"aligned": False, "drift": [], "checked_at": rfc3339(self.context.clock())},
            "persistence": {"reachable": False, "writable": False, "latency_ms": None},
            "projections": {},
            "queue_depth": None,
            "backpressure": False,
            "detail": detail,
        }


def rebuild_problem(name: str, projection: dict[str, Any]) -> str:
    """What /ready names while a projection waits for its rebuild to the code's version (SPEC §13)."""
    return (
        f"projection {name}: rebuilding from version {projection['stored_version']} to {projection['version']}"
        f" ({projection['rebuilding']:.0%}); the live tables serve meanwhile"
    )
