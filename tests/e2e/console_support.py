"""The console in a real Chromium: one browser and one `dobby serve` per test session, tokens and data made here."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server, serve
from tests.support import CHANGE, FAMILIES, propose_body, replay_body, warp_approval

CHROMIUM = Path(os.environ.get("DOBBY_CHROMIUM", "/usr/bin/chromium"))
SECRET = "console-secret-for-the-browser-tests"
TOKENS = {
    "admin-token": ("admin", "*", ["submitter", "proposer", "operator", "auditor"]),
    "operator-token": ("olivia", ["acme"], ["operator", "auditor", "submitter"]),
    "auditor-token": ("audrey", ["acme"], ["auditor"]),
}


def chromium_or_skip() -> Path:
    """Debian's Chromium; without it the browser tests are skipped, unless CI or DOBBY_REQUIRE_POSTGRES=1 asks
    for the whole suite (then its absence fails them)."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("DOBBY_REQUIRE_POSTGRES") == "1" or os.environ.get("CI"):
        pytest.fail(reason + " (the whole suite is required here)")
    print(f"\nSKIPPING browser tests: {reason}")
    pytest.skip(reason)


@dataclass
class Console:
    """A running server with the API client of an all-powerful token, to set the scene the browser then sees."""

    server: Server
    api: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        answer = self.api.post(f"/api/v1/learning{path}", json=body)
        assert answer.status_code in (status, 201), answer.text
        result: dict[str, Any] = answer.json()
        return result

    def replay(
        self, target: dict[str, str], tenant: str = "acme", accuracy: float = 0.86, change: Any = CHANGE
    ) -> dict[str, Any]:
        body = replay_body(FAMILIES, tenant_id=tenant, target=target, change=change)
        body["metrics"]["candidate"]["accuracy"] = accuracy
        return self.post("/replay/evaluate", body)

    def proposal(
        self, target: dict[str, str] | None = None, tenant: str = "acme", accuracy: float = 0.86, **overrides: Any
    ) -> dict[str, Any]:
        """A proposal on a target of its own (or the one given), approved by Warp and approve-checked."""
        target = target or {"type": "prompt_template", "id": f"t-{uuid.uuid4().hex[:8]}"}
        replay = self.replay(target, tenant, accuracy, overrides.get("change", CHANGE))
        body = propose_body(replay["replay_id"], tenant_id=tenant, target=target, **overrides)
        proposal = self.post("/promotions/propose", body)
        self.server.approvals.mkdir(parents=True, exist_ok=True)
        path = self.server.approvals / f"{proposal['proposal_id']}.json"
        path.write_text(json.dumps(warp_approval(proposal)))
        checked = self.post("/promotions/approve-check", {"proposal_id": proposal["proposal_id"]})
        assert checked["state"] == "approved", checked
        return proposal

    def state(self, proposal_id: str) -> str:
        state: str = self.api.get(f"/api/v1/learning/proposals/{proposal_id}").json()["state"]
        return state

    def head(self) -> int:
        ready = self.api.get("/ready").json()
        return max(int(p["position"]) + int(p["lag"]) for p in ready["projections"].values())


@contextmanager
def console_server(workdir: Path, database_url: str) -> Iterator[Console]:
    tokens = [
        {"name": name, "sha256": hashlib.sha256(token.encode()).hexdigest(), "tenants": tenants, "roles": roles}
        for token, (name, tenants, roles) in TOKENS.items()
    ]
    (workdir / "tokens.json").write_text(json.dumps(tokens))
    settings = {
        "DOBBY_API_TOKENS_FILE": str(workdir / "tokens.json"),
        "DOBBY_CONSOLE_SECRET": SECRET,
        "DOBBY_PROMOTION_VELOCITY_MAX": "1000",
    }
    with serve(database_url, workdir, **settings) as server:
        headers = {"Authorization": "Bearer admin-token"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10.0) as api:
            yield Console(server, api)
