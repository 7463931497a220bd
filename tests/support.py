"""Builders shared by the test tiers: a settable clock, an engine on any backend, valid request bodies, threads
released at once, and the HTTP app served in-process with the helpers its tests share."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio.from_thread
import httpx
import msgspec
import psycopg
from starlette.applications import Starlette

from dobby.adapters.fabric import RefreshingGovernanceTruth, builtin_document
from dobby.adapters.memory import InMemoryApprovals, InMemoryProvenanceSink, StaticGovernanceTruth
from dobby.adapters.settings import Settings
from dobby.bootstrap import build_engine, build_system, open_event_log
from dobby.engine.commands.activation import Rollback
from dobby.engine.commands.boundary import convert
from dobby.engine.commands.context import PROCESSOR_ACTOR, Context
from dobby.engine.commands.promotion import ProposalRef, Propose
from dobby.engine.commands.replay import EvaluateReplay
from dobby.engine.kernel.canonical import run_id_for
from dobby.engine.kernel.clock import Clock, system_clock
from dobby.engine.kernel.ports import Approval
from dobby.engine.model.run import Run
from dobby.engine.rules.intake import IntakeSignal, run_hash_of, run_provenance_hash_of
from dobby.engine.rules.modes import Mode
from dobby.engine.service import Engine
from dobby.engine.store.unit_of_work import EventLog, UnitOfWork
from dobby.http.app import create_app
from dobby.resources import read_manifest
from dobby.runtime.system import System

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET = {"type": "prompt_template", "id": "greeting"}
CHANGE: dict[str, Any] = {"template": "Hello, {name}!"}
"""The change a test replay judges and its proposal proposes, unless a test names another."""
FAMILIES = dict(read_manifest().families)
LEARNING = "/api/v1/learning"
INTAKE = f"{LEARNING}/signals/intake"
T = TypeVar("T")


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Outcome:
    """A command's answer as a client reads it: the JSON body, and whether it created something (201)."""

    body: dict[str, Any]
    created: bool = False


def _plain(value: Any) -> dict[str, Any]:
    plain: dict[str, Any] = msgspec.to_builtins(value)
    return plain


@dataclass
class World:
    """An engine with its in-memory upstreams and clock, driven from a test with the bodies a client sends."""

    engine: Engine
    clock: FakeClock
    approvals: InMemoryApprovals
    governance: StaticGovernanceTruth

    @property
    def families(self) -> dict[str, str]:
        return dict(self.context.manifest.families)

    @property
    def context(self) -> Context:
        return self.engine.context

    @property
    def uow(self) -> UnitOfWork:
        return self.engine.context.uow

    @property
    def log(self) -> EventLog:
        return self.engine.context.uow.log

    def intake(self, body: dict[str, Any], *, header_tenant: str | None = None, actor: str) -> Outcome:
        answer = self.engine.intake.submit(msgspec.json.encode(body), header_tenant=header_tenant, actor=actor)
        return Outcome(_plain(answer), created=answer.accepted and not getattr(answer, "duplicate", True))

    def evaluate_replay(self, body: dict[str, Any], *, actor: str) -> Outcome:
        answer, created = self.engine.replays.evaluate(convert(body, EvaluateReplay), actor=actor)
        return Outcome(_plain(answer), created)

    def propose(self, body: dict[str, Any], *, actor: str) -> Outcome:
        answer, created = self.engine.promotions.propose(convert(body, Propose), actor=actor)
        return Outcome(_plain(answer), created)

    def approve_check(self, proposal_id: str, *, actor: str) -> Outcome:
        return Outcome(_plain(self.engine.promotions.approve_check(ProposalRef(proposal_id), actor=actor)))

    def activate(self, proposal_id: str, *, actor: str) -> Outcome:
        return Outcome(_plain(self.engine.activations.activate(ProposalRef(proposal_id), actor=actor)))

    def rollback(self, body: dict[str, Any], *, actor: str) -> Outcome:
        return Outcome(_plain(self.engine.activations.rollback(convert(body, Rollback), actor=actor)))

    def expire(self, proposal_id: str, *, actor: str = PROCESSOR_ACTOR) -> Outcome | None:
        answer = self.engine.expiry.expire(proposal_id, actor=actor)
        return None if answer is None else Outcome(_plain(answer))

    def mark_revalidation_required(self, proposal_id: str, reason: str) -> Outcome | None:
        answer = self.engine.expiry.mark_revalidation_required(proposal_id, reason)
        return None if answer is None else Outcome(_plain(answer))

    def get_proposal(self, proposal_id: str) -> dict[str, Any]:
        return _plain(self.engine.audit.get_proposal(proposal_id))

    def get_run(self, run_id: str) -> dict[str, Any]:
        return _plain(self.engine.audit.get_run(run_id))

    def get_replay(self, replay_id: str) -> dict[str, Any]:
        return _plain(self.engine.audit.get_replay(replay_id))

    def get_target(self, tenant_id: str, target_type: str, target_key: str) -> dict[str, Any] | None:
        view = self.engine.audit.get_target(tenant_id, target_type, target_key)
        return None if view is None else _plain(view)

    def get_history(self, proposal_id: str, **bounds: Any) -> dict[str, Any]:
        return _plain(self.engine.audit.get_history(proposal_id, **bounds))

    def get_explanation(self, proposal_id: str) -> dict[str, Any]:
        return _plain(self.engine.audit.get_explanation(proposal_id))

    def approve(
        self,
        proposal: dict[str, Any],
        *,
        kind: str = "human",
        hours: float = 24,
        decision: str = "approved",
        change_hash: str | None = None,
    ) -> None:
        self.approvals.put(
            Approval(
                approval_id=f"appr-{proposal['proposal_id'][:8]}",
                proposal_id=proposal["proposal_id"],
                decision=decision,  # type: ignore[arg-type]
                approver_id="alice" if kind == "human" else "ci-bot",
                approver_kind=kind,  # type: ignore[arg-type]
                candidate_hash=proposal["candidate_hash"],
                provenance_hash=proposal["provenance_hash"],
                decided_at=self.clock.now,
                expires_at=self.clock.now + timedelta(hours=hours),
                change_hash=change_hash,
            )
        )


