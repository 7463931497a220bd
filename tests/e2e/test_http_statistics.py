"""Sample summaries over HTTP (SPEC §14): replays, what-if, proposals and the watch, and every refusal stores
nothing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    FAMILIES,
    LEARNING,
    InProcess,
    head_position,
    post,
    propose_body,
    refused,
    replay_body,
    serve_in_process,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
CONTRACT: dict[str, Any] = {
    "mode": "all",
    "metrics": {"success": {"direction": "increase"}, "latency_ms": {"direction": "decrease"}},
    "veto": ["success"],
}


def summaries(success: tuple[int, int], latency: tuple[float, float, int], base_n: int = 2000) -> dict[str, Any]:
    return {
        "baseline": {
            "success": {"successes": int(0.40 * base_n), "n": base_n},
            "latency_ms": {"mean": 120, "sd": 30, "n": base_n},
        },
        "candidate": {
            "success": {"successes": success[0], "n": success[1]},
            "latency_ms": {"mean": latency[0], "sd": latency[1], "n": latency[2]},
        },
    }


def evaluate(app: InProcess, metrics: dict[str, Any], status: int = 201, **contract: Any) -> dict[str, Any]:
    body = replay_body(FAMILIES, metrics=metrics, threshold_contract={**CONTRACT, **contract})
    return post(app.client, "/replay/evaluate", body, status)


PASSING = summaries((900, 2000), (110, 30, 2000))
UNSURE = summaries((830, 2000), (119, 30, 2000))


def test_a_replay_of_summaries_carries_estimates_and_intervals_into_the_stored_view(app: InProcess) -> None:
    replay = evaluate(app, PASSING)
    assert replay["verdict"] == "passed"
    success = {r["name"]: r for r in replay["metric_results"]}["success"]
    assert success["estimate"] == pytest.approx(0.05) and success["improvement"] == success["estimate"]
    low, high = success["interval"]
    assert 0 < low < 0.05 < high
    assert success["confidence"] == 0.95 and success["inconclusive"] is False and success["needed_n"] is None
    assert success["baseline"] == {"successes": 800, "n": 2000} and success["flip_at"] is None
    app.catch_up()
    stored = app.client.get(f"{LEARNING}/replays/{replay['replay_id']}").json()
    assert stored["metric_results"] == replay["metric_results"]


def test_an_inconclusive_replay_names_the_sample_it_needs_and_cannot_be_proposed(app: InProcess) -> None:
    replay = evaluate(app, UNSURE)
    assert replay["verdict"] == "inconclusive"
    assert replay["reasons"] == ["inconclusive:latency_ms", "inconclusive:success"]
    needed = {r["name"]: r["needed_n"] for r in replay["metric_results"]}
    assert needed["success"] > 2000 and needed["latency_ms"] > 2000
    refused(app.client, "/promotions/propose", propose_body(replay["replay_id"]), 422, "replay_not_passed")
    app.catch_up()
    listed = app.client.get(f"{LEARNING}/replays", params={"tenant_id": "acme", "verdict": "inconclusive"}).json()
    assert [item["replay_id"] for item in listed["items"]] == [replay["replay_id"]]


def test_what_if_rejudges_summaries_at_another_confidence(app: InProcess) -> None:
    replay = evaluate(app, summaries((880, 2000), (110, 30, 2000)))
    assert replay["verdict"] == "passed"
    strict = copy.deepcopy(CONTRACT)
    strict["metrics"]["success"]["confidence"] = 0.9999
    answer = post(app.client, f"/replays/{replay['replay_id']}/what-if", {"threshold_contract": strict}, 200)
    assert answer["what_if"]["verdict"] == "inconclusive"
    success = {r["name"]: r for r in answer["what_if"]["metric_results"]}["success"]
    assert success["confidence"] == 0.9999 and success["inconclusive"] and success["needed_n"] > 2000


@pytest.mark.parametrize(
    ("where", "value", "code", "field"),
    [
        ("candidate.success", 0.45, "metric_kind_mismatch", "metrics.candidate.success"),
        ("candidate.success", {"mean": 0.4, "sd": 0.1, "n": 9}, "metric_kind_mismatch", "metrics.candidate.success"),
        ("candidate.latency_ms", {"mean": 1, "sd": 1, "n": 1}, "invalid_input", "metrics.candidate.latency_ms"),
        ("baseline.latency_ms", {"mean": 1, "sd": -1, "n": 9}, "invalid_input", "metrics.baseline.latency_ms.sd"),
        ("candidate.success", {"successes": 10, "n": 9}, "invalid_input", "metrics.candidate.success"),
        ("candidate.success", {"successes": 1, "n": 0}, "invalid_input", "metrics.candidate.success.n"),
        ("candidate.latency_ms", {"mean": 1e308, "sd": 1e308, "n": 2}, "metric_out_of_range", None),
    ],
)
def test_summaries_that_cannot_be_judged_are_refused_and_store_nothing(
    app: InProcess, where: str, value: Any, code: str, field: str | None
) -> None:
    side, metric = where.split(".")
    metrics = copy.deepcopy(PASSING)
    metrics[side][metric] = value
    body = replay_body(FAMILIES, metrics=metrics, threshold_contract=CONTRACT)
    answer = refused(app.client, "/replay/evaluate", body, 422, code)
    details = answer.json()["error"]["details"]
    if field is not None:
        assert details[0]["field"] == field, details
    assert metric in answer.text
    budget = evaluate(app, PASSING)["budget"]["remaining"]
    assert budget == 19  # the refusal spent nothing


def test_a_bad_confidence_in_the_contract_is_refused(app: InProcess) -> None:
    contract = copy.deepcopy(CONTRACT)
    contract["metrics"]["success"]["confidence"] = 1
    body = replay_body(FAMILIES, metrics=PASSING, threshold_contract=contract)
    answer = refused(app.client, "/replay/evaluate", body, 422, "invalid_input")
    assert answer.json()["error"]["details"][0]["field"] == "threshold_contract.metrics.success.confidence"


def test_the_default_confidence_is_a_setting(database_url: str, tmp_path: Path) -> None:
    with serve_in_process(database_url, tmp_path, confidence=0.5) as app:
        replay = evaluate(app, UNSURE)
        assert {r["confidence"] for r in replay["metric_results"]} == {0.5}


def active_from(app: InProcess, metrics: dict[str, Any]) -> dict[str, Any]:
    replay = evaluate(app, metrics)
    proposal = post(app.client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
    app.write_approval(proposal)
    post(app.client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)
    post(app.client, "/promotions/activate", {"proposal_id": proposal["proposal_id"]}, 200)
    return proposal


def observation(proposal: dict[str, Any], success: tuple[int, int], latency: tuple[float, float, int]) -> Any:
    return {
        "proposal_id": proposal["proposal_id"],
        "metrics": {
            "success": {"successes": success[0], "n": success[1]},
            "latency_ms": {"mean": latency[0], "sd": latency[1], "n": latency[2]},
        },
    }


def test_the_watch_judges_cumulative_summaries_and_rolls_back_a_proven_regression(app: InProcess) -> None:
    proposal = active_from(app, PASSING)
    healthy = post(app.client, "/promotions/observe", observation(proposal, (80, 200), (125, 30, 200)), 200)
    assert healthy["verdict"] == "healthy" and not healthy["rolled_back"]
    latency = {r["name"]: r for r in healthy["metric_results"]}["latency_ms"]
    assert latency["estimate"] == -5 and latency["interval"][0] < -5 < latency["interval"][1]

    shrunk = observation(proposal, (150, 400), (120, 30, 150))
    answer = refused(app.client, "/promotions/observe", shrunk, 422, "sample_shrank")
    assert answer.json()["error"]["details"][0]["field"] == "metrics.latency_ms.n"
    plain = {"proposal_id": proposal["proposal_id"], "metrics": {"success": 0.4, "latency_ms": 120}}
    mixed = refused(app.client, "/promotions/observe", plain, 422, "metric_kind_mismatch")
    assert {d["field"] for d in mixed.json()["error"]["details"]} == {"metrics.success", "metrics.latency_ms"}

    app.catch_up()
    explained = app.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}/explain").json()
    assert [r["interval"] for r in explained["metric_results"]] == [
        r["interval"] for r in app.client.get(f"{LEARNING}/replays/{proposal['replay_id']}").json()["metric_results"]
    ]
    assert all(r["estimate"] is not None for r in explained["metric_results"])

    regressed = post(app.client, "/promotions/observe", observation(proposal, (600, 4000), (121, 30, 4000)), 200)
    assert regressed["verdict"] == "regressed" and regressed["rolled_back"] is True
    history = app.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}/history").json()
    rolled = history["events"][-1]
    assert rolled["type"] == "RolledBack" and "always-valid interval" in rolled["payload"]["reason"]
    observed = [e for e in history["events"] if e["type"] == "Observed"]
    assert observed[0]["payload"]["metrics"]["success"] == {"successes": 80, "n": 200}
    assert observed[-1]["payload"]["metric_results"][1]["interval"] == regressed["metric_results"][1]["interval"]


def test_nothing_is_stored_for_a_refused_observation(app: InProcess) -> None:
    proposal = active_from(app, PASSING)
    before = head_position(app.client)
    bad = observation(proposal, (5, 4), (120, 30, 10))
    answer = app.client.post(f"{LEARNING}/promotions/observe", json=bad)
    assert answer.status_code == 422 and "metrics.success" in answer.text
    assert head_position(app.client) == before
