"""Counters over real worker processes: every scrape, whichever worker answers it, shows the same totals, and a
restarted server shows them again."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, db_init, serve
from tests.support import FAMILIES, INTAKE, eventually, intake_body, samples

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
MIN_SCRAPES = 40
EXPECTED = {"accepted": 1.0, "duplicate": 2.0, "sampled_out": 3.0, "rejected": 4.0}
SCRAPE_COUNT = 'dobby_http_request_duration_seconds_count{method="GET",route="/metrics",status="200"}'


def scrape(server: Server) -> tuple[dict[str, float], float]:
    """Intake totals and the answering worker's own count of earlier scrapes, over a new connection each time
    (so any worker may answer)."""
    text = httpx.get(f"{server.url}/metrics", timeout=5.0).text
    totals = {labels.split('"')[1]: value for labels, value in samples(text, "dobby_intake_total{").items()}
    return totals, samples(text, SCRAPE_COUNT).get("", 0.0)


def every_scrape_agrees(server: Server) -> None:
    """Every scrape shows EXPECTED, until two scrapes found the same count of earlier scrapes: they came from
    two different processes, so more than one worker answered (which one answers is the kernel's choice)."""
    assert eventually(lambda: scrape(server)[0] == EXPECTED, timeout=15.0)
    seen: list[float] = []
    deadline = time.monotonic() + 30.0
    while len(seen) < MIN_SCRAPES or (len(set(seen)) == len(seen) and time.monotonic() < deadline):
        totals, earlier = scrape(server)
        assert totals == EXPECTED
        seen.append(earlier)
    assert len(set(seen)) < len(seen), f"one worker answered all {len(seen)} scrapes: {server.log.read_text()}"


def test_intake_totals_agree_on_every_worker_and_survive_a_restart(database_url: str, tmp_path: Path) -> None:
    options = {"DOBBY_NEUTRAL_SAMPLE_RATE": "0"}
    db_init(database_url, tmp_path)  # else both workers create the tables at once, and one waits in warmup
    with serve(database_url, tmp_path, "--workers", "2", **options) as server, server.client() as client:
        assert client.post(INTAKE, json=intake_body(FAMILIES)).status_code == 201
        for _ in range(2):
            assert client.post(INTAKE, json=intake_body(FAMILIES)).json()["duplicate"] is True
        for index in range(3):
            neutral = intake_body(FAMILIES, trace_id=f"neutral-{index}", outcome="neutral_success")
            assert client.post(INTAKE, json=neutral).json()["reason"] == "sampled_out"
        for index in range(4):
            blocked = intake_body(FAMILIES, trace_id=f"blocked-{index}", guardrail_decision="BLOCK")
            assert client.post(INTAKE, json=blocked).status_code == 422
        every_scrape_agrees(server)
    with serve(database_url, tmp_path, "--workers", "2", **options) as server:
        every_scrape_agrees(server)
