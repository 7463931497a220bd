"""Durable tallies of answers that store nothing (refused, sampled-out and duplicate intakes, activation denials)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from dobby.projections.database import writer
from dobby.projections.tables import encode_labels
from dobby.runtime.periodic import Periodic

LOG = logging.getLogger("dobby.tallies")
FLUSH_SECONDS = 1.0

Key = tuple[str, tuple[tuple[str, str], ...]]


class DurableTallies:
    """Counts in memory and adds the counts to one table at least every `interval` seconds and at `stop`.

    Every process adds its own deltas to the same rows, so every process reads the same totals and they survive
    restarts; a crash loses at most the deltas of the last interval. A flush that fails keeps its deltas for the
    next one.
    """

    def __init__(self, engine: Engine, table: Table, interval: float = FLUSH_SECONDS) -> None:
        self._engine = engine
        self._table = table
        self._interval = interval
        self._pending: Counter[Key] = Counter()
        self._lock = threading.Lock()
        self._flusher: Periodic | None = None

    def count(self, metric: str, labels: Mapping[str, str]) -> None:
        """One more of `metric` with `labels`; no I/O."""
        key = (metric, tuple(sorted(labels.items())))
        with self._lock:
            self._pending[key] += 1

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(self._pending.values())

    def flush(self) -> int:
        """Add the pending deltas to the table in one transaction; returns how many were made durable."""
        with self._lock:
            deltas, self._pending = self._pending, Counter()
        if not deltas:
            return 0
        rows = sorted(
            (
                {"metric": metric, "labels": encode_labels(dict(labels)), "value": value}
                for (metric, labels), value in deltas.items()
            ),
            key=lambda row: (row["metric"], row["labels"]),  # one lock order for every process: no deadlocks
        )
        try:
            with writer(self._engine).begin() as connection:
                connection.execute(self._upsert(), rows)
        except Exception:
            with self._lock:
                self._pending.update(deltas)
            raise
        return sum(deltas.values())

    def _upsert(self) -> Any:
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(self._table)
        return statement.on_conflict_do_update(
            index_elements=[self._table.c.metric, self._table.c.labels],
            set_={"value": self._table.c.value + statement.excluded.value},
        )

    def totals(self) -> list[tuple[str, str, int]]:
        """Every durable tally: (metric, labels as stored, value)."""
        table = self._table
        with self._engine.connect() as connection:
            rows = connection.execute(select(table.c.metric, table.c.labels, table.c.value))
            return [(metric, labels, int(value)) for metric, labels, value in rows]

    def start(self) -> None:
        """Flush every `interval` seconds on a thread of its own (once started, further calls do nothing)."""
        with self._lock:
            if self._flusher is not None:
                return
            self._flusher = Periodic(self.flush, self._interval, "dobby-tallies")
        self._flusher.start()

    def stop(self) -> None:
        """Stop the flusher and flush what is left."""
        if self._flusher is not None:
            self._flusher.stop()
        try:
            self.flush()
        except Exception as error:
            LOG.warning("%d refusal counts could not be made durable at shutdown: %s", self.pending, error)
