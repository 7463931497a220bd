"""A real `dobby serve` (uvicorn with httptools) or `dobby process` on a free loopback port, for tests where the
process boundary is the point (the app in-process is `tests.support.serve_in_process`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    approvals: Path
    bobbin: Path
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)


def environment(database_url: str, workdir: Path, **settings: str) -> dict[str, str]:
    """The settings every test server runs with, as `DOBBY_*` variables."""
    return {
        **os.environ,
        "DOBBY_DATABASE_URL": database_url,
        "DOBBY_WARP_APPROVALS_DIR": str(workdir / "approvals"),
        "DOBBY_BOBBIN_PATH": str(workdir / "bobbin.jsonl"),
        "DOBBY_SERVICE_MODE": "promotion_enabled",
        "DOBBY_PROCESSOR_INTERVAL_SECONDS": "0.2",
        **settings,
    }


@contextmanager
def serve(database_url: str, workdir: Path, *args: str, **settings: str) -> Iterator[Server]:
    """A real `dobby serve` on a free port: a port taken by someone else between choosing and binding is
    chosen again (at most three times), so parallel runs never race for one."""
    for _ in range(3):
        server = start_dobby(database_url, workdir, "serve", *args, **settings)
        try:
            if wait_until_healthy(server):
                yield server
                return
        finally:
            stop(server.process)
    raise RuntimeError(f"dobby serve found no free port: {server.log.read_text()}")


def start_dobby(database_url: str, workdir: Path, *args: str, **settings: str) -> Server:
    """`dobby ARGS…` as a process of its own, on a port of its own, logging to a file in `workdir`."""
    port = free_port()
    log = workdir / f"dobby-{args[0]}-{port}.log"
    env = {**environment(database_url, workdir, **settings), "DOBBY_PORT": str(port)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "dobby.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Server(f"http://127.0.0.1:{port}", process, workdir / "approvals", workdir / "bobbin.jsonl", log)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def wait_until_healthy(server: Server, timeout: float = 30.0) -> bool:
    """True once out of warmup; False when it could not bind its port (someone took it); else it fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            if "address already in use" in server.log.read_text().lower():
                return False
            raise RuntimeError(f"dobby serve exited: {server.log.read_text()}")
        try:
            ready = httpx.get(f"{server.url}/ready", timeout=1.0)
            if ready.status_code == 200 and ready.json()["effective_mode"] != "warmup":
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"dobby serve did not become healthy: {server.log.read_text()}")
