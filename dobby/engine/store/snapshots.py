"""Snapshots of the long-lived streams (Ledger, Target), so loading them stays cheap however long they grow.

A snapshot holds the aggregate's attributes; its state dataclass is stored as a plain object and rebuilt with
its tuples, so a stream loaded from a snapshot equals one folded from every event.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from dobby.engine.model.ledger import LedgerState
from dobby.engine.model.target import TargetState

SNAPSHOT_INTERVAL = 100


class _StateAsDict(Transcoding):
    state_class: type[Any]
    tuple_fields: tuple[str, ...] = ()

    def encode(self, obj: Any) -> dict[str, Any]:
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        restored = {name: tuple(data[name]) if name in self.tuple_fields else data[name] for name in data}
        return self.state_class(**restored)


class LedgerStateAsDict(_StateAsDict):
    type = LedgerState
    name = "dobby_ledger_state"
    state_class = LedgerState
    tuple_fields = ("spends",)


class TargetStateAsDict(_StateAsDict):
    type = TargetState
    name = "dobby_target_state"
    state_class = TargetState
    tuple_fields = ("in_play",)


def register_state_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(LedgerStateAsDict())
    transcoder.register(TargetStateAsDict())


def crossed_interval(before: int, after: int, interval: int = SNAPSHOT_INTERVAL) -> int | None:
    """The highest multiple of `interval` in (before, after], if a save moved a stream across one."""
    mark = after - after % interval
    return mark if mark > before else None
