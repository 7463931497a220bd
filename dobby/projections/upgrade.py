"""Versioned projections (SPEC §13): the holder of a projection's role rebuilds it by itself when the tables hold an
older version than its code, into shadow tables while the live ones keep serving; a process whose code is older
than the stored version leaves the projection (and its role) to a newer one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dobby.engine.kernel.errors import describe
from dobby.engine.store.unit_of_work import EventLog
from dobby.projections.batches import BATCH_SIZE
from dobby.projections.rebuild import RebuildAbandonedError, RebuildReport, rebuild
from dobby.projections.store import ProjectionStore

LOG = logging.getLogger("dobby.projections")
REFRESH_SECONDS = 1.0
"""How often a follower rereads the stored versions (a newer process or `projections rebuild` may change them)."""
RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class VersionState:
    """A projection's version as this process sees it."""

    code: int
    stored: int | None
    """None: the projection's tables were never created in this database."""

    @property
    def stale(self) -> bool:
        """The stored rows are of an older shape than this code writes: a rebuild is due."""
        return self.stored is not None and self.stored < self.code

    @property
    def newer(self) -> bool:
        """Stored by newer code: this process must not write into them."""
        return self.stored is not None and self.stored > self.code


def version_states(store: ProjectionStore) -> dict[str, VersionState]:
    stored = store.stored_versions()
    return {name: VersionState(p.version, stored.get(name)) for name, p in store.projections.items()}


@dataclass
class Upgrader:
    """Rebuilds stale projections on threads of their own, each only while `leads(name)` (the role's lease)."""

    store: ProjectionStore
    log: EventLog
    leads: Callable[[str], bool]
    batch_size: int = BATCH_SIZE
    states: dict[str, VersionState] = field(default_factory=dict)
    rebuilt: dict[str, list[RebuildReport]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    _refreshed_at: float = float("-inf")
    _retry_at: dict[str, float] = field(default_factory=dict)
    _threads: dict[str, threading.Thread] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, force: bool = False) -> dict[str, VersionState]:
        """The stored versions, reread at most every REFRESH_SECONDS (raises when the database cannot answer)."""
        if force or time.monotonic() - self._refreshed_at >= REFRESH_SECONDS:
            states = version_states(self.store)
            with self._lock:
                self.states = states
                self._refreshed_at = time.monotonic()
        return self.states

    def rebuilding(self, name: str) -> bool:
        thread = self._threads.get(name)
        return thread is not None and thread.is_alive()

    def start_due(self, leading: set[str] | None) -> None:
        """Start a rebuild of each stale projection this process leads that is not rebuilding here already."""
        if self._stop.is_set():
            return
        for name, state in self.states.items():
            led = leading is None or name in leading
            if not state.stale or not led or self.rebuilding(name):
                continue
            if time.monotonic() < self._retry_at.get(name, 0.0):
                continue
            thread = threading.Thread(target=self._rebuild, args=(name,), name=f"dobby-rebuild-{name}", daemon=True)
            self._threads[name] = thread
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def _keep_going(self, name: str) -> bool:
        return not self._stop.is_set() and self.leads(name)

    def _rebuild(self, name: str) -> None:
        state = self.states[name]
        LOG.warning("projection %s: stored version %s is older than %s; rebuilding it", name, state.stored, state.code)
        try:
            report = rebuild(
                self.store, self.log, name, keep_going=lambda: self._keep_going(name), batch_size=self.batch_size
            )
        except RebuildAbandonedError:
            LOG.warning("projection %s: rebuild abandoned (role lost or stopping); the live tables are unchanged", name)
            return
        except Exception as error:
            self.errors[name] = f"rebuild failed: {describe(error)}"
            self._retry_at[name] = time.monotonic() + RETRY_SECONDS
            LOG.warning("projection %s: rebuild failed (%s); trying again in %.0f s", name, error, RETRY_SECONDS)
            return
        self.errors.pop(name, None)
        self.rebuilt.setdefault(name, []).append(report)
        with self._lock:
            self.states[name] = VersionState(state.code, state.code)
        LOG.warning(
            "projection %s: rebuilt at version %s (%s events in %.2f s) and swapped in",
            name,
            state.code,
            report.events,
            report.seconds,
        )
