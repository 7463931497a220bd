"""Golden logs (SPEC §13): the database each earlier release wrote, on SQLite and PostgreSQL, served by this build
with no manual step — it starts and rebuilds its projections by itself, every view keeps every field the release
served (and fits today's types), verification passes, proofs check with the tests' own RFC 6962/9162 verifier
(also after the holes the old PostgreSQL build left in the log), and old lifecycles go on."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg import sql

from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.engine.audit.history import History
from dobby.engine.kernel.clock import parse_rfc3339
from dobby.engine.model.policy import FreezeView
from dobby.engine.model.proposal import ProposalView
from dobby.engine.model.replay import ReplayView
from dobby.engine.model.run import RunView
from dobby.engine.model.target import TargetRead
from dobby.engine.rules.modes import Mode
from dobby.http.app import create_app
from dobby.projections.rebuild import verify
from dobby.runtime.system import System
from tests import rfc6962
from tests.support import AppClient, FakeClock, eventually, postgres_url, run_cli, running_app

HERE = Path(__file__).resolve().parent
RELEASES = sorted(path.name for path in HERE.iterdir() if (path / "views-sqlite.json").exists())
LEARNING = "/api/v1/learning"
AUDIT = "/api/v1/audit"
VIEW_TYPES: dict[str, Any] = {"runs": RunView, "replays": ReplayView, "proposals": ProposalView, "histories": History}


@dataclass
class Upgraded:
    """A release's golden database served by this build: its app in-process, its clock a day after the log."""

    release: str
    backend: str
    url: str
    old: dict[str, Any]
    system: System
    client: AppClient
    clock: FakeClock
    approvals: Path

    def get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(path, params=params)
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text}"
        return answer.json()

    def post(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        answer = self.client.post(f"{LEARNING}{path}", json=body)
        assert answer.status_code == status, f"{path}: {answer.status_code} {answer.text}"
        result: dict[str, Any] = answer.json()
        return result

    def proposal(self, key: str) -> str:
        proposal_id: str = self.old["proposals_by_state"][key]
        return proposal_id

    def has(self, key: str) -> bool:
        return key in self.old["proposals_by_state"]


def versions_of(release: str) -> dict[str, int]:
    """The projection versions the release stored (none before versions: every projection at 0)."""
    with closing(sqlite3.connect(HERE / release / "sqlite.db")) as connection:
        try:
            return dict(connection.execute("SELECT name, version FROM dobby_projection_versions").fetchall())
        except sqlite3.OperationalError:
            return {}


def load_database(release: str, backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        copy = workdir / "golden.db"
        shutil.copyfile(HERE / release / "sqlite.db", copy)
        yield f"sqlite:///{copy}"
        return
    admin = postgres_url()
    name = f"dobby_golden_{release}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        if os.environ.get("DOBBY_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"no PostgreSQL server answers at {admin}: {error} (DOBBY_REQUIRE_POSTGRES=1)")
        pytest.skip(f"no PostgreSQL server answers at {admin}: {error}")
    url = f"{admin.rpartition('/')[0]}/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute((HERE / release / "postgres.sql").read_text())
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module", params=[(r, b) for r in RELEASES for b in ("sqlite", "postgres")], ids=str)
def upgraded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgraded]:
    release, backend = request.param
    workdir = tmp_path_factory.mktemp(f"golden-{release}-{backend}")
    old = json.loads((HERE / release / f"views-{backend}.json").read_text())
    clock = FakeClock(parse_rfc3339(old["made_at"]) + timedelta(days=1))
    for url in load_database(release, backend, workdir):
        settings = Settings(
            database_url=url,
            service_mode=Mode.promotion_enabled,
            warp_approvals_dir=workdir / "approvals",
            bobbin_path=workdir / "bobbin.jsonl",
            processor_interval_seconds=3600,  # the tests tick the processor themselves
            fabric_refresh_seconds=3600,
        )
        system = build_system(settings, clock=clock)
        with running_app(create_app(system, background=True)) as client:
            yield Upgraded(release, backend, url, old, system, client, clock, workdir / "approvals")


