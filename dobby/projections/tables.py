"""Table definitions of every projection. Tables are built per physical name so rebuilds can fill shadows."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text

TRACKING = "dobby_projection_tracking"
WRITE_PROBE = "dobby_write_probe"
VERSIONS = "dobby_projection_versions"
TALLIES = "dobby_tallies"
SHADOW_SUFFIX = "__shadow"


def tracking_table(metadata: MetaData) -> Table:
    return Table(
        TRACKING,
        metadata,
        Column("name", String(100), primary_key=True),
        Column("position", BigInteger, nullable=False),
        Column("last_error", Text, nullable=True),
    )


def versions_table(metadata: MetaData) -> Table:
    """The version of what each projection's live tables hold (SPEC §13). A table of its own rather than a column
    of the tracking table, so a database of a release before versions gains it by `create_all` alone; a tracked
    projection without a row here was written by such a release (version 0, "unversioned")."""
    return Table(
        VERSIONS,
        metadata,
        Column("name", String(100), primary_key=True),
        Column("version", Integer, nullable=False),
    )


def write_probe_table(metadata: MetaData) -> Table:
    """Rows written and deleted again by the persistence probe (SPEC §16): never holds anything for long."""
    return Table(
        WRITE_PROBE,
        metadata,
        Column("probe_id", BigInteger, primary_key=True, autoincrement=False),
        Column("room", LargeBinary, nullable=False),
    )


def _token() -> str:
    return secrets.token_hex(3)


def runs_table(metadata: MetaData, name: str = "dobby_runs") -> Table:
    token = _token()
    return Table(
        name,
        metadata,
        Column("run_id", String(36), primary_key=True),
        Column("seq", BigInteger, nullable=False, unique=True),
        Column("tenant_id", String(200), nullable=False),
        Column("trace_id", String(200), nullable=False),
        Column("outcome", String(32), nullable=False),
        Column("learning_signal", Boolean, nullable=False),
        Column("recorded_at", String(40), nullable=False),
        Column("view", JSON, nullable=False),
        Index(f"ix_{name}_tenant_seq_{token}", "tenant_id", "seq"),
    )


def run_served_table(metadata: MetaData, name: str = "dobby_run_served") -> Table:
    """One row per item of a run's `served` (SPEC §15): the runs list's `live_hash` filter reads it."""
    token = _token()
    return Table(
        name,
        metadata,
        Column("seq", BigInteger, primary_key=True),
        Column("item", Integer, primary_key=True),
        Column("tenant_id", String(200), nullable=False),
        Column("live_hash", String(71), nullable=False),
        Index(f"ix_{name}_hash_seq_{token}", "live_hash", "seq"),
    )


def replays_table(metadata: MetaData, name: str = "dobby_replays") -> Table:
    token = _token()
    return Table(
        name,
        metadata,
        Column("replay_id", String(36), primary_key=True),
        Column("seq", BigInteger, nullable=False, unique=True),
        Column("tenant_id", String(200), nullable=False),
        Column("target_type", String(200), nullable=False),
        Column("target_id", String(200), nullable=False),
        Column("verdict", String(32), nullable=False),
        Column("evaluated_at", String(40), nullable=False),
        Column("view", JSON, nullable=False),
        Index(f"ix_{name}_tenant_seq_{token}", "tenant_id", "seq"),
        Index(f"ix_{name}_target_{token}", "tenant_id", "target_type", "target_id", "seq"),
    )


def proposals_table(metadata: MetaData, name: str = "dobby_proposals") -> Table:
    token = _token()
    return Table(
        name,
        metadata,
        Column("proposal_id", String(36), primary_key=True),
        Column("seq", BigInteger, nullable=False, unique=True),
        Column("tenant_id", String(200), nullable=False),
        Column("target_type", String(200), nullable=False),
        Column("target_id", String(200), nullable=False),
        Column("state", String(32), nullable=False),
        Column("revalidate_required", Boolean, nullable=False),
        Column("expires_at", String(40), nullable=False),
        Column("activated_at", String(40), nullable=True),
        Column("created_at", String(40), nullable=False),
        Column("version", Integer, nullable=False),
        Column("view", JSON, nullable=False),
        Column("fold", JSON, nullable=False),
        Index(f"ix_{name}_tenant_seq_{token}", "tenant_id", "seq"),
        Index(f"ix_{name}_state_seq_{token}", "state", "seq"),
        Index(f"ix_{name}_target_{token}", "tenant_id", "target_type", "target_id", "seq"),
        Index(f"ix_{name}_due_{token}", "state", "expires_at"),
    )


def counters_table(metadata: MetaData, name: str = "dobby_counters") -> Table:
    return Table(
        name,
        metadata,
        Column("metric", String(100), primary_key=True),
        Column("labels", String(400), primary_key=True),
        Column("value", BigInteger, nullable=False),
    )


def encode_labels(labels: Mapping[str, str]) -> str:
    """A counter's labels as they are stored: canonical JSON, so equal label sets are one row."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


def tallies_table(metadata: MetaData) -> Table:
    """Durable tallies of answers that stored nothing. Not derived from the log: never rebuilt or dropped."""
    return Table(
        TALLIES,
        metadata,
        Column("metric", String(100), primary_key=True),
        Column("labels", String(400), primary_key=True),
        Column("value", BigInteger, nullable=False),
    )


def targets_table(metadata: MetaData, name: str = "dobby_targets") -> Table:
    """What each tenant's target runs now (SPEC §4.1): one row per target stream."""
    token = _token()
    return Table(
        name,
        metadata,
        Column("target_key", String(36), primary_key=True),
        Column("tenant_id", String(200), nullable=False),
        Column("target_type", String(200), nullable=False),
        Column("target_id", String(200), nullable=False),
        Column("source", String(16), nullable=False),
        Column("live", JSON, nullable=True),
        Column("active_proposal_id", String(36), nullable=True),
        Column("revalidate_required", Boolean, nullable=False),
        Column("updated_at", String(40), nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_{name}_active_{token}", "active_proposal_id"),
        Index(f"ix_{name}_tenant_{token}", "tenant_id", "target_type", "target_id"),
    )
