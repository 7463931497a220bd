"""Bobbin's provenance sink: one JSON line per approved proposal, appended and fsynced (SPEC §5)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from dobby.engine.kernel.canonical import canonical_json
from dobby.engine.kernel.ports import ProvenanceRecord


class BobbinProvenanceSink:
    """Appends are idempotent per proposal across every process that shares the file (SPEC §5, §10): each append
    holds the file's exclusive lock while it reads what other writers appended since its last look, and writes
    only a proposal the file does not hold yet. A torn last line (a writer that died mid-write; writers hold the
    lock while they write) is cut off before the next append."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._published: set[str] = set()
        self._scanned = 0
        """Bytes of the file already read into `_published`."""
        self._identity: tuple[int, int] | None = None

    def published_ids(self) -> set[str]:
        with self._lock, self._locked() as sink:
            self._catch_up(sink)
            return set(self._published)

    def append(self, record: ProvenanceRecord) -> None:
        with self._lock, self._locked() as sink:
            self._catch_up(sink)
            if record.proposal_id in self._published:
                return
            line = canonical_json(record.as_line()) + b"\n"
            sink.write(line)
            sink.flush()
            os.fsync(sink.fileno())
            self._scanned += len(line)
            self._published.add(record.proposal_id)

    @contextmanager
    def _locked(self) -> Iterator[BinaryIO]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as sink:
            fcntl.flock(sink, fcntl.LOCK_EX)
            try:
                yield sink
            finally:
                fcntl.flock(sink, fcntl.LOCK_UN)

    def _catch_up(self, sink: BinaryIO) -> None:
        """Read the lines appended since the last look (all of them when the file was replaced or shortened)."""
        stat = os.fstat(sink.fileno())
        identity = (stat.st_dev, stat.st_ino)
        if identity != self._identity or stat.st_size < self._scanned:
            self._published, self._scanned, self._identity = set(), 0, identity
        sink.seek(self._scanned)
        data = sink.read()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            sink.truncate(self._scanned + len(complete))
            os.fsync(sink.fileno())
        for line in complete.splitlines():
            if line.strip():
                self._published.add(json.loads(line)["proposal_id"])
        self._scanned += len(complete)