def contains(old: Any, new: Any, where: str = "") -> list[str]:
    """Where `new` differs from `old` on a field `old` has (new fields in `new` are fine)."""
    if isinstance(old, dict):
        if not isinstance(new, dict):
            return [f"{where}: {old!r} became {new!r}"]
        return [d for key, value in old.items() for d in contains(value, new.get(key, KeyError), f"{where}.{key}")]
    if isinstance(old, list):
        if not isinstance(new, list) or len(new) != len(old):
            return [f"{where}: {old!r} became {new!r}"]
        return [d for i, (o, n) in enumerate(zip(old, new, strict=True)) for d in contains(o, n, f"{where}[{i}]")]
    return [] if old == new else [f"{where}: {old!r} became {new!r}"]


def caught_up(up: Upgraded) -> bool:
    versions = up.system.store.stored_versions()
    head = up.system.engine.position()
    positions = up.system.store.positions()
    current = all(versions.get(name) == p.version for name, p in up.system.store.projections.items())
    return current and all(positions.get(name) == head for name in up.system.store.projections)


def test_it_starts_and_rebuilds_every_projection_by_itself(upgraded: Upgraded) -> None:
    assert eventually(lambda: caught_up(upgraded), timeout=30), upgraded.system.projection_health()
    assert upgraded.system.engine.position() == upgraded.old["head"]
    ready = upgraded.get("/ready")
    assert ready["status"] == "ready", ready
    assert all(p["rebuilding"] is None for name, p in ready["projections"].items() if name != "bobbin")
    overview = upgraded.client.get("/console")
    assert overview.status_code == 200 and "Version" in overview.text, overview.text[:500]
    rebuilt = upgraded.system.follower.upgrader.rebuilt
    stored = versions_of(upgraded.release)  # a release before versions had (at least) these four, all at 0
    kept = set(stored) or {"runs", "replays", "proposals", "counters"}
    stale = {name for name in kept if upgraded.system.store.projections[name].version > stored.get(name, 0)}
    assert stale <= set(rebuilt), "the release's tables were not rebuilt"
    if stored:  # a release with versions: what is current is not rebuilt
        assert set(rebuilt) <= stale, f"rebuilt {sorted(set(rebuilt) - stale)} although at today's version"


def test_every_view_keeps_every_field_the_release_served_and_fits_todays_types(upgraded: Upgraded) -> None:
    assert eventually(lambda: caught_up(upgraded), timeout=30)
    differences = []
    for kind, path in (
        ("runs", "runs/{}"),
        ("replays", "replays/{}"),
        ("proposals", "proposals/{}"),
        ("histories", "proposals/{}/history"),
    ):
        for key, old in upgraded.old[kind].items():
            new = upgraded.get(f"{LEARNING}/{path.format(key)}")
            differences += contains(old, new, f"{kind}[{key}]")
            msgspec.convert(new, VIEW_TYPES[kind])  # today's type, so today's published schema
    for key, old in upgraded.old["targets"].items():
        tenant, kind, target = key.split("/", 2)
        new = upgraded.get(f"{LEARNING}/targets/{kind}/{target}", tenant_id=tenant)
        differences += contains(old, new, f"targets[{key}]")
        msgspec.convert(new, TargetRead)
    for tenant, old in upgraded.old.get("freezes", {}).items():
        new = upgraded.get(f"{LEARNING}/freezes", tenant_id=tenant, include="past")
        differences += contains(old, new, f"freezes[{tenant}]")
        [msgspec.convert(item, FreezeView) for item in new["items"]]
    assert not differences, "\n".join(differences[:30])
    histories = [upgraded.get(f"{LEARNING}/proposals/{pid}/history") for pid in upgraded.old["proposals"]]
    assert all(history["chain_valid"] for history in histories)


