"""Soak: the same mixed work, round after round, against a real `dobby serve`; resident memory after each round.

    .venv/bin/python bench/soak.py [--rounds 10] [--tenants 500] [--intakes 4000] [--backend postgres|sqlite]

Each round, over the same tenants: intakes (some with target hints, some sampled out, some refused), replay
evaluations, proposals that are approved (a Warp approval file), activated and rolled back, reads (lists, views,
history, explain, the targets read), what-ifs, unknown ids, /metrics and /ready. Between rounds the script waits
until every projection has caught up, then reads VmRSS of the API process and of the read side it supervises
(/proc). SPEC §16: after warm-up, a further round grows resident memory by less than 1 MB. A bench, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, fresh_postgres, fresh_sqlite, record
from dobby.resources import read_manifest

DOBBY = str(Path(sys.executable).parent / "dobby")
FAMILIES = dict(read_manifest().families)
LEARNING = "/api/v1/learning"
WORKERS = 8
WARM_UP_ROUNDS = 3


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@contextmanager
def server(database_url: str, workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "DOBBY_DATABASE_URL": database_url,
        "DOBBY_PORT": str(port),
        "DOBBY_SERVICE_MODE": "promotion_enabled",
        "DOBBY_REPLAY_BUDGET": "1000000000",
        "DOBBY_PROMOTION_VELOCITY_MAX": "1000000000",
        "DOBBY_WARP_APPROVALS_DIR": str(workdir / "approvals"),
        "DOBBY_BOBBIN_PATH": str(workdir / "bobbin.jsonl"),
        "DOBBY_PROCESSOR_INTERVAL_SECONDS": "1",
        "DOBBY_REQUIRE_JUDGED_CHANGE": "false",  # the replays here name no change (the original service's shape)
    }
    process = subprocess.Popen([DOBBY, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=2).json()["effective_mode"] == "promotion_enabled":
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("dobby did not come up")
        yield url, process
    finally:
        process.terminate()
        process.wait(30)


class Round:
    """One round of the mixed work; `number` makes its writes new, the tenants and targets are the same."""

    def __init__(self, url: str, approvals: Path, number: int, tenants: int, intakes: int) -> None:
        self.url, self.approvals, self.number = url, approvals, number
        self.tenants, self.intakes = tenants, intakes
        self.statuses: Counter[tuple[str, int]] = Counter()

    def run(self) -> Counter[tuple[str, int]]:
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(self._intakes, range(WORKERS)))
            list(pool.map(self._lifecycle, range(self.tenants // 5)))
            list(pool.map(self._reads, range(WORKERS)))
        return self.statuses

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def _call(self, client: httpx.Client, kind: str, method: str, path: str, body: Any = None) -> httpx.Response:
        answer = client.request(method, path, json=body)
        self.statuses[(kind, answer.status_code)] += 1
        return answer

    def _intakes(self, worker: int) -> None:
        with self._client() as client:
            for n in range(worker, self.intakes, WORKERS):
                tenant = f"tenant-{n % self.tenants}"
                body: dict[str, Any] = {
                    "tenant_id": tenant,
                    "trace_id": f"soak-{self.number}-{n}",
                    "correlation_id": f"c-{n}",
                    "outcome": ("success", "neutral_success", "partial", "failure")[n % 4],
                    "guardrail_decision": "BLOCK" if n % 50 == 0 else "ALLOW",
                    "family_versions": FAMILIES,
                    "steps": [{"name": "plan"}, {"name": "act", "attributes": {"n": n}}],
                }
                if n % 3 == 0:
                    body["target_hints"] = [{"type": "prompt_template", "id": f"target-{n % 50}"}]
                self._call(client, "intake", "POST", f"{LEARNING}/signals/intake", body)

    def _lifecycle(self, index: int) -> None:
        tenant, target = f"tenant-{index % self.tenants}", {"type": "prompt_template", "id": f"target-{index % 50}"}
        change = {"template": f"Hello {self.number}-{index}"}
        accuracy = 0.81 + (self.number * 7 + index) % 100 / 1000
        replay_body: dict[str, Any] = {
            "tenant_id": tenant,
            "target": target,
            "family_versions": FAMILIES,
            "metrics": {
                "baseline": {"accuracy": 0.80, "latency_ms": 120},
                "candidate": {"accuracy": accuracy, "latency_ms": 100 + index % 7},
            },
            "threshold_contract": {
                "mode": "all",
                "metrics": {"accuracy": {"direction": "increase"}, "latency_ms": {"direction": "decrease"}},
                "veto": ["accuracy"],
            },
            "workload_similar": True,
        }
        with self._client() as client:
            replay = self._call(client, "evaluate", "POST", f"{LEARNING}/replay/evaluate", replay_body).json()
            if "replay_id" not in replay:
                return
            what_if = {"threshold_contract": {**replay_body["threshold_contract"], "mode": "majority"}}
            self._call(client, "what-if", "POST", f"{LEARNING}/replays/{replay['replay_id']}/what-if", what_if)
            if index % 2:
                return
            proposal = self._call(
                client,
                "propose",
                "POST",
                f"{LEARNING}/promotions/propose",
                {
                    "tenant_id": tenant,
                    "replay_id": replay["replay_id"],
                    "target": target,
                    "risk": "low",
                    "change": change,
                    "baseline": {"template": "Hi"},
                },
            ).json()
            if "proposal_id" not in proposal:
                return
            pid = proposal["proposal_id"]
            self._approve(proposal)
            ref = {"proposal_id": pid}
            self._call(client, "approve-check", "POST", f"{LEARNING}/promotions/approve-check", ref)
            self._call(client, "explain", "GET", f"{LEARNING}/proposals/{pid}/explain")
            if self._call(client, "activate", "POST", f"{LEARNING}/promotions/activate", ref).status_code == 200:
                self._call(
                    client,
                    "observe",
                    "POST",
                    f"{LEARNING}/promotions/observe",
                    {**ref, "metrics": {"accuracy": accuracy, "latency_ms": 100}},
                )
                rollback = {**ref, "reason": "soak"}
                self._call(client, "rollback", "POST", f"{LEARNING}/promotions/rollback", rollback)
            self._call(client, "history", "GET", f"{LEARNING}/proposals/{pid}/history")
            (self.approvals / f"{pid}.json").unlink(missing_ok=True)

    def _approve(self, proposal: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        approval = {
            "approval_id": f"warp-{proposal['proposal_id'][:8]}",
            "proposal_id": proposal["proposal_id"],
            "decision": "approved",
            "approver": {"id": "alice", "kind": "human"},
            "binding": {"candidate_hash": proposal["candidate_hash"], "provenance_hash": proposal["provenance_hash"]},
            "decided_at": now.isoformat(),
            "expires_at": (now + timedelta(hours=1)).isoformat(),
        }
        (self.approvals / f"{proposal['proposal_id']}.json").write_text(json.dumps(approval))

    def _reads(self, worker: int) -> None:
        reads: list[tuple[str, str]] = [
            ("list-runs", "/runs?tenant_id={t}&limit=20"),
            ("list-proposals", "/proposals?tenant_id={t}&limit=20"),
            ("list-replays", "/replays?tenant_id={t}&verdict=passed"),
            ("target", "/targets/prompt_template/target-{n}?tenant_id={t}"),
            ("decisions", "/decisions?tenant_id={t}"),
            ("unknown", "/proposals/00000000-0000-0000-0000-00000000{n:04d}"),
        ]
        with self._client() as client:
            for n in range(worker, self.tenants, WORKERS):
                for kind, path in reads:
                    self._call(client, kind, "GET", LEARNING + path.format(t=f"tenant-{n}", n=n % 50))
                if n % 25 == 0:
                    self._call(client, "metrics", "GET", "/metrics")
                    self._call(client, "ready", "GET", "/ready")


def caught_up(url: str) -> bool:
    try:
        ready = httpx.get(f"{url}/ready", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(ready["projections"]) and all(p["lag"] == 0 for p in ready["projections"].values())


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--intakes", type=int, default=4000)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--no-record", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dobby-soak-"))
    (workdir / "approvals").mkdir()
    database = fresh_postgres() if args.backend == "postgres" else fresh_sqlite(workdir)
    rows: list[tuple[int, float, int, int, Counter[tuple[str, int]]]] = []
    with database as url_of_db, server(url_of_db, workdir) as (url, process):
        for number in range(1, args.rounds + 1):
            started = time.monotonic()
            statuses = Round(url, workdir / "approvals", number, args.tenants, args.intakes).run()
            wait_for(lambda: caught_up(url), 120)
            time.sleep(2)  # the processors' periodic work (expiry, checkpoints, tallies) settles too
            api, side = rss_kib(process.pid), sum(rss_kib(child) for child in children(process.pid))
            if side == 0 and number == 1:
                print("(no child process: the read side runs inside the API process)", flush=True)
            rows.append((number, time.monotonic() - started, api, side, statuses))
            print(
                f"round {number}: {sum(statuses.values())} requests in {rows[-1][1]:.1f} s; "
                f"API {api / 1024:.1f} MB, children {side / 1024:.1f} MB",
                flush=True,
            )
    lines = table(rows, args)
    print("\n".join(lines))
    if not args.no_record:
        command = f".venv/bin/python bench/soak.py --rounds {args.rounds} --tenants {args.tenants} " + (
            f"--intakes {args.intakes} --backend {args.backend}"
        )
        record("Soak: resident memory per round", command, lines)
    return 0


def table(rows: list[tuple[int, float, int, int, Counter[tuple[str, int]]]], args: argparse.Namespace) -> list[str]:
    first = rows[0][4]
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(Counter(k for k, _ in first.elements()).items()))
    statuses = sorted({status for row in rows for _, status in row[4]})
    lines = [
        f"Each round over {args.tenants} tenants and 50 targets each ({args.backend}): {kinds}.",
        f"Answers seen: {', '.join(map(str, statuses))} (no 5xx expected).",
        "",
        "| round | seconds | API process RSS (MB) | its children's RSS (MB) | total (MB) | Δ total (MB) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    previous: int | None = None
    for number, seconds, api, side, _ in rows:
        total = api + side
        delta = "" if previous is None else f"{(total - previous) / 1024:+.2f}"
        cells = [f"{number}", f"{seconds:.1f}", f"{api / 1024:.1f}", f"{side / 1024:.1f}", f"{total / 1024:.1f}"]
        lines.append("| " + " | ".join([*cells, delta]) + " |")
        previous = total
    after = rows[WARM_UP_ROUNDS - 1 :]
    if len(after) > 1:
        growth = (after[-1][2] + after[-1][3] - after[0][2] - after[0][3]) / 1024 / (len(after) - 1)
        lines += ["", f"After {WARM_UP_ROUNDS} warm-up rounds: {growth:+.2f} MB per round on average."]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
