"""The lists of runs, replays and proposals take `since` and `until` (SPEC §4.8): records created at or after
`since` and before `until`, both timestamps as the door takes them (SPEC §4), else 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import FAMILIES, INTAKE, LEARNING, FakeClock, InProcess, intake_body, post, serve_in_process

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


def test_lists_hold_what_was_created_in_the_window(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    with serve_in_process(database_url, tmp_path, clock=clock) as app:
        ids = []
        for day in range(3):
            ids.append(post(app.client, INTAKE.removeprefix(LEARNING), intake_body(FAMILIES, trace_id=f"d{day}"), 201))
            clock.advance(timedelta(days=1).total_seconds())
        app.catch_up()
        window = {"since": "2026-03-02T12:00:00Z", "until": "2026-03-03T12:00:00+00:00"}
        listed = app.client.get(f"{LEARNING}/runs", params=window).json()["items"]
        assert [run["run_id"] for run in listed] == [ids[1]["run_id"]]
        since = app.client.get(f"{LEARNING}/runs", params={"since": "2026-03-02T13:00:00+01:00"}).json()["items"]
        assert [run["run_id"] for run in since] == [ids[2]["run_id"], ids[1]["run_id"]]
        for path in ("runs", "replays", "proposals"):
            assert app.client.get(f"{LEARNING}/{path}", params={"until": "2026-01-01T00:00:00Z"}).json()["items"] == []


@pytest.mark.parametrize("value", ["1969-12-31T23:59:59Z", "2026-03-02", "2026-03-02T12:00:00", "yesterday"])
@pytest.mark.parametrize("field", ["since", "until"])
def test_a_window_bound_that_is_not_a_timestamp_in_range_is_refused_naming_it(
    app: InProcess, field: str, value: str
) -> None:
    for path in ("runs", "replays", "proposals"):
        answer = app.client.get(f"{LEARNING}/{path}", params={field: value})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"][0]["field"] == field, answer.text
