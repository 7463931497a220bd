"""Mixed lifecycle traffic from many clients over two APIs, every answer kept with when it was sent and answered."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support import FAMILIES, INTAKE, LEARNING, intake_body, propose_body, replay_body

TIMEOUT = 15.0


@dataclass(frozen=True)
class Answer:
    kind: str
    api: int
    sent: float
    answered: float
    status: int  # 0: no answer (connection refused or reset, timeout)
    body: dict[str, Any]

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Traffic:
    """Each client walks proposals through their lifecycle on a tenant's targets, alternating between the APIs:
    intakes, a replay, propose, a Warp approval, approve-check, activate, and mostly a rollback; after each
    propose it reads the proposal from the other API with `min_position` (SPEC §10)."""

    apis: list[str]
    approvals: Path
    tenants: list[str]
    targets: int = 2
    clients: int = 8
    answers: list[Answer] = field(default_factory=list)
    reads: list[tuple[int, str | None]] = field(default_factory=list)
    """Cross-process reads: (status, the state read or None)."""
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _turn: int = 0

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(self.clients)]
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT + 5)

    def _client(self, number: int) -> None:
        rng = random.Random(number)
        tenant = self.tenants[number % len(self.tenants)]
        clients = [httpx.Client(base_url=url, timeout=TIMEOUT) for url in self.apis]
        try:
            cycle = 0
            while not self.stop.is_set():
                cycle += 1
                self._cycle(clients, rng, tenant, f"c{number}-{cycle}", number * 100_000 + cycle)
        finally:
            for client in clients:
                client.close()

    def _cycle(self, clients: list[httpx.Client], rng: random.Random, tenant: str, tag: str, serial: int) -> None:
        target = {"type": "prompt_template", "id": f"target-{rng.randrange(self.targets)}"}
        for index in range(2):
            body = intake_body(FAMILIES, tenant_id=tenant, trace_id=f"{tag}-{index}", target_hints=[target])
            self._post(clients, rng, "intake", INTAKE, body)
        metrics = {
            "baseline": {"accuracy": 0.80, "latency_ms": 120},
            "candidate": {"accuracy": 0.85 + serial * 1e-9, "latency_ms": 100},
        }
        replay = self._post(
            clients, rng, "evaluate", f"{LEARNING}/replay/evaluate",
            replay_body(FAMILIES, tenant_id=tenant, target=target, metrics=metrics),
        )  # fmt: skip
        if replay is None or replay.body.get("verdict") != "passed":
            return
        proposal = self._post(
            clients, rng, "propose", f"{LEARNING}/promotions/propose",
            propose_body(replay.body["replay_id"], tenant_id=tenant, target=target),
        )  # fmt: skip
        if proposal is None:
            return
        proposal_id = proposal.body["proposal_id"]
        self._read_elsewhere(clients, proposal, proposal_id)
        self._approve(proposal.body)
        checked = self._post(
            clients, rng, "approve-check", f"{LEARNING}/promotions/approve-check", {"proposal_id": proposal_id}
        )
        if checked is None or checked.body.get("state") != "approved":
            return
        activated = self._post(
            clients, rng, "activate", f"{LEARNING}/promotions/activate", {"proposal_id": proposal_id}
        )
        if activated is None or rng.random() < 0.2:
            return
        time.sleep(rng.uniform(0.0, 0.3))
        self._post(
            clients, rng, "rollback", f"{LEARNING}/promotions/rollback", {"proposal_id": proposal_id, "reason": "cycle"}
        )

    def _post(
        self, clients: list[httpx.Client], rng: random.Random, kind: str, path: str, body: dict[str, Any]
    ) -> Answer | None:
        """One write through one of the APIs (taking turns); the answer when it was a 2xx."""
        self._turn += 1
        api = (self._turn + rng.randrange(2)) % len(clients)
        sent = time.monotonic()
        try:
            response = clients[api].post(path, json=body)
            status, answer = response.status_code, _json(response)
        except httpx.HTTPError:
            status, answer = 0, {}
        answered = time.monotonic()
        recorded = Answer(kind, api, sent, answered, status, answer)
        self.answers.append(recorded)
        if status in (0, 503):
            time.sleep(0.05)
        return recorded if recorded.acknowledged else None

    def _read_elsewhere(self, clients: list[httpx.Client], write: Answer, proposal_id: str) -> None:
        other = clients[(write.api + 1) % len(clients)]
        try:
            response = other.get(f"{LEARNING}/proposals/{proposal_id}", params={"min_position": write.body["position"]})
            state = _json(response).get("state") if response.status_code == 200 else None
            self.reads.append((response.status_code, state))
        except httpx.HTTPError:
            self.reads.append((0, None))

    def _approve(self, proposal: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        document = {
            "approval_id": f"warp-{proposal['proposal_id'][:8]}",
            "proposal_id": proposal["proposal_id"],
            "decision": "approved",
            "approver": {"id": "alice", "kind": "human"},
            "binding": {"candidate_hash": proposal["candidate_hash"], "provenance_hash": proposal["provenance_hash"]},
            "decided_at": now.isoformat(),
            "expires_at": (now + timedelta(hours=1)).isoformat(),
        }
        path = self.approvals / f"{proposal['proposal_id']}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document))
        temporary.replace(path)

    def acknowledged(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.acknowledged]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
