"""A background loop on a thread of its own: an action every interval, failures logged and retried."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from dobby.adapters.store_errors import is_store_failure
from dobby.engine.kernel.errors import describe

LOG = logging.getLogger("dobby.background")


@dataclass
class Periodic:
    """Calls `action` every `interval` seconds on a thread until stopped; failures are logged and retried."""

    action: Callable[[], object]
    interval: float
    name: str = "dobby-periodic"
    last_error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.action()
                self.last_error = None
            except Exception as error:
                LOG.warning("%s failed: %s", self.name, describe(error), exc_info=not is_store_failure(error))
                self.last_error = f"{type(error).__name__}: {error}"