def test_projections_verify_and_the_audit_commands_pass(upgraded: Upgraded) -> None:
    assert eventually(lambda: caught_up(upgraded), timeout=30)
    log = upgraded.system.engine.context.uow.log
    assert {name: verify(upgraded.system.store, log, name) for name in upgraded.system.store.projections} == {
        name: [] for name in upgraded.system.store.projections
    }
    env = {"DOBBY_DATABASE_URL": upgraded.url, "DOBBY_BOBBIN_PATH": ""}
    for command in (["projections", "verify"], ["audit", "--verify"], ["audit", "verify-log"]):
        done = run_cli(command, env)
        assert done.returncode == 0, f"dobby {' '.join(command)}: {done.stdout}{done.stderr}"


def event_positions(up: Upgraded) -> dict[int, str]:
    """Every stored event's position and event_hash, read from the log itself."""
    entries = up.system.engine.context.uow.log.recorder.select_notifications(start=0, limit=100_000)
    return {int(n.id): json.loads(n.state)["event_hash"] for n in entries}


def test_inclusion_and_consistency_proofs_verify_after_holes_at_the_given_leaf_index(upgraded: Upgraded) -> None:
    assert eventually(lambda: caught_up(upgraded), timeout=30)
    events = event_positions(upgraded)
    head = max(events)
    holes = [p for p in range(1, head + 1) if p not in events]
    if upgraded.backend == "postgres" and upgraded.release == "40654e9":
        assert holes, "the old PostgreSQL build's golden log should have empty positions"
    checkpoint = upgraded.get(f"{AUDIT}/checkpoint")
    size = checkpoint["tree_size"]
    assert size == len(events)
    root = bytes.fromhex(checkpoint["root"])
    for rank, position in enumerate(sorted(events)):
        proof = upgraded.get(f"{AUDIT}/proofs/inclusion", position=position, tree_size=size)
        assert proof["leaf_index"] == rank and proof["event_hash"] == events[position]
        leaf = rfc6962.leaf(bytes.fromhex(events[position].removeprefix("sha256:")))
        assert proof["leaf_hash"] == leaf.hex()
        path = [bytes.fromhex(node) for node in proof["proof"]]
        assert rfc6962.verify_inclusion(rank, size, leaf, path, root), (position, rank)
        # the event is in the tree of exactly the events up to it: rank + 1, whatever its position
        smallest = upgraded.get(f"{AUDIT}/proofs/inclusion", position=position, tree_size=rank + 1)
        assert smallest["leaf_index"] == rank
    for hole in holes:
        answer = upgraded.client.get(f"{AUDIT}/proofs/inclusion", params={"position": hole})
        assert answer.status_code == 422, answer.text
    sizes = {1, size, *(len([p for p in events if p < hole]) for hole in holes)}
    old = upgraded.old.get("served", {}).get("checkpoint")
    if old is not None:
        sizes.add(old["tree_size"])
    for first in sorted(s for s in sizes if s >= 1):
        answer = upgraded.get(f"{AUDIT}/proofs/consistency", first=first, second=size)
        path = [bytes.fromhex(node) for node in answer["proof"]]
        first_root = bytes.fromhex(answer["first_root"])
        assert rfc6962.verify_consistency(first, size, path, first_root, root), first
        if old is not None and first == old["tree_size"]:
            assert answer["first_root"] == old["root"], "the checkpoint the release signed is no longer a prefix"


