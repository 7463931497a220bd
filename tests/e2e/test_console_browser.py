"""The console in Chromium (SPEC §9): what operators and auditors see and do, with what-if and live updates."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.e2e.console_support import Console
from tests.support import FAMILIES, intake_body, replay_body

# make test runs three workers on two cores beside a browser: a page may take longer than Playwright's 5 s default
expect.set_options(timeout=20_000)

LENIENT = {"mode": "non_regression", "metrics": {"accuracy": {"direction": "increase", "min_improvement": 0.5}}}


def sign_in(page: Page, token: str) -> None:
    page.goto("/console")
    expect(page.get_by_test_id("sign-in")).to_be_visible()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("mode-effective")).to_have_text("promotion_enabled")


def test_whole_lifecycle_in_the_browser(page: Page, console: Console, screenshots: Path) -> None:
    proposal = console.proposal(rationale="lower latency, same accuracy")
    pid = proposal["proposal_id"]
    sign_in(page, "operator-token")
    page.goto("/console/proposals")
    row = page.locator(f"[data-testid=proposal-row][data-proposal-id='{pid}']")
    expect(row).to_have_attribute("data-state", "approved")
    row.get_by_role("link").click()
    expect(page.get_by_test_id("proposal-state")).to_have_text("approved")
    before = page.get_by_test_id("timeline-event").count()

    expect(page.get_by_test_id("action-approve-check")).to_have_count(0)
    page.get_by_test_id("action-activate").click()
    expect(page.get_by_test_id("action-message")).to_contain_text("Activated")
    expect(page.get_by_test_id("proposal-state")).to_have_text("active")
    expect(page.get_by_test_id("action-activate")).to_have_count(0)
    page.get_by_test_id("action-rollback").click()
    expect(page.get_by_test_id("action-message")).to_contain_text("a reason is required")
    expect(page.get_by_test_id("proposal-state")).to_have_text("active")

    page.get_by_label("Reason").fill("latency regressed in eu-west")
    page.get_by_test_id("action-rollback").click()
    expect(page.get_by_test_id("proposal-state")).to_have_text("rolled_back")
    events = page.get_by_test_id("timeline-event")
    expect(events).to_have_count(before + 2)
    expect(events.last).to_have_attribute("data-type", "RolledBack")
    expect(events.last).to_contain_text("latency regressed in eu-west")
    expect(events.last).to_contain_text("olivia")
    expect(page.get_by_test_id("chain-status")).to_have_attribute("data-valid", "true")
    for action in ("action-approve-check", "action-activate", "action-rollback"):
        expect(page.get_by_test_id(action)).to_have_count(0)
    assert page.url.endswith(f"/console/proposals/{pid}")
    assert console.state(pid) == "rolled_back"
    expect(page.get_by_test_id("change-hash")).to_have_text(proposal["change_hash"])
    expect(page.get_by_test_id("change-hash")).to_have_attribute("data-judged", "true")
    receipts = page.get_by_test_id("receipt")
    expect(receipts).to_have_count(2, timeout=10_000)  # the page follows the log; receipts follow the Merkle tree
    expect(receipts.first).to_have_attribute("data-action", "activation")
    expect(receipts.last).to_have_attribute("data-action", "rollback")
    assert _serious(Axe(), page) == []
    page.screenshot(path=str(screenshots / "proposal-receipts.png"), full_page=True)


def test_actions_follow_the_state_without_a_reload(page: Page, console: Console) -> None:
    target = {"type": "routing_rule", "id": f"l-{uuid.uuid4().hex[:8]}"}
    proposal = console.proposal(target)
    console.post("/promotions/activate", {"proposal_id": proposal["proposal_id"]})
    sign_in(page, "operator-token")
    page.goto(f"/console/proposals/{proposal['proposal_id']}")
    expect(page.get_by_test_id("action-rollback")).to_be_visible()
    console.post("/promotions/rollback", {"proposal_id": proposal["proposal_id"], "reason": "from the API"})
    expect(page.get_by_test_id("proposal-state")).to_have_text("rolled_back")
    expect(page.get_by_test_id("action-rollback")).to_have_count(0)


def test_a_conflicting_proposal_names_the_active_one_and_a_refused_activation_says_why(
    page: Page, console: Console, screenshots: Path
) -> None:
    target = {"type": "routing_rule", "id": f"r-{uuid.uuid4().hex[:8]}"}
    first = console.proposal(target)
    console.post("/promotions/activate", {"proposal_id": first["proposal_id"]})
    second = console.proposal(target, accuracy=0.9, change={"route": "b"})
    sign_in(page, "operator-token")
    page.goto(f"/console/proposals/{second['proposal_id']}")
    guard = page.locator("[data-testid=guard][data-guard=target_free]")
    expect(guard).to_have_attribute("data-passed", "false")
    expect(guard).to_contain_text(first["proposal_id"])

    page.get_by_test_id("action-activate").click()
    message = page.get_by_test_id("action-message")
    expect(message).to_contain_text("Refused (conflict)")
    expect(message).to_contain_text(f"target_free: proposal {first['proposal_id']} is active on this target")
    expect(page.get_by_test_id("proposal-state")).to_have_text("approved")
    page.screenshot(path=str(screenshots / "proposal-refused.png"), full_page=True)
    assert console.state(second["proposal_id"]) == "approved"


def test_a_freeze_is_named_when_it_refuses_and_lifted_from_its_page(page: Page, console: Console) -> None:
    target = {"type": "routing_rule", "id": f"f-{uuid.uuid4().hex[:8]}"}
    pid = console.proposal(target)["proposal_id"]
    sign_in(page, "operator-token")
    page.goto("/console/freezes")
    page.locator("#freeze-tenant").fill("acme")
    page.locator("#freeze-targets").fill(f"routing_rule:{target['id']}")
    page.locator("#freeze-ends").fill((datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"))  # UTC
    page.locator("#freeze-reason").fill("launch freeze")
    page.get_by_test_id("action-freeze").click()
    expect(page.get_by_test_id("action-message")).to_contain_text("Declared freeze")
    row = page.get_by_test_id("freeze-row").filter(has_text=target["id"])
    expect(row).to_have_count(1)

    page.goto(f"/console/proposals/{pid}")
    expect(page.locator("[data-testid=guard][data-guard=not_frozen]")).to_have_attribute("data-passed", "false")
    page.get_by_test_id("action-activate").click()
    expect(page.get_by_test_id("action-message")).to_contain_text("Refused (frozen)")
    expect(page.get_by_test_id("action-message")).to_contain_text("launch freeze")
    assert console.state(pid) == "approved"

    page.goto("/console/freezes")
    row = page.get_by_test_id("freeze-row").filter(has_text=target["id"])
    row.get_by_label("Reason").fill("launched")
    row.get_by_test_id("action-lift").click()
    expect(page.get_by_test_id("action-message")).to_contain_text("Lifted freeze")
    page.goto(f"/console/proposals/{pid}")
    page.get_by_test_id("action-activate").click()
    expect(page.get_by_test_id("proposal-state")).to_have_text("active")


def test_what_if_flips_a_verdict_and_spends_no_budget(page: Page, console: Console, screenshots: Path) -> None:
    target = {"type": "prompt_template", "id": f"w-{uuid.uuid4().hex[:8]}"}
    replay = console.replay(target)
    sign_in(page, "operator-token")
    page.goto(f"/console/replays/{replay['replay_id']}")
    head = console.head()
    form = page.get_by_test_id("what-if-form")
    accuracy = form.locator("[data-testid=what-if-metric][data-metric=accuracy]")
    expect(accuracy.get_by_label("Direction")).to_have_value("increase")
    expect(accuracy.get_by_label("Veto")).to_be_checked()
    accuracy.get_by_label("Min improvement").fill("0.1")
    form.get_by_role("button", name="Judge again (dry run)").click()
    verdict = page.get_by_test_id("what-if-verdict")
    expect(verdict).to_have_attribute("data-verdict", "rejected")
    expect(page.locator("[data-testid=what-if-flip][data-metric=accuracy]")).to_contain_text("pass")
    expect(accuracy.get_by_label("Min improvement")).to_have_value("0.1")
    page.screenshot(path=str(screenshots / "replay-what-if.png"), full_page=True)

    form.get_by_label("Threshold contract (JSON)").fill(json.dumps(LENIENT))  # open from the start
    form.get_by_role("button", name="Judge again (dry run)").click()
    expect(verdict).to_have_attribute("data-verdict", "passed")
    assert _serious(Axe(), page) == []  # the form as it answers, with the JSON open
    assert console.head() == head
    again = console.post("/replay/evaluate", replay_body(FAMILIES, target=target))
    assert again["duplicate"] is True and again["budget"]["remaining"] == replay["budget"]["remaining"]


def test_a_row_follows_the_log_without_a_reload(page: Page, console: Console) -> None:
    proposal = console.proposal()
    sign_in(page, "auditor-token")
    page.goto(f"/console/proposals?target_id={proposal['target']['id']}")
    row = page.locator(f"[data-testid=proposal-row][data-proposal-id='{proposal['proposal_id']}']")
    expect(row).to_have_attribute("data-state", "approved")
    page.evaluate("window.__stillHere = true")
    console.post("/promotions/activate", {"proposal_id": proposal["proposal_id"]})
    expect(row).to_have_attribute("data-state", "active", timeout=3000)
    expect(row.get_by_test_id("proposal-state")).to_have_text("active")
    assert page.evaluate("window.__stillHere") is True


def test_what_users_sent_renders_as_text_and_never_runs(page: Page, console: Console) -> None:
    script = "<script>window.__xss = 1</script>"
    image = "<img src=x onerror=window.__xss=2>"
    trace = "<svg onload=window.__xss=3>"
    proposal = console.proposal(rationale=script, change={"template": image})
    console.post("/signals/intake", intake_body(FAMILIES, trace_id=trace, tenant_id="acme"))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    sign_in(page, "operator-token")
    page.goto(f"/console/proposals/{proposal['proposal_id']}")
    expect(page.get_by_test_id("rationale")).to_have_text(script)
    expect(page.get_by_test_id("change")).to_contain_text(image)
    page.goto("/console/runs?tenant_id=acme")
    expect(page.get_by_text(trace)).to_be_visible(timeout=3000)
    assert page.evaluate("window.__xss") is None
    assert dialogs == []


def test_sign_in_scopes_roles_and_csrf(page: Page, console: Console) -> None:
    own = console.proposal()
    other = console.proposal(tenant="globex")
    page.goto("/console/proposals")
    expect(page.get_by_test_id("sign-in")).to_be_visible()
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("action-message")).to_contain_text("not valid")
    assert not [c for c in page.context.cookies() if c["name"] == "dobby_session"]

    sign_in(page, "auditor-token")
    session = next(c for c in page.context.cookies() if c["name"] == "dobby_session")
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    page.goto("/console/proposals")
    ids = page.get_by_test_id("proposal-row").evaluate_all("rows => rows.map(r => r.dataset.proposalId)")
    assert own["proposal_id"] in ids and other["proposal_id"] not in ids
    page.goto(f"/console/proposals/{own['proposal_id']}")
    expect(page.get_by_test_id("proposal-state")).to_have_text("approved")
    for action in ("action-approve-check", "action-activate", "action-rollback"):
        expect(page.get_by_test_id(action)).to_have_count(0)
    refused = page.goto(f"/console/proposals/{other['proposal_id']}")
    assert refused is not None and refused.status == 404
    expect(page.get_by_text("globex")).to_have_count(0)
    hidden = page.locator("main").inner_text().replace(other["proposal_id"], "ID")
    unknown_id = str(uuid.uuid4())
    page.goto(f"/console/proposals/{unknown_id}")
    assert page.locator("main").inner_text().replace(unknown_id, "ID") == hidden  # as unknown as an unknown id
    assert page.request.post(f"/console/proposals/{own['proposal_id']}/activate").status == 403

    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("sign-in")).to_be_visible()
    sign_in(page, "operator-token")
    forged = page.request.post(f"/console/proposals/{own['proposal_id']}/activate", form={"reason": "x"})
    assert forged.status == 403 and "CSRF" in forged.text()
    assert console.state(own["proposal_id"]) == "approved"


def test_every_page_passes_axe_and_is_pictured(page: Page, console: Console, screenshots: Path) -> None:
    proposal = console.proposal(rationale="route premium users to the new prompt")
    console.post("/signals/intake", intake_body(FAMILIES, trace_id=f"trace-{uuid.uuid4().hex[:6]}"))
    axe = Axe()
    page.goto("/console/sign-in")
    found = [f"sign-in: {v}" for v in _serious(axe, page)]
    page.screenshot(path=str(screenshots / "sign-in.png"))
    sign_in(page, "operator-token")
    pages = {
        "overview": "/console",
        "proposals": "/console/proposals",
        "proposal": f"/console/proposals/{proposal['proposal_id']}",
        "replay": f"/console/replays/{proposal['replay_id']}",
        "runs": "/console/runs",
        "freezes": "/console/freezes",
    }
    for name, path in pages.items():
        page.goto(path)
        found += [f"{name}: {v}" for v in _serious(axe, page)]
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=name != "overview")
    assert found == []


def _serious(axe: Axe, page: Page) -> list[str]:
    response = axe.run(page).response
    assert response["testEngine"]["name"] == "axe-core"
    violations = response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in violations if v["impact"] in ("serious", "critical")]
