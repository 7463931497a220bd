"""Storage set-up: several processes creating the tables at once (workers starting together) all succeed."""

from __future__ import annotations

import pytest

from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from tests.support import race


@pytest.mark.backends(["sqlite", "postgres"])
def test_four_systems_creating_the_tables_at_once_all_succeed(database_url: str) -> None:
    systems = [build_system(Settings(database_url=database_url, bobbin_path=None)) for _ in range(4)]
    try:
        outcomes = race([system.init_storage for system in systems])
        assert outcomes == [None] * 4, outcomes
        assert all(system.engine.position() == 0 for system in systems)
        assert set(systems[0].store.positions()) == {"runs", "replays", "proposals", "counters", "targets", "merkle"}
    finally:
        for system in systems:
            system.close()
