"""What every command that only reads a store checks first: that the store exists (SPEC §7)."""

from __future__ import annotations

import os

from dobby.adapters.settings import load_settings, missing_store


class MissingStoreError(Exception):
    """A read-only command pointed at a SQLite file that does not exist: refused in one line, exit 2."""


def require_store() -> None:
    """Refuse, creating nothing, when DOBBY_DATABASE_URL names a SQLite file that does not exist."""
    settings = load_settings(os.environ)
    path = missing_store(settings)
    if path is not None:
        raise MissingStoreError(
            f"no database at {path} (DOBBY_DATABASE_URL={settings.database_url}); nothing to read — "
            "point DOBBY_DATABASE_URL at an existing store, or make one with `dobby db init`"
        )