def approve(up: Upgraded, proposal_id: str, approvers: int = 1) -> None:
    view = up.get(f"{LEARNING}/proposals/{proposal_id}")
    people = [{"id": f"person-{i}", "kind": "human"} for i in range(approvers)]
    document = {
        "approval_id": f"warp-after-{proposal_id[:8]}",
        "proposal_id": proposal_id,
        "decision": "approved",
        "approver": people[0],
        "approvers": people,
        "binding": {"candidate_hash": view["candidate_hash"], "provenance_hash": view["provenance_hash"]},
        "decided_at": (up.clock.now - timedelta(minutes=1)).isoformat(),
        "expires_at": (up.clock.now + timedelta(days=7)).isoformat(),
    }
    up.approvals.mkdir(parents=True, exist_ok=True)
    (up.approvals / f"{proposal_id}.json").write_text(json.dumps(document))


def state(up: Upgraded, key: str) -> str:
    head = up.system.engine.position()
    view = up.get(f"{LEARNING}/proposals/{up.proposal(key)}", min_position=head)
    result: str = view["state"]
    return result


def test_old_lifecycles_go_on(upgraded: Upgraded) -> None:
    up = upgraded
    assert eventually(lambda: caught_up(up), timeout=30)
    before = up.get(f"{AUDIT}/checkpoint")
    approve(up, up.proposal("generated"))
    assert up.post("/promotions/approve-check", {"proposal_id": up.proposal("generated")})["state"] == "approved"
    approve(up, up.proposal("replay_validated"))
    answer = up.post("/promotions/approve-check", {"proposal_id": up.proposal("replay_validated")})
    assert answer["state"] == "approved"
    assert up.post("/promotions/activate", {"proposal_id": up.proposal("approved")})["state"] == "active"
    rolled = up.post("/promotions/rollback", {"proposal_id": up.proposal("active"), "reason": "after the upgrade"})
    assert rolled["state"] == "rolled_back" and rolled["restored_baseline"] == {"template": "Hi"}
    up.system.expiry.tick()
    assert state(up, "expires_after_upgrade") == "expired"
    assert state(up, "generated") == "approved"  # a year's TTL: not expired
    if up.has("quorum_insufficient"):
        approve(up, up.proposal("quorum_insufficient"), approvers=2)
        answer = up.post("/promotions/approve-check", {"proposal_id": up.proposal("quorum_insufficient")})
        assert answer["state"] == "approved", answer
    if up.has("frozen"):
        refused = up.client.post(f"{LEARNING}/promotions/activate", json={"proposal_id": up.proposal("frozen")})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "frozen", refused.text
    if up.has("scheduled"):
        up.clock.advance(timedelta(days=2).total_seconds())
        up.system.expiry.tick()
        assert state(up, "scheduled") == "active"
        history = up.get(f"{LEARNING}/proposals/{up.proposal('scheduled')}/history")
        assert history["events"][-1]["actor"] == "dobby:scheduler" and history["chain_valid"]
    log = up.system.engine.context.uow.log
    assert eventually(lambda: caught_up(up), timeout=10)
    assert all(not verify(up.system.store, log, name) for name in up.system.store.projections)
    up.system.digest.refresh()
    after = up.get(f"{AUDIT}/checkpoint")
    assert after["tree_size"] == len(event_positions(up)) > before["tree_size"]
    answer = up.get(f"{AUDIT}/proofs/consistency", first=before["tree_size"], second=after["tree_size"])
    path = [bytes.fromhex(node) for node in answer["proof"]]
    first_root, second_root = bytes.fromhex(before["root"]), bytes.fromhex(after["root"])
    assert rfc6962.verify_consistency(before["tree_size"], after["tree_size"], path, first_root, second_root)


