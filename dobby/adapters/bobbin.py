"""Bobbin's provenance sink: one JSON line per approved proposal, appended and fsynced (SPEC §5)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

from dobby.engine.canonical import canonical_json
from dobby.engine.ports import ProvenanceRecord


class BobbinProvenanceSink:
    """Appends are idempotent per proposal: a proposal already in the file is never written twice, and a torn
    last line left by a crash is cut off before the next append."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._published: set[str] | None = None

    def published_ids(self) -> set[str]:
        with self._lock:
            return set(self._load())

    def append(self, record: ProvenanceRecord) -> None:
        with self._lock:
            published = self._load()
            if record.proposal_id in published:
                return
            line = canonical_json(record.as_line()) + b"\n"
            with self.path.open("ab") as sink:
                fcntl.flock(sink, fcntl.LOCK_EX)
                try:
                    sink.write(line)
                    sink.flush()
                    os.fsync(sink.fileno())
                finally:
                    fcntl.flock(sink, fcntl.LOCK_UN)
            published.add(record.proposal_id)

    def _load(self) -> set[str]:
        if self._published is None:
            self._published = self._scan()
        return self._published

    def _scan(self) -> set[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with self.path.open("r+b") as sink:
                sink.truncate(len(complete))
                os.fsync(sink.fileno())
        published = set()
        for line in complete.splitlines():
            if line.strip():
                published.add(json.loads(line)["proposal_id"])
        return published
