"""Readiness: persistence probed with a bound, Fabric alignment, projection lag — answered within 3 s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from dobby.engine.kernel.clock import rfc3339, system_clock
from dobby.engine.kernel.errors import describe


@dataclass(frozen=True)
class Probe:
    reachable: bool
    latency_ms: float | None
    detail: str | None
    at: float
    writable: bool = True
    refusal: str | None = None  # why the store refuses writes, while it does

    @property
    def cause(self) -> str | None:
        """Why persistence caps the mode at warmup (SPEC §2, §16), or None when it does not."""
        if not self.reachable:
            return f"persistence unreachable: {self.detail}"
        if not self.writable:
            return f"persistence refuses writes: {self.refusal}"
        return None


WRITE_PROBE_SECONDS = 5.0  # SPEC §16: a write is probed at least this often
REFUSED_PROBE_SECONDS = 1.0  # and this often while the store refuses writes, so the cap lifts soon after


class PersistenceMonitor:
    """Probes the database off the request path: a read (a probe that hangs past `timeout` counts as unreachable)
    and, every few seconds, a write, whose refusal for the store's own reasons (`refuses_writes`) caps the mode
    at warmup until a write succeeds again. A write of a request that failed so reports it at once
    (`write_failed`).

    `reachable()` and `cause()` never do I/O: they report the last probe, which a background thread refreshes.
    """

    def __init__(
        self,
        probe: Callable[[], None],
        timeout: float = 2.0,
        interval: float = 1.0,
        write_probe: Callable[[], None] | None = None,
        refuses_writes: Callable[[BaseException], bool] = lambda _: False,
    ) -> None:
        self._probe = probe
        self._write_probe = write_probe
        self._refuses_writes = refuses_writes
        self._timeout = timeout
        self._interval = interval
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dobby-probe")
        self._inflight: dict[Callable[[], None], Future[None]] = {}
        self._lock = threading.Lock()
        self._last = Probe(False, None, "not probed yet", 0.0)
        self._refusal: str | None = None
        self._write_probed_at = -1e9
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

    def cause(self) -> str | None:
        return self._last.cause

    @property
    def last(self) -> Probe:
        return self._last

    def write_failed(self, error: BaseException) -> None:
        """A request's write failed: when the store refused it for its own reasons, cap the mode now (the next
        probe, within a second, lifts the cap again if a write succeeds)."""
        if self._refuses_writes(error):
            self._refusal = describe(error)
            self._last = replace(self._last, writable=False, refusal=self._refusal)

    def check(self) -> Probe:
        """Probe now, waiting at most `timeout`; a probe still hanging from before counts as a failure."""
        if self._stop.is_set():
            return self._last
        started = time.perf_counter()
        failure = self._run(self._probe)
        if failure is not None:
            probe = Probe(False, None, failure, time.monotonic(), writable=False)
        else:
            latency = round((time.perf_counter() - started) * 1000, 2)
            self._probe_write()
            probe = Probe(True, latency, None, time.monotonic(), self._refusal is None, self._refusal)
        self._last = probe
        return probe

    def _probe_write(self) -> None:
        spacing = WRITE_PROBE_SECONDS if self._refusal is None else REFUSED_PROBE_SECONDS
        if self._write_probe is None or time.monotonic() - self._write_probed_at < spacing:
            return
        self._write_probed_at = time.monotonic()
        try:
            self._call(self._write_probe)
        except FutureTimeout:
            return  # a write that waits (a lock, a busy store) says nothing either way
        except Exception as error:
            if self._refuses_writes(error):
                self._refusal = describe(error)
            return
        self._refusal = None

    def _run(self, probe: Callable[[], None]) -> str | None:
        """None when `probe` answered within the timeout, else what went wrong."""
        try:
            self._call(probe)
        except FutureTimeout:
            return f"no answer within {self._timeout:g} s"
        except Exception as error:
            return describe(error)
        return None

    def _call(self, probe: Callable[[], None]) -> None:
        """Run `probe` on the pool, or wait for the same probe still running from before (one of each at a time)."""
        with self._lock:
            future = self._inflight.get(probe)
            if future is None or future.done():
                future = self._pool.submit(probe)
                self._inflight[probe] = future
        future.result(timeout=self._timeout)

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
