"""Which background roles this process holds (SPEC §10): one instance per role across every process and host.

Each role (a projection, the Bobbin publisher, the expiry processor, the checkpoint signer) is a PostgreSQL
session advisory lock. One connection per process holds the locks of the roles it leads, and a thread of its own
asks for the missing ones and confirms the held ones every second. A session lock lives as long as its session,
so a holder that dies (SIGKILL: the kernel closes its sockets) loses its roles at once, and a holder cut off
from the database loses them when the server's keepalives end its session (about 8 s, `postgres_session`).

The holder must stop first: it acts on a role only while its lease is fresh — the last round trip that
confirmed the session began less than `lease_seconds` (3 s) ago. A cut-off holder's lease runs out whatever its
threads are blocked on, seconds before the server can let another process take the role.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dobby.adapters.postgres_session import session_parameters

LOG = logging.getLogger("dobby.leadership")
LEASE_SECONDS = 3.0
CHECK_SECONDS = 1.0
KEY_PREFIX = "dobby.role."

EXPIRY = "expiry"
CHECKPOINTS = "checkpoints"


def role_key(role: str) -> str:
    """The text whose `hashtext` is the role's advisory lock key."""
    return KEY_PREFIX + role


def process_identity() -> str:
    """How this process names itself to operators: `dobby <host>:<pid>` (its leadership session's
    application_name, so any process can tell who holds which role)."""
    return f"dobby {socket.gethostname()[:40]}:{os.getpid()}"


# A session advisory lock on a bigint key shows in pg_locks as classid (high 32 bits) and objid (low 32 bits).
HOLDERS = """
SELECT r.role, COALESCE(NULLIF(a.application_name, ''), 'backend pid ' || l.pid)
FROM unnest(%s::text[]) AS r(role)
JOIN pg_locks AS l
  ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
 AND l.classid = ((hashtext(%s || r.role)::bigint >> 32) & 4294967295)::oid
 AND l.objid = (hashtext(%s || r.role)::bigint & 4294967295)::oid
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
"""


@dataclass
class Leadership:
    """The roles this process leads. Without a PostgreSQL URL (SQLite, memory: one process per database) it
    leads every role; `leading()` then answers None, meaning all."""

    roles: Sequence[str]
    url: str | None
    lease_seconds: float = LEASE_SECONDS
    check_seconds: float = CHECK_SECONDS
    connect_timeout: float = 2.0
    _held: set[str] = field(default_factory=set)
    _given_up: set[str] = field(default_factory=set)
    _to_release: set[str] = field(default_factory=set)
    _confirmed_at: float = float("-inf")
    _lapsed_logged: bool = True
    _connection: psycopg.Connection[Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread that takes and confirms roles (once; later calls do nothing)."""
        if self.url is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dobby-leadership", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop acting at once, then give the roles back (unlock and close the session)."""
        self._stop.set()
        with self._lock:
            self._confirmed_at = float("-inf")
            self._held.clear()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._close()

    def leading(self) -> set[str] | None:
        """The roles this process may act on now (None: every role); empty once the lease has run out."""
        if self.url is None:
            return None
        with self._lock:
            if time.monotonic() - self._confirmed_at <= self.lease_seconds:
                return set(self._held)
            if self._held and not self._lapsed_logged:
                self._lapsed_logged = True
                ended = time.time() - (time.monotonic() - self._confirmed_at - self.lease_seconds)
                LOG.warning(
                    "leadership lease ended at %.3f (no answer from the database for %.0f s): stopped acting as %s",
                    ended,
                    self.lease_seconds,
                    ", ".join(sorted(self._held)),
                )
            return set()

    def holders(self) -> dict[str, str | None]:
        """Which process holds each role now, by its identity (None: nobody), as the database sees it; without
        PostgreSQL, this process (one process per database runs every role)."""
        if self.url is None:
            return dict.fromkeys(self.roles, process_identity())
        found: dict[str, str | None] = dict.fromkeys(self.roles)
        with psycopg.connect(self.url, autocommit=True, **session_parameters(self.connect_timeout)) as connection:
            rows = connection.execute(HOLDERS, (list(self.roles), KEY_PREFIX, KEY_PREFIX)).fetchall()
        found.update({str(role): str(holder) for role, holder in rows})
        return found

    def leads(self, role: str) -> bool:
        held = self.leading()
        return held is None or role in held

    def give_up(self, role: str) -> None:
        """Stop acting as `role` now and never ask for it again in this process (its code is older than what the
        role's tables hold, SPEC §13); the lock itself is released on the next round, so another process takes it."""
        with self._lock:
            if role in self._given_up:
                return
            self._given_up.add(role)
            if role in self._held:
                self._held.discard(role)
                self._to_release.add(role)
        LOG.warning("giving up the role %s: its stored version is newer than this process's code", role)

    def check(self) -> set[str]:
        """One round: ask for the roles not held, confirm the held ones (one round trip). Returns those held."""
        assert self.url is not None
        began = time.monotonic()
        if self._connection is None:
            self._connection = psycopg.connect(
                self.url,
                autocommit=True,
                application_name=process_identity(),
                **session_parameters(self.connect_timeout),
            )
        with self._lock:
            missing = [role for role in self.roles if role not in self._held and role not in self._given_up]
            released, self._to_release = sorted(self._to_release), set()
        if released:
            self._connection.execute(
                "SELECT pg_advisory_unlock(hashtext(%s || role)) FROM unnest(%s::text[]) AS role",
                (KEY_PREFIX, released),
            )
        if missing:
            rows = self._connection.execute(
                "SELECT role FROM unnest(%s::text[]) AS role WHERE pg_try_advisory_lock(hashtext(%s || role))",
                (missing, KEY_PREFIX),
            ).fetchall()
            gained = {str(row[0]) for row in rows}
        else:
            self._connection.execute("SELECT 1")
            gained = set()
        with self._lock:
            self._to_release |= gained & self._given_up  # given up while the lock was being taken
            self._held |= gained - self._given_up
            self._confirmed_at = began
            self._lapsed_logged = False
            held = set(self._held)
        if gained:
            LOG.info("now leading %s", ", ".join(sorted(gained)))
        return held

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as error:  # the session is gone or cannot be had: hold nothing until it answers again
                self._lose(error)
            self._stop.wait(self.check_seconds)

    def _lose(self, error: Exception) -> None:
        with self._lock:
            lost, self._held = self._held, set()
            self._to_release.clear()  # closing the session releases every lock it held
            self._confirmed_at = float("-inf")
            self._lapsed_logged = True
        if lost:
            LOG.warning("lost leadership of %s: %s", ", ".join(sorted(lost)), str(error).strip() or type(error))
        self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # ending the session releases its locks; no unlock to wait on
                connection.close()