def test_an_event_after_a_hole_is_in_the_tree_of_its_rank_not_of_its_position(upgraded: Upgraded) -> None:
    """SPEC §11: on a log with holes, `position=P&tree_size=N` is judged by the event's rank (leaf index), so the
    last event of a log with one hole before it, at position 99 of 98 events, is in the tree of 98."""
    assert eventually(lambda: caught_up(upgraded), timeout=30)
    events = event_positions(upgraded)
    head = max(events)
    if head == len(events):
        pytest.skip("this golden log has no holes")
    size = upgraded.get(f"{AUDIT}/checkpoint")["tree_size"]
    last = sorted(events)[size - 1]
    assert last > size  # a position beyond the tree's size, the event is in the tree all the same
    proof = upgraded.get(f"{AUDIT}/proofs/inclusion", position=last, tree_size=size)
    assert proof["leaf_index"] == size - 1 and proof["position"] == last
    leaf = bytes.fromhex(proof["leaf_hash"])
    path = [bytes.fromhex(node) for node in proof["proof"]]
    assert rfc6962.verify_inclusion(size - 1, size, leaf, path, bytes.fromhex(proof["root"]))
    assert not rfc6962.verify_inclusion(last - 1, size, leaf, path, bytes.fromhex(proof["root"]))  # not P − 1
    refused = upgraded.client.get(f"{AUDIT}/proofs/inclusion", params={"position": last, "tree_size": size - 1})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "beyond_checkpoint", refused.text


def test_a_freeze_stored_with_a_year_before_1970_is_read_as_written_and_never_a_500(upgraded: Upgraded) -> None:
    """c517a40 stored starts_at 0900-01-01T00:00:00Z as '900-01-01T…' and answered every activate and explain of
    that tenant with 500. Today it is read as written and compared as if clamped to 1970 (SPEC §13)."""
    if not upgraded.has("ancient_frozen"):
        pytest.skip("this release had no freezes")
    assert eventually(lambda: caught_up(upgraded), timeout=30)
    if not upgraded.get(f"{LEARNING}/freezes", tenant_id="ancient")["items"]:
        pytest.skip("this release refused the year 900 at the door (issue 21 on): nothing odd was stored")
    proposal_id = upgraded.proposal("ancient_frozen")
    explained = upgraded.get(f"{LEARNING}/proposals/{proposal_id}/explain")
    guard = next(g for g in explained["guards"] if g["name"] == "not_frozen")
    assert guard["passed"] is False and "900-01-01T00:00:00.000000Z" in guard["reason"], guard
    refused = upgraded.client.post(f"{LEARNING}/promotions/activate", json={"proposal_id": proposal_id})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "frozen", refused.text
    freezes = upgraded.get(f"{LEARNING}/freezes", tenant_id="ancient")["items"]
    assert [f["starts_at"] for f in freezes] == ["900-01-01T00:00:00.000000Z"]
    decisions = upgraded.client.get(f"{LEARNING}/decisions", params={"tenant_id": "ancient"})
    assert decisions.status_code == 200, decisions.text


def test_old_proposals_show_their_change_hash_and_old_promotions_have_receipts(upgraded: Upgraded) -> None:
    """Custody (issue 22) over an old log: a proposal made before change_hash shows the hash of its change and
    `change_judged: null`; an activation the release made has a receipt whose subject is that hash."""
    up = upgraded
    assert eventually(lambda: caught_up(up), timeout=30)
    view = up.get(f"{LEARNING}/proposals/{up.proposal('active')}")
    encoded = json.dumps(view["change"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert view["change_hash"] == "sha256:" + hashlib.sha256(encoded).hexdigest()
    served = up.old["proposals"][up.proposal("active")]
    assert view["change_judged"] == served.get("change_judged")  # null before custody; as judged from issue 22 on
    items = up.get(f"{AUDIT}/receipts/{up.proposal('active')}")["items"]
    statements = [json.loads(base64.b64decode(item["payload"])) for item in items]
    actions = [s["predicate"]["action"] for s in statements]
    assert actions in (["activation"], ["activation", "rollback"]), actions  # rolled back by an earlier test or not
    assert "sha256:" + statements[0]["subject"][0]["digest"]["sha256"] == view["change_hash"]
    history = up.get(f"{LEARNING}/proposals/{up.proposal('active')}/history")
    activated = next(e for e in history["events"] if e["type"] == "Activated")
    assert statements[0]["predicate"]["event_hash"] == activated["event_hash"]