def postgres_url() -> str:
    return os.environ.get("DOBBY_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def database_url_for(backend: str, tmp_path: Path, pg_database_url: str | None) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'dobby-{uuid.uuid4().hex[:8]}.db'}"
    assert pg_database_url is not None
    return pg_database_url


def reset_postgres(url: str) -> None:
    """Drop every dobby table: the event store and the projections."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'dobby%'"
        ).fetchall()
        for (name,) in rows:
            connection.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')


@contextmanager
def make_world(database_url: str, *, mode: Mode = Mode.promotion_enabled, **limits: Any) -> Iterator[World]:
    clock = FakeClock()
    approvals = InMemoryApprovals()
    governance = StaticGovernanceTruth(builtin_document(read_manifest()))
    settings = Settings(database_url=database_url, service_mode=mode, **limits)
    log = open_event_log(settings)
    engine = build_engine(settings, log=log, governance=governance, approvals=approvals, clock=clock)
    engine.context.uow.create_tables()
    try:
        yield World(engine, clock, approvals, governance)
    finally:
        engine.close()


@dataclass
class SystemWorld(World):
    """A World with the read side: projections, processors and an in-memory Bobbin sink."""

    system: System = field(default=None)  # type: ignore[assignment]
    sink: InMemoryProvenanceSink = field(default_factory=InMemoryProvenanceSink)

    def step(self) -> int:
        return step(self.system)

    def catch_up(self) -> None:
        catch_up(self.system)


def step(system: System) -> int:
    """One round of the follower; a runner failing in it fails the test (the follower itself only records it)."""
    worked = system.follower.step()
    failing = {name: s.last_error for name, s in system.follower.status.items() if s.last_error}
    assert not failing, f"runners failing: {failing}"
    return worked


def catch_up(system: System) -> None:
    """The projections and the Bobbin publisher folded up to the head of the log, on this thread."""
    while step(system):
        pass


@contextmanager
def make_system(
    database_url: str, *, mode: Mode = Mode.promotion_enabled, sink: Any = None, **limits: Any
) -> Iterator[SystemWorld]:
    clock = FakeClock()
    approvals = InMemoryApprovals()
    governance = StaticGovernanceTruth(builtin_document(read_manifest()))
    settings = Settings(database_url=database_url, service_mode=mode, bobbin_path=None, **limits)
    memory_sink = sink or InMemoryProvenanceSink()
    system = build_system(settings, sink=memory_sink, governance=governance, approvals=approvals, clock=clock)
    system.init_storage()
    try:
        yield SystemWorld(system.engine, clock, approvals, governance, system=system, sink=memory_sink)
    finally:
        system.close()


def intake_body(families: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": "acme",
        "trace_id": "trace-1",
        "correlation_id": "corr-1",
        "outcome": "success",
        "guardrail_decision": "ALLOW",
        "family_versions": families,
        "target_hints": [TARGET],
    }
    body.update(overrides)
    return body


def replay_body(families: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": "acme",
        "target": TARGET,
        "family_versions": families,
        "metrics": {
            "baseline": {"accuracy": 0.80, "latency_ms": 120},
            "candidate": {"accuracy": 0.86, "latency_ms": 100},
        },
        "threshold_contract": {
            "mode": "all",
            "metrics": {"accuracy": {"direction": "increase"}, "latency_ms": {"direction": "decrease"}},
            "veto": ["accuracy"],
        },
        "workload_similar": True,
        "change": CHANGE,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def propose_body(replay_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": "acme",
        "replay_id": replay_id,
        "target": TARGET,
        "risk": "medium",
        "change": CHANGE,
        "baseline": {"template": "Hi {name}"},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def passed_replay(world: World, candidate_accuracy: float = 0.86, **overrides: Any) -> dict[str, Any]:
    metrics = {
        "baseline": {"accuracy": 0.80, "latency_ms": 120},
        "candidate": {"accuracy": candidate_accuracy, "latency_ms": 100},
    }
    outcome = world.evaluate_replay(replay_body(world.families, metrics=metrics, **overrides), actor="tester")
    assert outcome.body["verdict"] == "passed", outcome.body
    return outcome.body


def approved_proposal(
    world: World, candidate_accuracy: float = 0.86, target: dict[str, str] = TARGET, **overrides: Any
) -> dict[str, Any]:
    replay = passed_replay(world, candidate_accuracy, target=target)
    proposal = world.propose(propose_body(replay["replay_id"], target=target, **overrides), actor="tester").body
    world.approve(proposal)
    answer = world.approve_check(proposal["proposal_id"], actor="operator").body
    assert answer["state"] == "approved", answer
    return proposal


def eventually(condition: Callable[[], bool], timeout: float = 10.0, pause: float = 0.01) -> bool:
    """Whether `condition` became true within `timeout` seconds (a wait for a condition, never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(pause)
    return False


def race(actions: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run every action at once (released together by a barrier); each result is the action's value or the
    exception it raised, for the test to assert on."""
    barrier = threading.Barrier(len(actions))

    def run(action: Callable[[], T]) -> T | Exception:
        barrier.wait()
        try:
            return action()
        except Exception as error:
            return error

    with ThreadPoolExecutor(len(actions)) as pool:
        return list(pool.map(run, actions))


def warp_approval(proposal: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A Warp approval document granting `proposal`'s exact binding for an hour, by a human."""
    now = datetime.now(UTC)
    return {
        "approval_id": f"warp-{proposal['proposal_id'][:8]}",
        "proposal_id": proposal["proposal_id"],
        "decision": "approved",
        "approver": {"id": "alice", "kind": "human"},
        "binding": {"candidate_hash": proposal["candidate_hash"], "provenance_hash": proposal["provenance_hash"]},
        "decided_at": now.isoformat(),
        "expires_at": (now + timedelta(hours=1)).isoformat(),
        **overrides,
    }


def record_runs(log: EventLog, families: dict[str, str], count: int, at: datetime, tag: str = "bulk") -> None:
    """Many runs quickly: chunks of 500 Run streams per save, as a busy intake leaves them in the log."""
    for start in range(0, count, 500):
        runs = []
        for index in range(start, min(start + 500, count)):
            body = convert(intake_body(families, trace_id=f"{tag}-{index}"), IntakeSignal)
            run_hash = run_hash_of(body)
            runs.append(
                Run.accept(
                    run_id_for(run_hash),
                    body,
                    run_hash=run_hash,
                    provenance_hash=run_provenance_hash_of(body),
                    sampled=False,
                    learning_signal=True,
                    evidence_digest=None,
                    actor="load",
                    at=at,
                )
            )
        log.save(*runs)


class AppClient:
    """Blocking calls into an in-process app over `httpx.ASGITransport`, its event loop on a thread of its own."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            return await self._client.request(method, path, **kwargs)

        return self._portal.call(call)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """Another async client into the same app (for a client of our own, a generated one, to send through)."""
        return httpx.AsyncClient(transport=self._client._transport, base_url=self._client.base_url, **kwargs)

    def wait(self, coroutine: Callable[[], Awaitable[T]]) -> T:
        """`coroutine()` run on the app's event loop, its result."""
        return self._portal.call(coroutine)


@contextmanager
def running_app(app: Starlette, *, lifespan: bool = True) -> Iterator[AppClient]:
    """A client for `app`; with `lifespan`, the app's lifespan runs around it (what the app starts at startup,
    it stops at shutdown: the System it was built on is closed at the end)."""
    with anyio.from_thread.start_blocking_portal() as portal, ExitStack() as stack:
        if lifespan:
            stack.enter_context(portal.wrap_async_context_manager(app.router.lifespan_context(app)))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dobby.test")
        try:
            yield AppClient(portal, client)
        finally:
            portal.call(client.aclose)


@dataclass
class InProcess:
    """dobby built from Settings as `dobby serve` builds it, its app served in this process. What a real server
    does on threads of its own happens here when the test says so: `catch_up` (projections and Bobbin),
    `system.expiry.tick()` (the expiry processor), `refresh_fabric`, `flush_tallies`."""

    system: System
    client: AppClient

    @property
    def approvals(self) -> Path:
        return self.system.settings.warp_approvals_dir

    @property
    def bobbin(self) -> Path:
        assert self.system.settings.bobbin_path is not None
        return self.system.settings.bobbin_path

    def catch_up(self) -> None:
        catch_up(self.system)

    def refresh_fabric(self) -> None:
        governance = self.system.engine.context.governance
        assert isinstance(governance, RefreshingGovernanceTruth), governance
        governance.refresh()

    def flush_tallies(self) -> int:
        return self.system.tallies.flush()

    def write_approval(self, proposal: dict[str, Any], **overrides: Any) -> None:
        """Warp's decision on `proposal` as a file in the approvals directory (by default it grants it)."""
        self.approvals.mkdir(parents=True, exist_ok=True)
        approval = warp_approval(proposal, **overrides)
        (self.approvals / f"{proposal['proposal_id']}.json").write_text(json.dumps(approval))


@contextmanager
def serve_in_process(
    database_url: str, workdir: Path, *, clock: Clock = system_clock, **settings: Any
) -> Iterator[InProcess]:
    """The app of `dobby serve --no-background` on the Settings a test gives (promotion_enabled, approvals as
    files and Bobbin as a file in `workdir`, unless `settings` say otherwise), its lifespan running around the
    test. Storage is made first, so the app is out of warmup from its first request."""
    configured = {
        "database_url": database_url,
        "service_mode": Mode.promotion_enabled,
        "warp_approvals_dir": workdir / "approvals",
        "bobbin_path": workdir / "bobbin.jsonl",
        "fabric_refresh_seconds": 3600,  # refreshed by the test (refresh_fabric), not by the clock
        **settings,
    }
    system = build_system(Settings(**configured), clock=clock)
    system.init_storage()
    with running_app(create_app(system, background=False)) as client:
        yield InProcess(system, client)


def post(client: AppClient, path: str, body: Any, status: int, **headers: str) -> dict[str, Any]:
    """POST `body` to the learning API's `path`; the answer must have `status`; its JSON body."""
    answer = client.post(f"{LEARNING}{path}", json=body, headers=headers)
    assert answer.status_code == status, answer.text
    result: dict[str, Any] = answer.json()
    return result


def head_position(client: AppClient) -> int:
    """The log's last position, as /ready shows it (each runner's position plus its lag)."""
    ready = client.get("/ready").json()
    return max((p["position"] + p["lag"] for p in ready["projections"].values()), default=0)


def refused(client: AppClient, path: str, body: Any, status: int, code: str, **kwargs: Any) -> httpx.Response:
    """POST to the learning API's `path`: refused with `status` and error `code`, and nothing stored."""
    before = head_position(client)
    answer = client.post(f"{LEARNING}{path}", json=body, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code, answer.text
    assert head_position(client) == before, "a refused request stored something"
    return answer


def error_codes(answer: httpx.Response) -> list[str]:
    return [detail["code"] for detail in answer.json()["error"]["details"]]


def approved(served: InProcess, accuracy: float = 0.86) -> dict[str, Any]:
    """A proposal on TARGET through the API, approved by a Warp approval file."""
    body = replay_body(FAMILIES)
    body["metrics"]["candidate"]["accuracy"] = accuracy
    replay = post(served.client, "/replay/evaluate", body, 201)
    proposal = post(served.client, "/promotions/propose", propose_body(replay["replay_id"]), 201)
    served.write_approval(proposal)
    checked = post(served.client, "/promotions/approve-check", {"proposal_id": proposal["proposal_id"]}, 200)
    assert checked["state"] == "approved", checked
    return proposal


def samples(text: str, prefix: str) -> dict[str, float]:
    """The samples of a /metrics text whose name starts with `prefix`, keyed by the rest of the name."""
    found = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name, value = line.rsplit(" ", 1)
            found[name.removeprefix(prefix)] = float(value)
    return found


def metric(client: AppClient, sample: str) -> float:
    """One sample's value on /metrics (0 when it is not shown yet)."""
    return samples(client.get("/metrics").text, sample).get("", 0.0)


REPOSITORY = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`dobby ARGS` in a child process of this interpreter, with `env` over the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "dobby.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=REPOSITORY,
        timeout=120,
        check=False,
    )


def run_coroutine(make: Callable[[], Any]) -> Any:
    """`asyncio.run(make())` on a thread of its own: the session's browser (Playwright's sync API) may keep an event
    loop running on the main thread."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(make()))
        except BaseException as error:  # handed to the caller's thread
            outcome.append(error)

    worker = threading.Thread(target=run, name="test-event-loop")
    worker.start()
    worker.join(60)
    assert outcome, "the coroutine did not finish within 60 s"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]
