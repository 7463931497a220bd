"""The console's what-if form in-process (SPEC §4.3a, §9): fields per contract metric, or the JSON when edited."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from dobby.engine.rules.judgement import MetricRule, ThresholdContract
from dobby.http.console.contract_form import DIRECTIONS, MODES, NUMBERS
from tests.support import FAMILIES, InProcess, post, replay_body

pytestmark = [
    pytest.mark.backends(["sqlite"]),
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
]
CONTRACT = {
    "mode": "majority",
    "metrics": {
        "accuracy": {"direction": "increase", "min_improvement": 0.05, "relative": True},
        "latency_ms": {"direction": "decrease", "max_regression": 5},
    },
    "veto": ["latency_ms"],
}
STRICTER = {"mode": "all", "metrics": {"accuracy": {"direction": "increase", "min_improvement": 0.1}}}


class FormReader(HTMLParser):
    """What a browser would post for the what-if form untouched, the ids that have a label, and the options shown."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.labelled: set[str] = set()
        self.ids: list[str] = []
        self.options: dict[str, list[str]] = {}
        self._inside = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._inside = found.get("data-testid") == "what-if-form"
        if not self._inside:
            return
        if tag == "label":
            self.labelled.add(found["for"])
        if tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.ids.append(found["id"])
        if tag == "input" and (found.get("type") != "checkbox" or "checked" in found):
            self.fields[found["name"]] = found.get("value", "")
        elif tag == "select":
            self._select = found["name"]
            self.options[self._select] = []
        elif tag == "option" and self._select is not None:
            self.options[self._select].append(found["value"])
            if "selected" in found:
                self.fields[self._select] = found["value"]
        elif tag == "textarea":
            self._textarea = found["name"]
            self.fields[self._textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
        self._select = None if tag == "select" else self._select
        self._textarea = None if tag == "textarea" else self._textarea

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def read_form(page: str) -> FormReader:
    reader = FormReader()
    reader.feed(page)
    assert reader.fields, page
    return reader


def stored_replay(app: InProcess) -> dict[str, Any]:
    replay = post(app.client, "/replay/evaluate", replay_body(FAMILIES, threshold_contract=CONTRACT), 201)
    assert replay["verdict"] == "passed", replay
    return replay


def opened(app: InProcess, replay: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The replay page's what-if form as a browser would post it untouched, and the cookies it needs."""
    page = app.client.get(f"/console/replays/{replay['replay_id']}")
    assert page.status_code == 200, page.text
    return read_form(page.text).fields, {"dobby_csrf": page.cookies["dobby_csrf"]}


def what_if(app: InProcess, replay: dict[str, Any], form: dict[str, str], cookies: dict[str, str]) -> Any:
    return app.client.post(f"/console/replays/{replay['replay_id']}/what-if", data=form, cookies=cookies)


def verdict_of(page: str) -> str:
    found = re.search(r'data-testid="what-if-verdict" data-verdict="([a-z_]+)"', page)
    assert found, page
    return found.group(1)


def test_the_form_holds_every_field_of_a_metric_rule_and_nothing_else() -> None:
    assert {"direction", "relative", *NUMBERS} == set(MetricRule.__struct_fields__)
    assert set(ThresholdContract.__struct_fields__) == {"mode", "metrics", "veto"}


def test_the_form_is_prefilled_from_the_stored_contract_with_a_label_for_every_input(app: InProcess) -> None:
    replay = stored_replay(app)
    page = app.client.get(f"/console/replays/{replay['replay_id']}").text
    reader = read_form(page)
    fields = reader.fields
    assert fields["mode"] == "majority" and reader.options["mode"] == list(MODES)
    assert [fields["metric-0-direction"], fields["metric-1-direction"]] == ["increase", "decrease"]
    assert reader.options["metric-0-direction"] == list(DIRECTIONS)
    assert (fields["metric-0-min_improvement"], fields["metric-0-max_regression"]) == ("0.05", "")
    assert (fields["metric-1-min_improvement"], fields["metric-1-max_regression"]) == ("", "5")
    assert fields["metric-0-confidence"] == fields["metric-1-confidence"] == ""
    assert fields["metric-0-relative"] == "true" and "metric-1-relative" not in fields
    assert fields["metric-1-veto"] == "true" and "metric-0-veto" not in fields
    assert json.loads(fields["threshold_contract"]) == CONTRACT
    assert '<fieldset data-testid="what-if-metric" data-metric="accuracy">' in page
    assert reader.ids and set(reader.ids) <= reader.labelled and len(set(reader.ids)) == len(reader.ids)
    assert '<details data-testid="what-if-advanced" open>' in page  # open: a script filling the JSON finds it


def test_changing_one_metrics_min_improvement_flips_the_verdict_and_stores_nothing(app: InProcess) -> None:
    replay = stored_replay(app)
    form, cookies = opened(app, replay)
    before = app.system.engine.position()
    unchanged = what_if(app, replay, form, cookies)
    assert unchanged.status_code == 200, unchanged.text
    assert verdict_of(unchanged.text) == "passed" and "No metric flips." in unchanged.text

    form["metric-0-min_improvement"] = "0.5"
    answer = what_if(app, replay, form, cookies)
    assert answer.status_code == 200, answer.text
    assert verdict_of(answer.text) == "rejected"
    assert '<tr data-testid="what-if-flip" data-metric="accuracy">' in answer.text
    assert 'data-testid="what-if-flip" data-metric="latency_ms"' not in answer.text
    shown = read_form(answer.text).fields
    assert shown["metric-0-min_improvement"] == "0.5" and shown["mode"] == "majority"
    judged = json.loads(shown["threshold_contract"])  # the JSON shows the contract the fields made
    assert judged["metrics"]["accuracy"] == {"direction": "increase", "min_improvement": 0.5, "relative": True}
    assert app.system.engine.position() == before


def test_an_empty_number_is_not_set(app: InProcess) -> None:
    replay = stored_replay(app)
    form, cookies = opened(app, replay)
    form.update({"metric-0-min_improvement": "", "metric-1-veto": ""})
    del form["metric-1-veto"]
    answer = what_if(app, replay, form, cookies)
    assert answer.status_code == 200, answer.text
    judged = json.loads(read_form(answer.text).fields["threshold_contract"])
    assert judged["metrics"]["accuracy"] == {"direction": "increase", "relative": True}
    assert "veto" not in judged


@pytest.mark.parametrize(
    ("field", "typed", "said"),
    [
        ("metric-0-min_improvement", "a lot", "metric 'accuracy': min_improvement must be a finite number"),
        ("metric-1-max_regression", "1e999", "metric 'latency_ms': max_regression must be a finite number"),
        ("metric-1-confidence", "1.5", "metrics.latency_ms.confidence: Expected `float` < 1.0"),
        ("metric-0-min_improvement", "-1", "metrics.accuracy.min_improvement: Expected `int` >= 0"),
        ("metric-0-direction", "sideways", "metrics.accuracy.direction: Invalid enum value 'sideways'"),
    ],
)
def test_a_bad_field_is_refused_naming_metric_and_field_and_nothing_is_stored(
    app: InProcess, field: str, typed: str, said: str
) -> None:
    replay = stored_replay(app)
    form, cookies = opened(app, replay)
    before = app.system.engine.position()
    answer = what_if(app, replay, {**form, field: typed}, cookies)
    assert answer.status_code == 422, answer.text
    message = re.search(r'<div data-testid="action-message".*?</div>', answer.text, re.DOTALL)
    assert message and said in html.unescape(message.group(0)), answer.text
    assert 'data-testid="what-if-verdict"' not in answer.text
    if not field.endswith("direction"):  # a select offers only the directions there are
        assert read_form(answer.text).fields[field] == typed  # what was typed is shown again, to correct
    assert app.system.engine.position() == before


def test_edited_json_wins_over_the_fields_and_json_alone_still_works(app: InProcess) -> None:
    replay = stored_replay(app)
    form, cookies = opened(app, replay)
    edited = what_if(app, replay, {**form, "threshold_contract": json.dumps(STRICTER)}, cookies)
    assert edited.status_code == 200, edited.text
    assert verdict_of(edited.text) == "rejected"
    assert '<details data-testid="what-if-advanced" open>' in edited.text
    assert json.loads(read_form(edited.text).fields["threshold_contract"]) == STRICTER

    bare = {"csrf_token": form["csrf_token"], "threshold_contract": json.dumps(STRICTER)}  # as a script posts it
    assert verdict_of(what_if(app, replay, bare, cookies).text) == "rejected"
    crlf = form["threshold_contract"].replace("\n", "\r\n")  # as a browser posts the untouched textarea back
    untouched = what_if(app, replay, {**form, "threshold_contract": crlf, "metric-0-min_improvement": "0.5"}, cookies)
    assert verdict_of(untouched.text) == "rejected"

    broken = what_if(app, replay, {**form, "threshold_contract": '{"mode": "all"'}, cookies)
    assert broken.status_code == 400 and "Refused (malformed_json)" in broken.text  # as the API answers it


def test_a_form_with_more_fields_than_any_contract_needs_is_refused(app: InProcess) -> None:
    replay = stored_replay(app)
    form, cookies = opened(app, replay)
    flood = {**form, **{f"x{i}": "1" for i in range(2000)}}
    answer = what_if(app, replay, flood, cookies)
    assert answer.status_code == 422 and "more than" in answer.text
