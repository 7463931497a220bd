"""The console's custody items (SPEC §9), in-process: the change_hash and whether it was judged, the promotion
receipts, and a broken chain named at its first broken event with the content marked untrusted."""

from __future__ import annotations

import re

import pytest

from dobby.engine.kernel.canonical import content_hash
from tests import tampering
from tests.support import CHANGE, InProcess, approved, eventually, post

pytestmark = pytest.mark.backends(["sqlite"])


def page_of(app: InProcess, proposal_id: str) -> str:
    answer = app.client.get(f"/console/proposals/{proposal_id}")
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_page_shows_the_judged_change_hash_and_every_receipt(app: InProcess) -> None:
    proposal = approved(app)
    pid = proposal["proposal_id"]
    page = page_of(app, pid)
    found = re.search(r'data-testid="change-hash" data-judged="(\w+)">([^<]+)<', page)
    assert found and found.groups() == ("true", content_hash(CHANGE)), page
    assert "the replay judged this very change" in page
    assert 'data-testid="receipt"' not in page and 'data-testid="chain-broken-at"' not in page
    post(app.client, "/promotions/activate", {"proposal_id": pid}, 200)
    post(app.client, "/promotions/rollback", {"proposal_id": pid, "reason": "worse"}, 200)

    def both_receipts() -> bool:
        app.catch_up()
        return page_of(app, pid).count('data-testid="receipt"') == 2

    assert eventually(both_receipts, timeout=10)
    page = page_of(app, pid)
    actions = re.findall(r'data-testid="receipt" data-action="(\w+)"', page)
    assert actions == ["activation", "rollback"]
    assert content_hash(CHANGE).removeprefix("sha256:")[:12] in page


def test_a_broken_chain_names_its_first_broken_event_and_marks_the_content_untrusted(app: InProcess) -> None:
    proposal = approved(app)
    pid = proposal["proposal_id"]
    history = app.client.get(f"/api/v1/learning/proposals/{pid}/history").json()
    assert history["chain_valid"] is True and history["broken_at"] is None
    second = next(event for event in history["events"] if event["version"] == 2)
    table = tampering.Table(app.system.engine.context.uow.log, app.system.store.engine)
    table.change(second["position"], lambda event: tampering.other_payload(event, 0))

    history = app.client.get(f"/api/v1/learning/proposals/{pid}/history").json()
    assert history["chain_valid"] is False and history["broken_at"] == 2
    page = page_of(app, pid)
    assert re.search(r'data-testid="chain-broken-at" data-version="2"', page), page
    assert 'data-untrusted="true"' in page and "untrusted" in page
    assert re.search(r'data-testid="chain-status" data-valid="false"', page)
