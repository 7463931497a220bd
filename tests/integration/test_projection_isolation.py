"""One runner failing on an event stops alone: the other projections and the Bobbin publisher go on, /ready,
/metrics and `dobby projections status` name it, and it catches up by itself once the fault is gone."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Table, text

from dobby.adapters.memory import InMemoryProvenanceSink
from dobby.cli import command as cli
from dobby.engine.kernel.ports import ProvenanceRecord
from dobby.http.app import create_app
from dobby.projections.views import Projection, Recorded
from tests.support import (
    AppClient,
    SystemWorld,
    approved_proposal,
    eventually,
    intake_body,
    make_system,
    passed_replay,
    running_app,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
PROJECTIONS = {"runs", "replays", "proposals", "counters", "targets"}


class Poison:
    """Makes a projection's batches fail with a real database error while they hold one log position."""

    def __init__(self, projection: Projection, position: int) -> None:
        self.original = projection.apply
        self.position = position
        self.active = True

    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        if self.active and any(recorded.position == self.position for recorded in batch):
            connection.execute(text("SELECT poison FROM dobby_no_such_table"))
        self.original(connection, tables, batch)


class BrokenSink(InMemoryProvenanceSink):
    """A provenance sink whose storage refuses writes while `broken` is set."""

    broken: bool = True

    def append(self, record: ProvenanceRecord) -> None:
        if self.broken:
            raise OSError("no space left on the Bobbin volume")
        super().append(record)


@pytest.fixture
def world(database_url: str) -> Iterator[SystemWorld]:
    with make_system(database_url) as built:
        yield built


@pytest.fixture
def client(world: SystemWorld) -> Iterator[AppClient]:
    """The app with its background (projections, Bobbin publisher) started by its own lifespan."""
    with running_app(create_app(world.system, background=True)) as running:
        yield running


def tracked(world: SystemWorld) -> dict[str, int]:
    return {name: runner.position for name, runner in world.system.follower.health(world.engine.position()).items()}


def caught_up(world: SystemWorld, names: set[str]) -> bool:
    head = world.engine.position()
    return all(position == head for name, position in tracked(world).items() if name in names)


def metric_lines(client: AppClient, name: str) -> dict[str, str]:
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(name + "{")]
    return {line.split('"')[1]: line.rsplit(" ", 1)[1] for line in lines}


def projections_status(
    world: SystemWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    """What `dobby projections status` prints, run in this process against the world's database."""
    monkeypatch.setenv("DOBBY_DATABASE_URL", world.system.settings.database_url)
    monkeypatch.setenv("DOBBY_BOBBIN_PATH", "")
    monkeypatch.setenv("DOBBY_WARP_APPROVALS_DIR", str(tmp_path / "approvals"))
    capsys.readouterr()
    assert cli.main(["projections", "status"]) == 0
    return capsys.readouterr().out


def test_a_projection_failing_on_one_event_stops_alone_and_recovers(
    world: SystemWorld,
    client: AppClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = world.engine
    first = approved_proposal(world, 0.90)
    assert eventually(lambda: caught_up(world, {*PROJECTIONS, "bobbin"}))
    replays = world.system.store.projections["replays"]
    poison = Poison(replays, engine.position() + 1)
    monkeypatch.setattr(replays, "apply", poison.apply)
    poisoned = passed_replay(world, 0.91)
    assert poisoned["position"] >= poison.position
    runs = [world.intake(intake_body(world.families, trace_id=f"after-{i}"), actor="s").body for i in range(3)]
    second = approved_proposal(world, 0.92, target={"type": "prompt_template", "id": "farewell"})

    assert eventually(lambda: caught_up(world, {"runs", "proposals", "counters", "bobbin"}))
    assert world.sink.published_ids() == {first["proposal_id"], second["proposal_id"]}
    assert world.system.queries.get_run(runs[-1]["run_id"])["trace_id"] == "after-2"
    assert tracked(world)["replays"] == poison.position - 1
    assert eventually(lambda: world.system.follower.status["replays"].restarts >= 2)  # retried, still failing

    ready = client.get("/ready").json()
    assert ready["status"] == "degraded"
    assert "dobby_no_such_table" in ready["projections"]["replays"]["failing"]
    assert all(ready["projections"][name]["failing"] is None for name in ("runs", "proposals", "counters", "bobbin"))
    assert "projection replays" in ready["detail"]
    assert client.get("/ready", params={"strict": "true"}).status_code == 503
    failing = metric_lines(client, "dobby_projection_failing")
    assert failing["replays"] == "1.0" and failing["runs"] == failing["bobbin"] == "0.0"
    assert float(metric_lines(client, "dobby_projection_restarts_total")["replays"]) >= 2
    status = projections_status(world, tmp_path, monkeypatch, capsys)
    replays_line = next(line for line in status.splitlines() if line.startswith("replays "))
    assert "dobby_no_such_table" in replays_line
    assert "dobby_no_such_table" not in status.replace(replays_line, "")

    poison.active = False
    assert eventually(lambda: caught_up(world, {*PROJECTIONS, "bobbin"}))
    assert world.system.queries.get_replay(poisoned["replay_id"])["verdict"] == "passed"
    ready = client.get("/ready").json()
    assert ready["status"] == "ready", ready["detail"]
    assert all(runner["failing"] is None for runner in ready["projections"].values())
    assert world.system.store.errors()["replays"] is None
    assert metric_lines(client, "dobby_projection_failing")["replays"] == "0.0"


def test_the_bobbin_publisher_failing_stops_alone_and_publishes_once_repaired(database_url: str) -> None:
    sink = BrokenSink()
    with make_system(database_url, sink=sink) as world, running_app(create_app(world.system)) as client:
        proposal = approved_proposal(world)
        runs = [world.intake(intake_body(world.families, trace_id=f"t{i}"), actor="s") for i in range(3)]
        assert eventually(lambda: caught_up(world, PROJECTIONS))
        assert world.system.queries.get_run(runs[-1].body["run_id"])["trace_id"] == "t2"
        assert eventually(lambda: world.system.follower.status["bobbin"].restarts >= 2)
        ready: dict[str, Any] = client.get("/ready").json()
        assert ready["status"] == "degraded"
        assert ready["projections"]["bobbin"]["failing"] == "OSError: no space left on the Bobbin volume"
        assert ready["projections"]["bobbin"]["lag"] > 0
        assert all(ready["projections"][name]["failing"] is None for name in PROJECTIONS)
        assert sink.records == []

        sink.broken = False
        assert eventually(lambda: caught_up(world, {"bobbin"}))
        assert [record.proposal_id for record in sink.records] == [proposal["proposal_id"]]
        # the runner clears its error just after it moves its position: /ready follows within a round
        assert eventually(lambda: client.get("/ready").json()["projections"]["bobbin"]["failing"] is None)
