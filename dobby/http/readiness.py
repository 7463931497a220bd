"""Readiness: persistence probed with a bound, Fabric alignment, projection lag — answered within 3 s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dobby.engine.clock import rfc3339, system_clock
from dobby.engine.errors import describe


@dataclass(frozen=True)
class Probe:
    reachable: bool
    latency_ms: float | None
    detail: str | None
    at: float


class PersistenceMonitor:
    """Probes the database off the request path; a probe that hangs past `timeout` counts as unreachable.

    `reachable()` never does I/O: it reports the last probe, which a background thread refreshes.
    """

    def __init__(self, probe: Callable[[], None], timeout: float = 2.0, interval: float = 1.0) -> None:
        self._probe = probe
        self._timeout = timeout
        self._interval = interval
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dobby-probe")
        self._inflight: Future[None] | None = None
        self._lock = threading.Lock()
        self._last = Probe(False, None, "not probed yet", 0.0)
        self._first = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, first_wait: float = 0.5) -> None:
        """Probe at once on the monitor's thread; wait a little for that first answer (a database that is up
        answers in milliseconds), never for a database that is down or hangs."""
        self._thread = threading.Thread(target=self._loop, name="dobby-persistence-probe", daemon=True)
        self._thread.start()
        self._first.wait(first_wait)

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def reachable(self) -> bool:
        return self._last.reachable

    @property
    def last(self) -> Probe:
        return self._last

    def check(self) -> Probe:
        """Probe now, waiting at most `timeout`; a probe still hanging from before counts as a failure."""
        if self._stop.is_set():
            return self._last
        with self._lock:
            if self._inflight is not None and not self._inflight.done():
                future = self._inflight
            else:
                future = self._pool.submit(self._probe)
                self._inflight = future
        started = time.perf_counter()
        try:
            future.result(timeout=self._timeout)
        except FutureTimeout:
            probe = Probe(False, None, f"no answer within {self._timeout:g} s", time.monotonic())
        except Exception as error:
            probe = Probe(False, None, describe(error), time.monotonic())
        else:
            probe = Probe(True, round((time.perf_counter() - started) * 1000, 2), None, time.monotonic())
        self._last = probe
        return probe

    def _loop(self) -> None:
        self.check()
        self._first.set()
        while not self._stop.wait(self._interval):
            self.check()


def fabric_section(alignment: Any, checked_at: datetime | None) -> dict[str, Any]:
    return {
        "aligned": alignment.aligned,
        "drift": list(alignment.drift),
        "checked_at": rfc3339(checked_at or system_clock()),
    }
