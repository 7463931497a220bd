"""The Merkle projection (SPEC §11): the RFC 6962 tree over every event's hash in log order, stored as its leaves and
the perfect subtrees they complete, kept like every projection (tracked, rebuildable, verified)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    func,
    or_,
    select,
)

from dobby.engine.audit import merkle
from dobby.projections.database import copy_rows
from dobby.projections.views import Projection, Recorded

MERKLE = "merkle"


def merkle_tables(metadata: MetaData, suffix: str = "") -> dict[str, Table]:
    leaves = Table(
        "dobby_merkle_leaves" + suffix,
        metadata,
        Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
        Column("position", BigInteger, nullable=False, unique=True),
        Column("stream_id", String(64), nullable=False),
        Column("version", Integer, nullable=False),
        Column("leaf_hash", LargeBinary(32), nullable=False),
    )
    nodes = Table(
        "dobby_merkle_nodes" + suffix,
        metadata,
        Column("level", Integer, primary_key=True, autoincrement=False),
        Column("node_index", BigInteger, primary_key=True, autoincrement=False),
        Column("hash", LargeBinary(32), nullable=False),
    )
    return {"leaves": leaves, "nodes": nodes}


def tree_size(connection: Connection, tables: dict[str, Table]) -> int:
    leaves = tables["leaves"]
    last = connection.execute(select(func.max(leaves.c.leaf_index))).scalar()
    return 0 if last is None else int(last) + 1


def fetch_nodes(connection: Connection, tables: dict[str, Table], ids: Iterable[tuple[int, int]]) -> merkle.Nodes:
    """The stored perfect subtrees `ids`, fetched in (at most) two queries, as a Nodes function."""
    wanted = set(ids)
    found: dict[tuple[int, int], bytes] = {}
    leaves, nodes = tables["leaves"], tables["nodes"]
    at_leaves = sorted(index for level, index in wanted if level == 0)
    if at_leaves:
        rows = connection.execute(
            select(leaves.c.leaf_index, leaves.c.leaf_hash).where(leaves.c.leaf_index.in_(at_leaves))
        )
        found.update({(0, int(index)): bytes(value) for index, value in rows})
    above = sorted((level, index) for level, index in wanted if level > 0)
    if above:
        condition = or_(*(and_(nodes.c.level == level, nodes.c.node_index == index) for level, index in above))
        rows = connection.execute(select(nodes.c.level, nodes.c.node_index, nodes.c.hash).where(condition))
        found.update({(int(level), int(index)): bytes(value) for level, index, value in rows})
    missing = wanted - set(found)
    if missing:
        raise LookupError(f"the Merkle tree lacks nodes {sorted(missing)[:5]}")
    return lambda level, index: found[(level, index)]


def computed(connection: Connection, tables: dict[str, Table], compute: Callable[[merkle.Nodes], Any]) -> Any:
    """`compute` over the stored tree, with every node it needs fetched at once."""
    return compute(fetch_nodes(connection, tables, merkle.needed(compute)))


class MerkleProjection(Projection):
    """Appends each event's leaf and the perfect subtrees it completes; ignores no event."""

    name = MERKLE
    version = 1

    def tables(self, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        return merkle_tables(metadata, suffix)

    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        if not batch:
            return
        size = tree_size(connection, tables)
        nodes = fetch_nodes(connection, tables, merkle.frontier_ids(size))
        frontier = {level: nodes(level, index) for level, index in merkle.frontier_ids(size)}
        leaf_rows, node_rows = [], []
        for recorded in batch:
            event = recorded.event
            leaf = merkle.event_leaf(event.event_hash)
            leaf_rows.append(
                {
                    "leaf_index": size,
                    "position": recorded.position,
                    "stream_id": str(event.originator_id),
                    "version": event.originator_version,
                    "leaf_hash": leaf,
                }
            )
            completed = merkle.append(size, frontier, leaf)
            node_rows += [{"level": level, "node_index": index, "hash": value} for level, index, value in completed]
            size += 1
        copy_rows(connection, tables["leaves"], leaf_rows)
        if node_rows:
            copy_rows(connection, tables["nodes"], node_rows)
