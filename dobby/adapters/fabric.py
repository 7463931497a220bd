"""Fabric as governance truth: the built-in aligned document, or a JSON file (SPEC §5)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dobby.engine.kernel.ports import GovernanceDocument, UpstreamUnavailableError
from dobby.engine.rules.modes import Manifest

BUILTIN_TARGET_TYPES = ("prompt_template", "routing_rule", "retrieval_config", "tool_policy")


def builtin_document(manifest: Manifest) -> GovernanceDocument:
    """A document aligned with the manifest, for local use when no Fabric is configured."""
    return GovernanceDocument(
        capability_class=manifest.capability_class,
        families=dict(manifest.families),
        target_types=BUILTIN_TARGET_TYPES,
        no_learn_zones=(),
        readiness="green",
    )


def parse_document(data: Any) -> GovernanceDocument:
    """The file form of SPEC §5; anything else raises UpstreamUnavailableError (fail closed)."""
    try:
        families = data["families"]
        readiness = data["readiness"]["status"]
        if readiness not in ("green", "amber", "red"):
            raise ValueError(f"unknown readiness {readiness!r}")
        document = GovernanceDocument(
            capability_class=_text(data["capability_class"]),
            families={_text(k): _text(v) for k, v in families.items()},
            target_types=tuple(_text(t) for t in data["target_types"]),
            no_learn_zones=tuple(_text(p) for p in data.get("no_learn_zones", [])),
            readiness=readiness,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise UpstreamUnavailableError(f"unusable Fabric document: {error!r}") from error
    return document


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


class RefreshingGovernanceTruth:
    """Keeps the last good document from `fetch`, refreshed at most every `refresh_seconds`."""

    def __init__(
        self,
        fetch: Callable[[], GovernanceDocument],
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._document: GovernanceDocument | None = None
        self._reachable = False
        self._checked_at: float | None = None
        self.checked_at: datetime | None = None
        self.last_error: str | None = None
        self._background = False

    def refresh(self) -> None:
        try:
            document = self._fetch()
        except UpstreamUnavailableError as error:
            with self._lock:
                self._reachable, self.last_error = False, str(error)
        else:
            with self._lock:
                self._document, self._reachable, self.last_error = document, True, None
        self._checked_at = self._clock()
        self.checked_at = datetime.now(UTC)

    def refresh_in_background(self) -> None:
        """From now on a background task calls refresh(); reads only fetch when nothing was ever fetched."""
        self._background = True

    def _refresh_if_due(self) -> None:
        if self._background and self._checked_at is not None:
            return
        checked = self._checked_at
        if checked is None or self._clock() - checked >= self._refresh_seconds:
            self.refresh()

    def current(self) -> GovernanceDocument:
        self._refresh_if_due()
        document = self._document
        if document is None:
            raise UpstreamUnavailableError(self.last_error or "Fabric has not answered yet")
        return document

    def is_reachable(self) -> bool:
        self._refresh_if_due()
        return self._reachable


def file_fetcher(path: Path) -> Callable[[], GovernanceDocument]:
    def fetch() -> GovernanceDocument:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UpstreamUnavailableError(f"cannot read Fabric file {path}: {error}") from error
        return parse_document(data)

    return fetch
