"""The intake path without sockets: dobby's ASGI app and the parse-only ceiling app driven in one process by the
same 64 concurrent intakes, group commit on, on a fresh PostgreSQL database; CPU per request and the ratio.

    .venv/bin/python bench/inprocess.py [--requests 6000] [--outcome neutral_success]

With `--outcome neutral_success` (sample rate 0.25) three in four intakes are sampled out and store nothing.

Useful to see what the app itself costs apart from uvicorn and the sockets (bench/capacity.py measures those too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop

from bench.ceiling import app as ceiling_app
from bench.common import fresh_postgres
from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.engine.rules.modes import Mode
from dobby.http.app import create_app
from dobby.resources import read_manifest
from dobby.runtime.system import System

PATH = "/api/v1/learning/signals/intake"


def bodies(count: int, outcome: str = "success") -> list[bytes]:
    families = dict(read_manifest().families)
    tag = time.time_ns()
    return [
        json.dumps(
            {
                "tenant_id": "bench",
                "trace_id": f"inproc-{tag}-{index}",
                "correlation_id": "c",
                "outcome": outcome,
                "guardrail_decision": "ALLOW",
                "family_versions": families,
                "target_hints": [{"type": "prompt_template", "id": "p1"}],
            }
        ).encode()
        for index in range(count)
    ]


async def drive(app: Any, payloads: list[bytes]) -> tuple[float, float, dict[int, int]]:
    """requests/s, CPU µs per request (this process: app, group commit, database client), answers by status."""
    gate = asyncio.Semaphore(64)
    statuses: dict[int, int] = {}

    async def one(body: bytes) -> None:
        async with gate:
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": PATH,
                "raw_path": PATH.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 2),
            }
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    await asyncio.sleep(3600)
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses[message["status"]] = statuses.get(message["status"], 0) + 1

            await app(scope, receive, send)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(body) for body in payloads))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(payloads) / seconds, cpu / len(payloads) * 1e6, statuses


async def run(system: System, count: int, outcome: str) -> None:
    app = create_app(system, background=False)
    inbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await outbox.get()
    while system.engine.context.mode() == Mode.warmup:  # until the readiness monitor has reached the database
        await asyncio.sleep(0.05)
    ceiling = await drive(ceiling_app, bodies(count))
    dobby = await drive(app, bodies(count, outcome))
    await inbox.put({"type": "lifespan.shutdown"})
    await lifespan
    print(f"ceiling app: {ceiling[0]:,.0f} req/s, {ceiling[1]:.0f} µs CPU per request")
    print(f"dobby app:   {dobby[0]:,.0f} req/s, {dobby[1]:.0f} µs CPU per request, answers {dobby[2]}")
    print(f"dobby ÷ ceiling: {dobby[0] / ceiling[0]:.2f} of the requests/s, {dobby[1] / ceiling[1]:.1f}× the CPU")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--outcome", default="success", help="neutral_success: most intakes are sampled out")
    args = parser.parse_args()
    with fresh_postgres() as url:
        system = build_system(Settings(database_url=url, bobbin_path=None, group_commit=True))
        system.init_storage()
        try:
            uvloop.run(run(system, args.requests, args.outcome))
        finally:
            system.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
