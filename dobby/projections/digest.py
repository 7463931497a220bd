"""The log digest (SPEC §11): signed checkpoints of the Merkle projection's tree, kept as history (never rebuilt),
and the inclusion and consistency proofs served against them."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, Text, insert, select, text, update

from dobby.engine.audit import merkle
from dobby.engine.audit.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    ConsistencyProof,
    InclusionProof,
    PublicKey,
    key_id_of,
    make_checkpoint,
    public_key_view,
)
from dobby.engine.audit.log_reading import read_entries
from dobby.engine.audit.verification import Seen
from dobby.engine.kernel.clock import Clock
from dobby.engine.kernel.errors import InvalidInputError, NotFoundError, RuleViolationError, Violation
from dobby.engine.store.unit_of_work import EventLog
from dobby.projections.merkle_tree import computed, tree_size

CHECKPOINTS = "dobby_audit_checkpoints"
CHECKPOINT_SECONDS = 5.0
"""How often the signer looks (SPEC §11: a checkpoint at least every 10 s while the log grows)."""
ON_DEMAND_SECONDS = 1.0
"""A checkpoint asked for over HTTP is at most this old when the tree has grown since."""


def checkpoints_table(metadata: MetaData) -> Table:
    """Signed checkpoints: history, not derived from the log alone (times, signatures); never rebuilt or dropped."""
    return Table(
        CHECKPOINTS,
        metadata,
        Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
        Column("root", String(64), nullable=False),
        Column("signed_at", String(40), nullable=False),
        Column("key_id", String(16), nullable=True),
        Column("signature", Text, nullable=True),
    )


class DigestForkError(RuntimeError):
    """The stored tree no longer extends the last checkpoint: the log (and the tree) were rewritten."""


@dataclass
class LogDigest:
    """Checkpoints of the Merkle projection, signed when a key is configured, and proofs against them."""

    engine: Any
    """The SQLAlchemy engine of the projection store."""
    writer: Any
    tables: dict[str, Table]
    checkpoints: Table
    log: EventLog
    clock: Clock
    signer: CheckpointSigner | None = None
    _refreshed_at: float = float("-inf")

    @property
    def is_postgres(self) -> bool:
        return bool(self.engine.dialect.name == "postgresql")

    def public_key(self) -> PublicKey:
        if self.signer is None:
            raise NotFoundError("no signing key is configured (DOBBY_AUDIT_SIGNING_KEY): checkpoints are unsigned")
        return public_key_view(self.signer)

    def latest(self) -> Checkpoint | None:
        with self.engine.connect() as connection:
            return self._latest(connection)

    def _latest(self, connection: Connection) -> Checkpoint | None:
        table = self.checkpoints
        row = connection.execute(select(table).order_by(table.c.tree_size.desc()).limit(1)).mappings().first()
        return None if row is None else Checkpoint(**dict(row))

    def tick(self) -> Checkpoint | None:
        """The signer's round: a new checkpoint when the tree grew since the last one."""
        return self.refresh()

    def current(self) -> Checkpoint:
        """The latest checkpoint; a new one first when the tree grew and the latest is older than a second here."""
        if time.monotonic() - self._refreshed_at >= ON_DEMAND_SECONDS:
            fresh = self.refresh()
            if fresh is not None:
                return fresh
        latest = self.latest()
        return latest if latest is not None else self._refresh_now()

    def _refresh_now(self) -> Checkpoint:
        fresh = self.refresh()
        latest = fresh or self.latest()
        if latest is None:  # another signer holds the lock: it is writing the first checkpoint now
            raise NotFoundError("no checkpoint is stored yet; ask again in a moment")
        return latest

    def fresh(self, timeout: float = 10.0) -> Checkpoint:
        """A checkpoint of the whole tree as it is now, signed by the configured key when there is one; waits (up to
        `timeout`) while another process is signing."""
        deadline = time.monotonic() + timeout
        while True:
            checkpoint = self.refresh()
            if checkpoint is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return checkpoint if checkpoint is not None else self.current()

    @property
    def key_id(self) -> str | None:
        return None if self.signer is None else key_id_of(self.signer.public_key)

    def refresh(self) -> Checkpoint | None:
        """Store (and sign) a checkpoint of the tree as it is, unless it has not grown and the newest is already
        signed by the configured key (SPEC §11: a new key signs at once, not when the log next grows); None when
        another process is signing at this moment. Refuses to sign a tree that does not extend the last
        checkpoint."""
        self._refreshed_at = time.monotonic()
        with self.writer.begin() as connection:
            if self.is_postgres:
                locked = connection.execute(text("SELECT pg_try_advisory_xact_lock(hashtext('dobby.checkpoints'))"))
                if not locked.scalar():
                    return None
            latest = self._latest(connection)
            size = tree_size(connection, self.tables)
            resign = latest is not None and self.signer is not None and latest.key_id != self.key_id
            if latest is not None and size <= latest.tree_size and not resign:
                return latest
            if latest is not None and latest.tree_size > 0:
                then = computed(connection, self.tables, lambda nodes: merkle.root(latest.tree_size, nodes))
                if then.hex() != latest.root:
                    raise DigestForkError(
                        f"the Merkle tree's first {latest.tree_size} leaves have root {then.hex()}, but checkpoint "
                        f"{latest.tree_size} signed {latest.root}: the log was rewritten; not signing"
                    )
            root = computed(connection, self.tables, lambda nodes: merkle.root(size, nodes))
            checkpoint = make_checkpoint(size, root, self.clock(), self.signer)
            if latest is not None and latest.tree_size == size:  # the same tree, signed anew by the configured key
                table = self.checkpoints
                connection.execute(update(table).where(table.c.tree_size == size).values(**_columns(checkpoint)))
            else:
                connection.execute(insert(self.checkpoints).values(**_columns(checkpoint)))
            return checkpoint

    def inclusion(self, position: int, size: int | None) -> InclusionProof:
        """The proof that the event at log `position` is in the tree of `size` events. An event's leaf is its rank
        (how many events come before it), never position − 1: a log written by an earlier build may have empty
        positions (SPEC §11, §13), so sizes are judged against ranks — position 99 of a log with one hole is the
        98th event, in the tree of 98."""
        checkpoint = self.current()
        size = _within(checkpoint, size, "tree_size")
        if position < 1:
            raise InvalidInputError(
                "position must be ≥ 1", [Violation("out_of_range", "position must be ≥ 1", "position")]
            )
        leaves = self.tables["leaves"]
        with self.engine.connect() as connection:
            row = connection.execute(select(leaves).where(leaves.c.position == position)).mappings().first()
            if row is None:
                raise _beyond("position", f"position {position} holds no event in the log's digest")
            if row["leaf_index"] >= size:
                raise _beyond(
                    "position",
                    f"the event at position {position} is leaf {row['leaf_index']}, not in a tree of {size} events",
                )
            index = int(row["leaf_index"])
            proof, root = computed(
                connection,
                self.tables,
                lambda nodes: (merkle.inclusion_proof(index, size, nodes), merkle.root(size, nodes)),
            )
        entry = next(read_entries(self.log, position - 1, position), None)
        event_hash = entry.event.event_hash if entry is not None and entry.event is not None else ""
        return InclusionProof(
            position=position,
            tree_size=size,
            event_hash=event_hash,
            leaf_hash=bytes(row["leaf_hash"]).hex(),
            proof=[node.hex() for node in proof],
            root=root.hex(),
            leaf_index=index,
        )

    def consistency(self, first: int, second: int | None) -> ConsistencyProof:
        checkpoint = self.current()
        second = _within(checkpoint, second, "second")
        if not 1 <= first <= second:
            raise _beyond("first", f"first must be in 1..{second} (the second tree's size)")
        with self.engine.connect() as connection:
            proof, first_root, second_root = computed(
                connection,
                self.tables,
                lambda nodes: (
                    merkle.consistency_proof(first, second, nodes),
                    merkle.root(first, nodes),
                    merkle.root(second, nodes),
                ),
            )
        return ConsistencyProof(first, second, [node.hex() for node in proof], first_root.hex(), second_root.hex())

    def leaf_indices(self, positions: Iterable[int]) -> dict[int, int]:
        """Log position → leaf index (its rank in the log), for the positions the tree already holds."""
        wanted = sorted(set(positions))
        if not wanted:
            return {}
        leaves = self.tables["leaves"]
        statement = select(leaves.c.position, leaves.c.leaf_index).where(leaves.c.position.in_(wanted))
        with self.engine.connect() as connection:
            return {int(position): int(index) for position, index in connection.execute(statement)}

    def seen(self, batch: int = 5000) -> Iterator[Seen]:
        """Where the tree saw each event (position, stream, version), in log order."""
        leaves = self.tables["leaves"]
        after = 0
        while True:
            statement = (
                select(leaves.c.position, leaves.c.stream_id, leaves.c.version)
                .where(leaves.c.position > after)
                .order_by(leaves.c.position)
                .limit(batch)
            )
            with self.engine.connect() as connection:
                rows = connection.execute(statement).all()
            yield from (Seen(int(position), stream, int(version)) for position, stream, version in rows)
            if len(rows) < batch:
                return
            after = int(rows[-1][0])


def _columns(checkpoint: Checkpoint) -> dict[str, Any]:
    return {name: getattr(checkpoint, name) for name in checkpoint.__struct_fields__}


def _within(checkpoint: Checkpoint, size: int | None, name: str) -> int:
    if size is None:
        return checkpoint.tree_size
    if size > checkpoint.tree_size:
        raise _beyond(name, f"{name} {size} is beyond the latest checkpoint's tree ({checkpoint.tree_size} events)")
    if size < 1:
        raise InvalidInputError(f"{name} must be ≥ 1", [Violation("out_of_range", f"{name} must be ≥ 1", name)])
    return size


def _beyond(name: str, message: str) -> RuleViolationError:
    return RuleViolationError([Violation("beyond_checkpoint", message, name)])
