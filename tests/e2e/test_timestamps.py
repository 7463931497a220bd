"""Timestamps at the door (SPEC §4): every timestamp in a body or a query — a freeze's starts_at and ends_at,
activate's not_before, history's as_of — is RFC 3339 with an explicit offset whose UTC instant lies in 1970–9999;
anything else is a 422 naming the field, and stores nothing."""

from __future__ import annotations

import pytest

from tests.support import LEARNING, InProcess, approved, refused

pytestmark = pytest.mark.backends(["sqlite"])
OUTSIDE = ["0900-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "2026-01-01T12:00:00"]


@pytest.mark.parametrize("when", OUTSIDE)
def test_a_freeze_outside_the_range_is_refused_naming_the_field(app: InProcess, when: str) -> None:
    later = "2099-01-01T00:00:00Z"
    for field, body in (
        ("starts_at", {"starts_at": when, "ends_at": later}),
        ("ends_at", {"ends_at": when}),
    ):
        answer = refused(app.client, "/freezes", {"tenant_id": "acme", "reason": "r", **body}, 422, "invalid_input")
        assert answer.json()["error"]["details"][0]["field"] == field, answer.text


@pytest.mark.parametrize("when", OUTSIDE)
def test_a_schedule_outside_the_range_is_refused_naming_not_before(app: InProcess, when: str) -> None:
    proposal = approved(app)
    body = {"proposal_id": proposal["proposal_id"], "not_before": when}
    answer = app.client.post(f"{LEARNING}/promotions/activate", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == "not_before", answer.text
    app.catch_up()
    assert app.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}").json()["state"] == "approved"


@pytest.mark.parametrize("when", OUTSIDE)
def test_a_history_as_of_outside_the_range_is_refused_naming_as_of(app: InProcess, when: str) -> None:
    proposal = approved(app)
    answer = app.client.get(f"{LEARNING}/proposals/{proposal['proposal_id']}/history", params={"as_of": when})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == "as_of", answer.text
