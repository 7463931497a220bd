"""The libpq parameters of every PostgreSQL session dobby opens: a bounded connect, and TCP keepalives both ways.

A host that is cut off from the database must lose its sessions (and with them its advisory locks, its row locks
and its share of `max_connections`) within seconds, not after the kernel's two-hour keepalive default or the
fifteen minutes of retransmissions (SPEC §10: another process takes a role over within 15 s). The server side is
set per session (the `tcp_*` settings are user-settable), so no server configuration is needed; the client side
lets a process notice first, so a role holder stops before the server can hand its role to another
(`dobby.runtime.leadership`).
"""

from __future__ import annotations

from typing import Any

CLIENT_KEEPALIVES: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 4000,  # ms: data unacknowledged this long ends the connection
}
"""This side gives up on a silent server after about 4 s."""

SERVER_KEEPALIVES: dict[str, int] = {
    "tcp_keepalives_idle": 4,
    "tcp_keepalives_interval": 1,
    "tcp_keepalives_count": 4,
    "tcp_user_timeout": 8000,
}
"""The server ends the session of a silent client after about 8 s: later than the client gives up and than a
leadership lease lasts (3 s), sooner than the 15 s a takeover may take."""


def server_options() -> str:
    """The keepalive settings as a libpq `options` value (`-c name=value …`)."""
    return " ".join(f"-c {name}={value}" for name, value in SERVER_KEEPALIVES.items())


def session_parameters(connect_timeout: float, options: str = "") -> dict[str, Any]:
    """Keyword arguments for `psycopg.connect` (or a pool's `kwargs`): connect timeout, keepalives both ways."""
    return {
        "connect_timeout": max(1, round(connect_timeout)),
        **CLIENT_KEEPALIVES,
        "options": f"{options} {server_options()}".strip(),
    }
