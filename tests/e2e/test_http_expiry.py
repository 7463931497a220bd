"""Expiry with a second processor beside the API's: due proposals expire once each, whichever processor acts."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import pytest

from dobby.adapters.fabric import RefreshingGovernanceTruth
from dobby.bootstrap import build_system
from dobby.runtime.system import System
from tests.support import (
    FAMILIES,
    LEARNING,
    AppClient,
    FakeClock,
    catch_up,
    post,
    propose_body,
    race,
    replay_body,
    serve_in_process,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


def test_ttl_and_revalidation_expiries_happen_once_with_two_processors(database_url: str, tmp_path: Path) -> None:
    fabric = tmp_path / "fabric.json"
    document = {
        "capability_class": "adaptive_learning",
        "families": FAMILIES,
        "target_types": ["prompt_template"],
        "no_learn_zones": [],
        "readiness": {"status": "green"},
    }
    fabric.write_text(json.dumps(document))
    clock = FakeClock()
    with (
        serve_in_process(database_url, tmp_path, clock=clock, fabric_file=fabric) as app,
        closing(build_system(app.system.settings, clock=clock)) as second,  # a `dobby process` beside the API
    ):
        processors = [app.system, second]
        client = app.client
        short = post(
            client,
            "/promotions/propose",
            propose_body(post(client, "/replay/evaluate", replay_body(FAMILIES), 201)["replay_id"], ttl_seconds=1),
            201,
        )
        body = replay_body(FAMILIES)
        body["metrics"]["candidate"]["accuracy"] = 0.95
        bound = post(
            client,
            "/promotions/propose",
            propose_body(post(client, "/replay/evaluate", body, 201)["replay_id"]),
            201,
        )
        catch_up(app.system)
        assert tick_both(processors) == [0, 0]  # nothing is due yet
        clock.advance(2)
        assert tick_both(processors) == [0, 1]
        assert state_of(client, short["proposal_id"]) == "expired"
        assert state_of(client, bound["proposal_id"]) == "generated"

        document["families"] = {**FAMILIES, "runtime.traces": "3.0"}
        fabric.write_text(json.dumps(document))
        for processor in processors:
            governance = processor.engine.context.governance
            assert isinstance(governance, RefreshingGovernanceTruth)
            governance.refresh()
        catch_up(app.system)
        assert tick_both(processors) == [0, 2]  # one marks and expires it, the other finds it done
        for proposal in (short, bound):
            assert expiries(client, proposal["proposal_id"]) == 1
        revalidated = client.get(f"{LEARNING}/proposals/{bound['proposal_id']}/history").json()["events"]
        assert [e["type"] for e in revalidated][-2:] == ["RevalidationRequired", "Expired"]


def tick_both(processors: list[System]) -> list[int]:
    """Both expiry processors tick at once: how many proposals each acted on, fewest first."""
    results = race([processor.expiry.tick for processor in processors])
    acted = [result for result in results if not isinstance(result, Exception)]
    assert len(acted) == len(results), results
    return sorted(acted)


def state_of(client: AppClient, proposal_id: str) -> str:
    state: str = client.get(f"{LEARNING}/proposals/{proposal_id}/history").json()["events"][-1]["state_after"]
    return state


def expiries(client: AppClient, proposal_id: str) -> int:
    events = client.get(f"{LEARNING}/proposals/{proposal_id}/history").json()["events"]
    return [event["type"] for event in events].count("Expired")
