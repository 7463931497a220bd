"""The read side of `dobby serve` in a child process it supervises (SPEC §7): started, restarted, stopped.

The child is `dobby process` (projections, expiry processor, scheduler, Bobbin publisher, checkpoint signer) in a
session of its own, so a Ctrl-C meant for the terminal's foreground reaches the parent alone, which then stops the
child with SIGTERM. A child that exits on its own is started again after a backoff that doubles up to
`MAX_BACKOFF_SECONDS` (and starts over once a child has stayed up `STABLE_SECONDS`). A child whose parent dies
without stopping it (SIGKILL) notices within a second and stops itself: no orphan keeps leading the read side.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("dobby.runtime.read_side")
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10.0
STABLE_SECONDS = 30.0
STOP_SECONDS = 10.0
PARENT_VARIABLE = "DOBBY_READ_SIDE_PARENT"


def wants_child(no_background: bool) -> bool:
    """The default layout: the read side in a child process, unless the machine has a single core (SPEC §7)."""
    return not no_background and (os.cpu_count() or 1) > 1


@dataclass(frozen=True)
class ReadSideState:
    running: bool
    pid: int | None
    restarts: int
    last_exit: str | None

    def as_json(self) -> dict[str, Any]:
        return {"process": "child", "running": self.running, "pid": self.pid, "restarts": self.restarts}

    def problem(self) -> str | None:
        if self.running:
            return None
        return f"read side down (child process {self.last_exit or 'not started yet'}); restarting"


class ReadSideSupervisor:
    """Runs `dobby process` as a child, restarts it when it dies, stops it with the parent."""

    def __init__(self, command: list[str] | None = None, environ: dict[str, str] | None = None) -> None:
        self._command = command or [sys.executable, "-m", "dobby.cli", "process"]
        self._environ = dict(os.environ if environ is None else environ)
        self._environ[PARENT_VARIABLE] = str(os.getpid())
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._restarts = 0
        self._last_exit: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="dobby-read-side", daemon=True)
        self._thread.start()

    def state(self) -> ReadSideState:
        with self._lock:
            child = self._child
            running = child is not None and child.poll() is None
            return ReadSideState(running, child.pid if running and child else None, self._restarts, self._last_exit)

    def stop(self) -> None:
        """SIGTERM to the child, SIGKILL if it has not stopped within `STOP_SECONDS`; waits for the exit."""
        self._stopping.set()
        with self._lock:
            child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                LOG.warning("the read side did not stop within %g s: killed", STOP_SECONDS)
                child.kill()
                child.wait(5)
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stopping.is_set():
                return None
            self._child = subprocess.Popen(self._command, env=self._environ, start_new_session=True)
            return self._child

    def _supervise(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                child = self._spawn()
            except OSError as error:
                child = None
                self._last_exit = f"could not start: {error}"
            if child is not None:
                code = child.wait()
                with self._lock:
                    self._last_exit = _describe_exit(code)
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STABLE_SECONDS:
                backoff = FIRST_BACKOFF_SECONDS
            LOG.warning("the read side stopped (%s): starting it again in %g s", self._last_exit, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            with self._lock:
                self._restarts += 1


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def parent_gone() -> bool:
    """In a supervised child: True once the parent that started it has died (the child is re-parented)."""
    parent = os.environ.get(PARENT_VARIABLE)
    return parent is not None and os.getppid() != int(parent)
