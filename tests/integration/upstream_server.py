"""A real loopback HTTP server standing in for Fabric, Warp or Shuttle, with scriptable misbehaviour; the
documents of a Fabric aligned with dobby's manifest."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dobby.resources import read_manifest

_MANIFEST = read_manifest()
FABRIC_ROUTES: dict[str, Any] = {
    "/api/v1/contracts/matrix": {
        "capability_class": _MANIFEST.capability_class,
        "target_types": ["prompt_template"],
        "no_learn_zones": ["prompt_template:x*"],
    },
    "/api/v1/contracts/families": {"families": dict(_MANIFEST.families)},
    "/api/v1/contracts/jarvis/readiness": {"status": "green"},
}


@dataclass
class Upstream:
    """Answers `routes[path]` as JSON; `mode` makes every answer well, slow, 500, garbage or a dropped connection."""

    routes: dict[str, Any] = field(default_factory=dict)
    mode: str = "well"
    delay: float = 1.0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            upstream.requests.append((self.path, dict(self.headers)))
            if upstream.mode == "close":
                self.connection.close()
                return
            if upstream.mode == "slow":
                time.sleep(upstream.delay)
            if upstream.mode == "error":
                self._send(500, b'{"error": "boom"}')
                return
            if upstream.mode == "garbage":
                self._send(200, b"<html>not json")
                return
            path = self.path.split("?")[0]
            if path not in upstream.routes:
                self._send(404, b"{}")
                return
            self._send(200, json.dumps(upstream.routes[path]).encode())

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def upstream_server(routes: dict[str, Any] | None = None) -> Iterator[Upstream]:
    upstream = Upstream(routes=routes or {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream))
    server.daemon_threads = True
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
