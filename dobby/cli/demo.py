"""`dobby demo`: one whole lifecycle, approved through a Warp approvals directory — by default on a fresh SQLite
file of its own (in promotion_enabled mode), so it can be run again and again and touches no configured store."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import msgspec

from dobby.adapters.settings import Settings, database_display, load_settings
from dobby.bootstrap import build_engine
from dobby.engine.commands.activation import Rollback
from dobby.engine.commands.boundary import convert
from dobby.engine.commands.intake import IntakeAccepted
from dobby.engine.commands.promotion import ProposalRef, Propose
from dobby.engine.commands.replay import EvaluateReplay
from dobby.engine.kernel.clock import rfc3339, system_clock
from dobby.engine.rules.modes import Mode


def demo_settings(database: str | None) -> Settings:
    """The configured settings on `database`; without one, on a fresh SQLite file and approvals directory of the
    demo's own in the system's temporary directory. Activation is requested in the demo's own process either way
    (a whole lifecycle is what it shows; a store named by --database is the operator's explicit consent)."""
    settings = load_settings(os.environ)
    if database is not None:
        named = load_settings({**os.environ, "DOBBY_DATABASE_URL": database})
        return dataclasses.replace(named, bobbin_path=None, service_mode=Mode.promotion_enabled)
    home = Path(tempfile.mkdtemp(prefix="dobby-demo-"))
    return dataclasses.replace(
        settings,
        database_url=f"sqlite:///{home / 'dobby.db'}",
        warp_approvals_dir=home / "warp-approvals",
        bobbin_path=None,
        service_mode=Mode.promotion_enabled,
    )


def run_demo(database: str | None = None) -> int:
    settings = demo_settings(database)
    print(f"database     {database_display(settings.database_url)} (mode {settings.service_mode.name})")
    engine = build_engine(settings)
    engine.context.uow.create_tables()
    families = dict(engine.context.manifest.families)
    target = {"type": "prompt_template", "id": f"demo-{uuid.uuid4().hex[:8]}"}
    change = {"template": "Hello, {name}!"}
    try:
        run = engine.intake.submit(
            msgspec.json.encode(
                {
                    "tenant_id": "demo",
                    "trace_id": f"trace-{uuid.uuid4()}",
                    "correlation_id": "demo",
                    "outcome": "success",
                    "guardrail_decision": "ALLOW",
                    "family_versions": families,
                    "target_hints": [target],
                }
            ),
            actor="demo",
        )
        assert isinstance(run, IntakeAccepted), "a success trace is never sampled out"
        print(f"intake       run {run.run_id} ({run.run_hash[:19]}…)")
        replay, _ = engine.replays.evaluate(
            convert(
                {
                    "tenant_id": "demo",
                    "target": target,
                    "family_versions": families,
                    "metrics": {"baseline": {"accuracy": 0.81}, "candidate": {"accuracy": 0.87}},
                    "threshold_contract": {"mode": "all", "metrics": {"accuracy": {"direction": "increase"}}},
                    "workload_similar": True,
                    "run_ids": [run.run_id],
                    "change": change,
                },
                EvaluateReplay,
            ),
            actor="demo",
        )
        print(f"replay       {replay.replay_id} verdict {replay.verdict}, judged change {replay.change_hash}")
        proposal, _ = engine.promotions.propose(
            convert(
                {
                    "tenant_id": "demo",
                    "replay_id": replay.replay_id,
                    "target": target,
                    "risk": "medium",
                    "baseline": {"template": "Hi {name}"},
                },
                Propose,
            ),
            actor="demo",
        )
        proposal_id = proposal.proposal_id
        print(f"propose      {proposal_id} state {proposal.state}, the judged change {proposal.change_hash}")
        now = system_clock()
        approval = {
            "approval_id": f"demo-{proposal_id[:8]}",
            "proposal_id": proposal_id,
            "decision": "approved",
            "approver": {"id": "demo-human", "kind": "human"},
            "binding": {
                "candidate_hash": proposal.candidate_hash,
                "provenance_hash": proposal.provenance_hash,
                "change_hash": proposal.change_hash,
            },
            "decided_at": rfc3339(now),
            "expires_at": rfc3339(now + timedelta(hours=1)),
        }
        settings.warp_approvals_dir.mkdir(parents=True, exist_ok=True)
        approval_path = settings.warp_approvals_dir / f"{proposal_id}.json"
        approval_path.write_text(json.dumps(approval, indent=2), encoding="utf-8")
        print(f"approval     written to {approval_path}")
        checked = engine.promotions.approve_check(ProposalRef(proposal_id), actor="demo")
        print(f"approve-check outcome {checked.approval_outcome} state {checked.state}")
        active = engine.activations.activate(ProposalRef(proposal_id), actor="demo")
        print(f"activate     state {active.state}, live content {active.change_hash}")
        rolled = engine.activations.rollback(Rollback(proposal_id, "demo over"), actor="demo")
        print(f"rollback     state {rolled.state}, restored {rolled.restored_baseline}")
        history = engine.audit.get_history(proposal_id)
        print(f"history      {len(history.events)} events, chain_valid {history.chain_valid}")
        for event in history.events:
            print(f"  v{event.version} {event.type:<16} {event.state_before or '—'} → {event.state_after}")
        if database is None:
            print(f"look at it:  DOBBY_DATABASE_URL={settings.database_url} dobby serve   # then open /console")
    finally:
        engine.close()
    return 0
