"""Expiry with a second processor running beside the API: due proposals expire within an interval, once each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ROOT, serve
from tests.e2e.test_http_lifecycle import FAMILIES, LEARNING, post
from tests.support import eventually, propose_body, replay_body

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
INTERVAL = 0.3


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
    settings = {
        "DOBBY_PROCESSOR_INTERVAL_SECONDS": str(INTERVAL),
        "DOBBY_FABRIC_FILE": str(fabric),
        "DOBBY_FABRIC_REFRESH_SECONDS": "0.2",
    }
    with serve(database_url, tmp_path, **settings) as server, server.client() as client:
        env = {**os.environ, "DOBBY_DATABASE_URL": database_url, "DOBBY_BOBBIN_PATH": str(server.bobbin), **settings}
        second = subprocess.Popen(
            [sys.executable, "-m", "dobby.cli", "process"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
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
            wait_for_state(client, short["proposal_id"], "expired", 10)
            document["families"] = {**FAMILIES, "runtime.traces": "3.0"}
            fabric.write_text(json.dumps(document))
            wait_for_state(client, bound["proposal_id"], "expired", 10)
            for proposal in (short, bound):
                events = client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}/history").json()["events"]
                assert [e["type"] for e in events].count("Expired") == 1
            revalidated = client.get(f"{LEARNING}/proposals/{bound['proposal_id']}/history").json()["events"]
            assert [e["type"] for e in revalidated][-2:] == ["RevalidationRequired", "Expired"]
        finally:
            second.terminate()
            second.wait(10)


def wait_for_state(client: httpx.Client, proposal_id: str, state: str, timeout: float) -> None:
    def reached() -> bool:
        events = client.get(f"{LEARNING}/proposals/{proposal_id}/history").json()["events"]
        return bool(events) and events[-1]["state_after"] == state

    assert eventually(reached, timeout), f"{proposal_id} did not become {state} within {timeout} s"
