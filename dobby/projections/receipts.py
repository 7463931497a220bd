"""Promotion receipts served (SPEC §11): derived on request from the proposal's stored events, the replay they
name and the Merkle tree's leaf indices, each sealed in a DSSE envelope signed with the audit key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from dobby.engine.audit.log_reading import stream_positions
from dobby.engine.audit.receipts import ACTIONS, receipt_statements
from dobby.engine.audit.verification import first_broken_version
from dobby.engine.commands.loading import proposal_uuid
from dobby.engine.kernel.errors import not_found
from dobby.engine.model.proposal import Generated
from dobby.engine.store.unit_of_work import UnitOfWork
from dobby.projections.digest import LogDigest

Seal = Callable[[dict[str, Any]], dict[str, Any]]
"""A Statement → its DSSE envelope (bootstrap binds the audit key)."""


@dataclass
class Receipts:
    uow: UnitOfWork
    digest: LogDigest
    seal: Seal

    def statements(self, proposal_id: str) -> list[dict[str, Any]]:
        """Every activation's and rollback's Statement whose event the Merkle tree already holds, in order. Nothing
        stored is vouched for unchecked: only events before the first break of the proposal's chain count, and
        none at all when the replay's own event does not give its hash."""
        pid = proposal_uuid(proposal_id)
        events = self._generated(pid)
        broken = first_broken_version(events)
        if broken is not None:
            events = events[: broken - 1]
        if not events:
            return []
        positions = stream_positions(self.uow.log, pid)
        wanted = [positions.get(e.originator_version, 0) for e in events if e.type_name in ACTIONS]
        indices = self.digest.leaf_indices(wanted)
        replays = self.uow.stream(UUID(events[0].payload["replay_id"]))
        if replays and first_broken_version(replays) is not None:
            return []
        replay = replays[0].payload if replays else None
        return receipt_statements(events, positions, indices.get, replay)

    def envelopes(self, proposal_id: str) -> list[dict[str, Any]]:
        return [self.seal(statement) for statement in self.statements(proposal_id)]

    def _generated(self, pid: UUID) -> list[Any]:
        events = self.uow.stream(pid)
        if not events or not isinstance(events[0], Generated.Event):
            raise not_found("proposal", str(pid))
        return events
