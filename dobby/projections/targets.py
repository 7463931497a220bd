"""The live target read of SPEC §4.1 as a projection: what a runtime should run now on each tenant's target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, MetaData, Table, insert, update

from dobby.engine.kernel.clock import rfc3339
from dobby.engine.model.proposal import RevalidationRequired
from dobby.engine.model.target import BaselineRestored, ProposalWentLive, TargetOpened
from dobby.projections.tables import targets_table
from dobby.projections.views import Projection, Recorded


class TargetsProjection(Projection):
    """A target's row changes when what it runs changes: a proposal went live, a rollback restored the baseline,
    or the active proposal was flagged revalidate_required. `position` and `updated_at` are that change's."""

    name = "targets"
    version = 2
    """2: indexed by tenant, type and id, so OFREP's bulk evaluation reads one tenant's targets, not all (SPEC §15)."""

    def tables(self, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return {"targets": targets_table(metadata, "dobby_targets" + suffix)}

    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        table = tables["targets"]
        for recorded in batch:
            event = recorded.event
            stamp = {"updated_at": rfc3339(event.timestamp), "position": recorded.position}
            if isinstance(event, TargetOpened.Event):
                target = event.payload["target"]
                row = {
                    "target_key": str(event.originator_id),
                    "tenant_id": event.payload["tenant_id"],
                    "target_type": target["type"],
                    "target_id": target["id"],
                    **_live("none", None, None),
                    **stamp,
                }
                connection.execute(insert(table).values(row))
            elif isinstance(event, (ProposalWentLive.Event, BaselineRestored.Event)):
                if isinstance(event, ProposalWentLive.Event):
                    values = _live("proposal", event.payload["change"], event.payload["proposal_id"])
                else:
                    values = _live("baseline", event.payload["baseline"], None)
                key = str(event.originator_id)
                connection.execute(update(table).where(table.c.target_key == key).values(**values, **stamp))
            elif isinstance(event, RevalidationRequired.Event):
                active = table.c.active_proposal_id == str(event.originator_id)
                connection.execute(update(table).where(active).values(revalidate_required=True, **stamp))


def _live(source: str, live: Any, active_proposal_id: str | None) -> dict[str, Any]:
    return {"source": source, "live": live, "active_proposal_id": active_proposal_id, "revalidate_required": False}
