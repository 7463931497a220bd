"""A real `dobby serve` (uvicorn with httptools) or `dobby process`, for tests where the process boundary is the
point. A server is handed a socket this process already listens on (`--fd`): no port changes hands between
choosing and binding, so parallel runs never race for one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]


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
    """A real `dobby serve ARGS…`, out of warmup."""
    server = start_dobby(database_url, workdir, "serve", *args, **settings)
    try:
        wait_until_healthy(server)
        yield server
    finally:
        stop(server.process)


def db_init(database_url: str, workdir: Path) -> None:
    """`dobby db init`, as a deployment runs it once before its API workers start."""
    subprocess.run(
        [sys.executable, "-m", "dobby.cli", "db", "init"],
        env=environment(database_url, workdir),
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=True,
    )


def start_dobby(database_url: str, workdir: Path, *args: str, **settings: str) -> Server:
    """`dobby ARGS…` as a process of its own, logging to a file in `workdir`; `serve` on a loopback socket of its
    own, opened here and inherited."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        fd = ["--fd", str(listener.fileno())] if args[0] == "serve" else []
        log = workdir / f"dobby-{args[0]}-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "dobby.cli", *args, *fd],
                env=environment(database_url, workdir, **settings),
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(listener.fileno(),) if fd else (),
            )
    return Server(f"http://127.0.0.1:{port}", process, workdir / "approvals", workdir / "bobbin.jsonl", log)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def wait_until_healthy(server: Server, timeout: float = 30.0) -> None:
    """Until the server answers /ready out of warmup; it fails when the process exits or the time is up."""

    def healthy() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"dobby exited: {server.log.read_text()}")
        try:
            ready = httpx.get(f"{server.url}/ready", timeout=1.0)
        except httpx.HTTPError:
            return False
        return ready.status_code == 200 and ready.json()["effective_mode"] != "warmup"

    if not eventually(healthy, timeout, pause=0.05):
        raise RuntimeError(f"dobby did not become healthy: {server.log.read_text()}")
