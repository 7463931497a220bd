"""What the HTTP app needs from the process it runs in: a small protocol that bootstrap's System fulfils."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from dobby.engine.service import Engine
from dobby.projections.digest import LogDigest
from dobby.projections.queries import Queries
from dobby.projections.receipts import Receipts


class AppServices(Protocol):
    engine: Engine
    queries: Queries
    digest: LogDigest
    receipts: Receipts

    @property
    def tokens_file(self) -> Path | None: ...

    @property
    def db_timeout_seconds(self) -> float: ...

    @property
    def body_timeout_seconds(self) -> float:
        """DOBBY_BODY_TIMEOUT_SECONDS: a request's header block and body must each arrive within it (SPEC §16)."""

    @property
    def max_in_flight(self) -> int:
        """DOBBY_MAX_IN_FLIGHT: /api/v1 requests in flight per process (their bodies arrived) before 503s."""

    @property
    def console_secret(self) -> str | None:
        """DOBBY_CONSOLE_SECRET: signs console sessions; the console needs it when tokens are configured."""

    def start(self, *, background: bool, when_ready: Callable[[], object] | None = None) -> None:
        """Without waiting for the database: Fabric refreshing; storage set up (and with `background` the
        projections and processors running) as soon as the database answers, then `when_ready` called."""

    def close(self) -> None: ...

    def probe_persistence(self) -> None:
        """Touch the event store and the projection tables; raises when either cannot answer."""

    def probe_write(self) -> None:
        """Write (and delete) a probe row that needs new room; raises when the store refuses writes."""

    def projection_positions(self) -> dict[str, int]: ...

    def projection_health(self) -> dict[str, dict[str, Any]]:
        """Every runner (projections, the Bobbin publisher): {"position", "lag", "failing"}."""

    def queue_depth(self) -> int: ...

    def committer_pending(self) -> int: ...

    def fabric_checked_at(self) -> Any: ...

    def gauges(self) -> dict[str, Any]: ...

    def counters(self) -> list[tuple[str, str, int]]: ...
