"""The scenario a golden log records, run through an earlier release's own code (see make_golden.py).

Run as `python tests/golden/scenario.py VIEWS_JSON` with PYTHONPATH at the release's exported tree and the
release's settings in DOBBY_* variables. It imports nothing of today's tree: only the release's `dobby` and the
libraries. It drives the release's in-process app over httpx.ASGITransport (its lifespan running, so its
projections follow the log), writes Warp approvals as files, ticks its expiry processor, and writes every view
the release served to VIEWS_JSON. Features a release lacks (freezes, observations, …) are skipped for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from dobby.bootstrap import system_from_environment
from dobby.http.app import create_app

LEARNING = "/api/v1/learning"
FAMILIES: dict[str, str] = {}  # Fabric's families, as the release's contract view names them
MADE_AT = datetime.now(UTC)
DAY = timedelta(days=1)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Scenario:
    def __init__(self, client: httpx.AsyncClient, system: Any, approvals: Path, extras: bool) -> None:
        self.client = client
        self.system = system
        self.approvals = approvals
        self.extras = extras
        self.position = 0
        self.ids: dict[str, Any] = {"runs": [], "replays": [], "proposals": {}, "freezes": [], "tenants": []}
        self.served: dict[str, Any] = {}

    async def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201)) -> Any:
        answer = await self.client.request(method, path, json=body)
        if answer.status_code not in expect:
            raise AssertionError(f"{method} {path} {body!r}: {answer.status_code} {answer.text}")
        data = answer.json()
        if isinstance(data, dict) and isinstance(data.get("position"), int):
            self.position = max(self.position, data["position"])
        return data

    async def read(self, path: str, **params: Any) -> Any:
        """A read once the projections have folded every write made so far."""
        for _ in range(200):
            answer = await self.client.get(path, params={"min_position": self.position, **params})
            if answer.status_code != 503:
                break
            await asyncio.sleep(0.05)
        assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.text}"
        return answer.json()

    # intake and replays

    async def intake(self, tenant: str, trace: str, outcome: str = "success", **extra: Any) -> dict[str, Any]:
        body = {
            "tenant_id": tenant,
            "trace_id": trace,
            "correlation_id": f"corr-{trace}",
            "outcome": outcome,
            "guardrail_decision": "ALLOW",
            "family_versions": FAMILIES,
            "target_hints": [{"type": "prompt_template", "id": "greeting"}],
            **extra,
        }
        answer: dict[str, Any] = await self.call("POST", f"{LEARNING}/signals/intake", body)
        if answer.get("accepted") and answer["run_id"] not in self.ids["runs"]:
            self.ids["runs"].append(answer["run_id"])
        return answer

    async def replay(self, tenant: str, target: str, **overrides: Any) -> dict[str, Any]:
        body = {
            "tenant_id": tenant,
            "target": {"type": "prompt_template", "id": target},
            "family_versions": FAMILIES,
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
            **overrides,
        }
        answer: dict[str, Any] = await self.call("POST", f"{LEARNING}/replay/evaluate", body)
        if answer["replay_id"] not in self.ids["replays"]:
            self.ids["replays"].append(answer["replay_id"])
        return answer

    async def intakes_and_replays(self) -> None:
        first = await self.intake("acme", "trace-1")
        again = await self.intake("acme", "trace-1")
        assert again["duplicate"] is True and again["run_id"] == first["run_id"]
        await self.intake("acme", "trace-failure", "failure")
        await self.intake("acme", "trace-partial", "partial", target_hints=[])
        outcomes = [await self.intake("acme", f"neutral-{i}", "neutral_success") for i in range(12)]
        assert any(not o["accepted"] for o in outcomes) and any(o["accepted"] for o in outcomes)
        self.served["sampled_out"] = [o for o in outcomes if not o["accepted"]][:2]
        await self.replay("acme", "r-passed", run_ids=[first["run_id"]])
        duplicate = await self.replay("acme", "r-passed", run_ids=[first["run_id"]])
        assert duplicate["duplicate"] is True
        await self.replay("acme", "r-dissimilar", workload_similar=False)
        worse = {"baseline": {"accuracy": 0.80, "latency_ms": 120}, "candidate": {"accuracy": 0.70, "latency_ms": 90}}
        await self.replay("acme", "r-veto", metrics=worse)
        mixed = {"baseline": {"accuracy": 0.80, "latency_ms": 120}, "candidate": {"accuracy": 0.86, "latency_ms": 130}}
        majority = {
            "mode": "majority",
            "metrics": {"accuracy": {"direction": "increase"}, "latency_ms": {"direction": "decrease"}},
            "veto": [],
        }
        await self.replay("acme", "r-majority", metrics=mixed, threshold_contract=majority)
        drifted = {**FAMILIES, next(iter(FAMILIES)): "0.0.0-old"}
        await self.replay("acme", "r-drift", family_versions=drifted)
        intake_schema = (await self.call("GET", "/openapi.json"))["components"]["schemas"]["IntakeSignal"]
        if "served" in intake_schema["properties"]:  # SPEC §15, from the release after 503c020 on
            served = [{"type": "prompt_template", "id": "greeting", "live_hash": "sha256:" + "ab" * 32}]
            await self.intake("acme", "trace-served", served=served)

    # proposals

    async def judges_changes(self) -> bool:
        """Whether the release's replays name the change they judge (SPEC §4.3, from issue 22 on): then they must,
        for the change to be proposed (DOBBY_REQUIRE_JUDGED_CHANGE)."""
        schemas = (await self.call("GET", "/openapi.json"))["components"]["schemas"]
        return "change" in schemas["EvaluateReplay"]["properties"]

    async def propose(self, key: str, tenant: str, target: str, risk: str = "low", **extra: Any) -> dict[str, Any]:
        change = {"template": f"Hello from {key}"}
        named = {"change": change} if await self.judges_changes() else {}
        replay = await self.replay(tenant, target, **named)
        body = {
            "tenant_id": tenant,
            "replay_id": replay["replay_id"],
            "target": {"type": "prompt_template", "id": target},
            "risk": risk,
            "change": change,
            "baseline": {"template": "Hi"},
            "rationale": f"golden {key}",
            "ttl_seconds": 31_536_000,
            **extra,
        }
        proposal: dict[str, Any] = await self.call("POST", f"{LEARNING}/promotions/propose", body)
        self.ids["proposals"][key] = proposal["proposal_id"]
        return proposal

    def approve(self, proposal: dict[str, Any], decision: str = "approved", **overrides: Any) -> None:
        document = {
            "approval_id": f"warp-{proposal['proposal_id'][:8]}",
            "proposal_id": proposal["proposal_id"],
            "decision": decision,
            "approver": {"id": "alice", "kind": "human"},
            "binding": {"candidate_hash": proposal["candidate_hash"], "provenance_hash": proposal["provenance_hash"]},
            "decided_at": stamp(MADE_AT - timedelta(minutes=1)),
            "expires_at": stamp(MADE_AT + 30 * DAY),
            **overrides,
        }
        self.approvals.mkdir(parents=True, exist_ok=True)
        (self.approvals / f"{proposal['proposal_id']}.json").write_text(json.dumps(document))

    async def check(self, proposal: dict[str, Any]) -> dict[str, Any]:
        body = {"proposal_id": proposal["proposal_id"]}
        answer: dict[str, Any] = await self.call("POST", f"{LEARNING}/promotions/approve-check", body)
        return answer

    async def approved(self, key: str, tenant: str, target: str, **extra: Any) -> dict[str, Any]:
        proposal = await self.propose(key, tenant, target, **extra)
        self.approve(proposal)
        assert (await self.check(proposal))["state"] == "approved"
        return proposal

    async def activate(self, proposal: dict[str, Any], **extra: Any) -> Any:
        body = {"proposal_id": proposal["proposal_id"], **extra}
        return await self.call("POST", f"{LEARNING}/promotions/activate", body, expect=(200, 202))

    async def every_state(self) -> None:
        generated = await self.propose("generated", "acme", "p-generated")
        duplicate = await self.call(
            "POST",
            f"{LEARNING}/promotions/propose",
            {
                "tenant_id": "acme",
                "replay_id": generated["replay_id"],
                "target": generated["target"],
                "risk": "low",
                "change": generated["change"],
                "baseline": generated["baseline"],
                "rationale": "golden generated",
                "ttl_seconds": 31_536_000,
            },
        )
        assert duplicate["duplicate"] is True
        validated = await self.propose("replay_validated", "acme", "p-validated", risk="medium")
        assert (await self.check(validated))["state"] == "replay_validated"  # no approval yet: pending
        await self.approved("approved", "acme", "p-approved", risk="medium")
        active = await self.approved("active", "acme", "p-active")
        await self.activate(active)
        rolled = await self.approved("rolled_back", "acme", "p-rolled")
        await self.activate(rolled)
        await self.call(
            "POST",
            f"{LEARNING}/promotions/rollback",
            {"proposal_id": rolled["proposal_id"], "reason": "golden rollback"},
        )
        rejected = await self.propose("blocked_rejected", "acme", "p-rejected")
        self.approve(rejected, decision="rejected")
        assert (await self.check(rejected))["state"] == "blocked"
        mismatched = await self.propose("blocked_mismatched", "acme", "p-mismatched")
        self.approve(
            mismatched,
            binding={"candidate_hash": "sha256:" + "0" * 64, "provenance_hash": mismatched["provenance_hash"]},
        )
        assert (await self.check(mismatched))["state"] == "blocked"
        raced = await self.propose("raced", "acme", "p-raced")
        self.approve(raced)
        answers = await asyncio.gather(
            *(
                self.client.post(f"{LEARNING}/promotions/approve-check", json={"proposal_id": raced["proposal_id"]})
                for _ in range(6)
            )
        )
        assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
        self.position = max([self.position] + [a.json().get("position", 0) for a in answers])
        await self.propose("expired_ttl", "acme", "p-expired", ttl_seconds=1)
        await self.propose("expires_after_upgrade", "acme", "p-expiring", ttl_seconds=3600)
        await self.propose("expired_revalidate", "acme", "p-revalidate")
        drifted = {**FAMILIES, next(iter(FAMILIES)): "0.0.0-old"}
        await self.replay("acme", "p-revalidate", family_versions=drifted)
        await asyncio.sleep(1.2)
        await asyncio.to_thread(self.system.expiry.tick)
        self.position = max(self.position, await asyncio.to_thread(self.system.engine.position))

    async def policy(self) -> None:
        """What c517a40 added (SPEC §12): freezes, stop/resume, scheduled activation, observations, quorum."""
        self.ids["tenants"] += ["policy", "ancient"]
        until = stamp(MADE_AT + 30 * DAY)
        lifted = await self.call(
            "POST",
            f"{LEARNING}/freezes",
            {"tenant_id": "policy", "targets": "*", "ends_at": until, "reason": "golden freeze, lifted"},
        )
        await self.call("DELETE", f"{LEARNING}/freezes/{lifted['freeze_id']}?reason=golden%20lift")
        standing = await self.call(
            "POST",
            f"{LEARNING}/freezes",
            {"tenant_id": "policy", "targets": "prompt_template:frozen-*", "ends_at": until, "reason": "golden freeze"},
        )
        self.ids["freezes"] += [lifted["freeze_id"], standing["freeze_id"]]
        await self.call("POST", f"{LEARNING}/stop", {"tenant_id": "policy", "reason": "golden stop"})
        await self.call("POST", f"{LEARNING}/resume", {"tenant_id": "policy", "reason": "golden resume"})
        await self.approved("frozen", "policy", "frozen-1")

        later = await self.approved("scheduled", "acme", "p-scheduled")
        answer = await self.activate(later, not_before=stamp(MADE_AT + 2 * DAY))
        assert answer["scheduled_for"], answer
        fired = await self.approved("scheduled_fired", "acme", "p-fired")
        await self.activate(fired, not_before=stamp(datetime.now(UTC) + timedelta(seconds=1)))
        await asyncio.sleep(1.5)
        await asyncio.to_thread(self.system.expiry.tick)
        self.position = max(self.position, await asyncio.to_thread(self.system.engine.position))

        active = {"proposal_id": self.ids["proposals"]["active"]}
        healthy = {"accuracy": 0.86, "latency_ms": 100}
        await self.call("POST", f"{LEARNING}/promotions/observe", {**active, "metrics": healthy})
        watched = await self.approved("auto_rolled_back", "acme", "p-watched")
        await self.activate(watched)
        regressed = {"accuracy": 0.50, "latency_ms": 100}
        answer = await self.call(
            "POST", f"{LEARNING}/promotions/observe", {"proposal_id": watched["proposal_id"], "metrics": regressed}
        )
        assert answer["rolled_back"] is True, answer
        kept = await self.approved("regressed_no_auto_rollback", "acme", "p-kept", auto_rollback=False)
        await self.activate(kept)
        answer = await self.call(
            "POST", f"{LEARNING}/promotions/observe", {"proposal_id": kept["proposal_id"], "metrics": regressed}
        )
        assert answer["rolled_back"] is False, answer

        quorum = await self.propose("quorum_approved", "acme", "p-quorum", risk="critical")
        pair = [{"id": "alice", "kind": "human"}, {"id": "bob", "kind": "human"}]
        self.approve(quorum, approvers=pair)
        assert (await self.check(quorum))["state"] == "approved"
        short = await self.propose("quorum_insufficient", "acme", "p-short", risk="critical")
        self.approve(short)
        answer = await self.check(short)
        assert answer["approval_outcome"] == "insufficient_approver", answer

        self.served["checkpoint"] = await self.call("GET", "/api/v1/audit/checkpoint")
        # c517a40 stored this starts_at as '900-01-01T…'; every activate/explain of the tenant then answered 500.
        await self.approved("ancient_frozen", "ancient", "old-1")
        await self.call(
            "POST",
            f"{LEARNING}/freezes",
            {
                "tenant_id": "ancient",
                "targets": "*",
                "starts_at": "0900-01-01T00:00:00Z",
                "ends_at": until,
                "reason": "since the year 900",
            },
            expect=(200, 201, 422),  # releases from issue 21 on refuse it at the door
        )

    async def statistics(self) -> None:
        """Sample summaries (SPEC §14), in releases that judge them: a passing replay whose proposal goes live and is
        observed twice (cumulative), and an inconclusive replay. Earlier releases refuse the first replay (422)."""
        sampled = {
            "baseline": {"accuracy": {"successes": 800, "n": 1000}, "latency_ms": {"mean": 120, "sd": 30, "n": 1000}},
            "candidate": {"accuracy": {"successes": 880, "n": 1000}, "latency_ms": {"mean": 100, "sd": 30, "n": 1000}},
        }
        body = {
            "tenant_id": "acme",
            "target": {"type": "prompt_template", "id": "p-sampled"},
            "family_versions": FAMILIES,
            "metrics": sampled,
            "threshold_contract": {
                "mode": "all",
                "metrics": {
                    "accuracy": {"direction": "increase", "confidence": 0.9},
                    "latency_ms": {"direction": "decrease"},
                },
                "veto": ["accuracy"],
            },
            "workload_similar": True,
        }
        if await self.judges_changes():
            body["change"] = {"template": "Hello from sampled"}
        answer = await self.call("POST", f"{LEARNING}/replay/evaluate", body, expect=(201, 422))
        if "replay_id" not in answer:
            return
        self.ids["replays"].append(answer["replay_id"])
        proposal: dict[str, Any] = await self.call(
            "POST",
            f"{LEARNING}/promotions/propose",
            {
                "tenant_id": "acme",
                "replay_id": answer["replay_id"],
                "target": body["target"],
                "risk": "low",
                "change": {"template": "Hello from sampled"},
                "baseline": {"template": "Hi"},
                "ttl_seconds": 31_536_000,
            },
        )
        self.ids["proposals"]["sampled_active"] = proposal["proposal_id"]
        self.approve(proposal)
        assert (await self.check(proposal))["state"] == "approved"
        await self.activate(proposal)
        for n in (200, 400):
            live = {
                "accuracy": {"successes": int(0.87 * n), "n": n},
                "latency_ms": {"mean": 101, "sd": 29, "n": n},
            }
            observed = {"proposal_id": proposal["proposal_id"], "metrics": live}
            seen = await self.call("POST", f"{LEARNING}/promotions/observe", observed)
            assert seen["verdict"] == "healthy", seen
        unsure = {
            "baseline": sampled["baseline"],
            "candidate": {"accuracy": {"successes": 820, "n": 1000}, "latency_ms": {"mean": 119, "sd": 30, "n": 1000}},
        }
        body = {**body, "target": {"type": "prompt_template", "id": "p-unsure"}, "metrics": unsure}
        answer = await self.call("POST", f"{LEARNING}/replay/evaluate", body)
        assert answer["verdict"] == "inconclusive", answer
        self.ids["replays"].append(answer["replay_id"])

    async def collect(self) -> dict[str, Any]:
        views: dict[str, Any] = {"runs": {}, "replays": {}, "proposals": {}, "histories": {}, "targets": {}}
        for run_id in self.ids["runs"]:
            views["runs"][run_id] = await self.read(f"{LEARNING}/runs/{run_id}")
        for replay_id in self.ids["replays"]:
            views["replays"][replay_id] = await self.read(f"{LEARNING}/replays/{replay_id}")
        for proposal_id in self.ids["proposals"].values():
            views["proposals"][proposal_id] = await self.read(f"{LEARNING}/proposals/{proposal_id}")
            views["histories"][proposal_id] = await self.read(f"{LEARNING}/proposals/{proposal_id}/history")
        if self.extras:
            for view in views["proposals"].values():
                target = view["target"]
                key = f"{view['tenant_id']}/{target['type']}/{target['id']}"
                path = f"{LEARNING}/targets/{target['type']}/{target['id']}"
                views["targets"][key] = await self.read(path, tenant_id=view["tenant_id"])
            views["freezes"] = {
                tenant: await self.read(f"{LEARNING}/freezes", tenant_id=tenant, include="past")
                for tenant in ("policy",)
            }
        views["served"] = self.served
        return views


async def main(out: Path) -> None:
    extras = os.environ.get("GOLDEN_EXTRAS") == "1"
    system = system_from_environment()
    app = create_app(system, background=True)
    approvals = Path(os.environ["DOBBY_WARP_APPROVALS_DIR"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://golden.test") as client:
            scenario = Scenario(client, system, approvals, extras)
            FAMILIES.update((await scenario.call("GET", "/api/v1/contract"))["families"])
            await scenario.intakes_and_replays()
            await scenario.every_state()
            if extras:
                await scenario.policy()
                await scenario.statistics()
            views = await scenario.collect()
            head = await asyncio.to_thread(system.engine.position)
    document = {
        "made_at": stamp(MADE_AT),
        "head": head,
        "proposals_by_state": scenario.ids["proposals"],
        "freeze_ids": scenario.ids["freezes"],
        **views,
    }
    out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
