"""The replays projection at version 3 (SPEC §13, §14): a deployment whose replay rows were written before metric
results carried statistics rebuilds them by itself at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.engine.rules.modes import Mode
from dobby.projections.rebuild import verify
from dobby.projections.views import ReplaysProjection
from tests.support import FAMILIES, catch_up, eventually, make_system, replay_body


@pytest.mark.backends(["sqlite", "postgres"])
def test_replay_rows_of_version_two_are_rebuilt_with_the_statistics(database_url: str, tmp_path: Path) -> None:
    assert ReplaysProjection.version == 3
    with make_system(database_url) as world:
        plain = world.evaluate_replay(replay_body(world.families), actor="tester").body
        metrics = {
            "baseline": {"accuracy": {"successes": 400, "n": 1000}, "latency_ms": {"mean": 120, "sd": 30, "n": 900}},
            "candidate": {"accuracy": {"successes": 460, "n": 1000}, "latency_ms": {"mean": 110, "sd": 30, "n": 900}},
        }
        sampled = world.evaluate_replay(replay_body(FAMILIES, metrics=metrics), actor="tester").body
        catch_up(world.system)
    with make_system(database_url) as world, world.system.store.engine.begin() as connection:
        # as version 2 left them: the same rows without the fields of SPEC §14
        connection.execute(text("UPDATE dobby_projection_versions SET version = 2 WHERE name = 'replays'"))
        connection.execute(text("UPDATE dobby_replays SET view = '{}'"))
    settings = Settings(database_url=database_url, service_mode=Mode.promotion_enabled, bobbin_path=None)
    system = build_system(settings)
    system.start(background=True)
    try:
        assert eventually(lambda: system.store.stored_versions()["replays"] == 3)
        assert not verify(system.store, system.engine.context.uow.log, "replays")
        rebuilt = system.queries.get_replay(sampled["replay_id"])
        assert rebuilt["metric_results"] == sampled["metric_results"]
        assert all(r["interval"] is not None for r in rebuilt["metric_results"])
        old = system.queries.get_replay(plain["replay_id"])
        assert old["metric_results"] == plain["metric_results"]
        assert all(r["estimate"] is None and r["inconclusive"] is False for r in old["metric_results"])
    finally:
        system.close()
