"""`dobby audit` for an auditor (SPEC §7, §11): keep a signed checkpoint, later prove the log untouched — or not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy import create_engine

from dobby.adapters.settings import Settings
from dobby.bootstrap import open_event_log
from tests import tampering
from tests.support import run_cli


def dobby(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`dobby ARGS` on the test's database, signing with its key file once `dobby audit keygen` made it."""
    env = {
        "DOBBY_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "DOBBY_WARP_APPROVALS_DIR": str(tmp_path / "approvals"),
        "DOBBY_BOBBIN_PATH": "",
        "DOBBY_AUDIT_SIGNING_KEY": str(tmp_path / "signing.key") if args[:2] == ["audit", "keygen"] else "",
    }
    if (tmp_path / "signing.key").exists():
        env["DOBBY_AUDIT_SIGNING_KEY"] = str(tmp_path / "signing.key")
    if args == ["demo"]:  # the demo writes where it is told to, never by itself into the configured store
        args = ["demo", "--database", env["DOBBY_DATABASE_URL"]]
        env["DOBBY_SERVICE_MODE"] = "promotion_enabled"
    return run_cli(args, env)


def events_table(tmp_path: Path) -> tampering.Table:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    return tampering.Table(open_event_log(Settings(database_url=url)), create_engine(url))


def test_a_kept_checkpoint_proves_the_log_untouched_and_catches_a_rewritten_chain(tmp_path: Path) -> None:
    keygen = dobby(["audit", "keygen"], tmp_path)
    assert keygen.returncode == 0, keygen.stderr
    assert "key_id: " in keygen.stdout
    assert (tmp_path / "signing.key").stat().st_mode & 0o777 == 0o600
    assert dobby(["audit", "keygen"], tmp_path).returncode == 1, "a key is never overwritten"
    assert dobby(["demo"], tmp_path).returncode == 0
    exported = dobby(["audit", "export-checkpoint"], tmp_path)
    assert exported.returncode == 0, exported.stderr
    checkpoint = json.loads(exported.stdout)
    assert checkpoint["tree_size"] > 0 and checkpoint["signature"]
    kept = tmp_path / "cp.json"
    kept.write_text(exported.stdout)

    checked = dobby(["audit", "check-checkpoint", str(kept)], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "signature valid" in checked.stdout and "append-only extension" in checked.stdout
    assert dobby(["audit", "verify-log"], tmp_path).returncode == 0
    assert dobby(["audit", "--verify"], tmp_path).returncode == 0

    forged = {**checkpoint, "tree_size": checkpoint["tree_size"] - 1}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    assert dobby(["audit", "check-checkpoint", str(tmp_path / "forged.json")], tmp_path).returncode == 1

    table = events_table(tmp_path)
    table.rewrite_chain(str(table.event(1).originator_id), tampering.other_actor)
    assert dobby(["audit", "verify-log"], tmp_path).returncode == 0, "a careful rewrite passes every chain"
    caught = dobby(["audit", "check-checkpoint", str(kept)], tmp_path)
    assert caught.returncode == 1
    assert "BROKEN" in caught.stdout and "not only appended to" in caught.stdout


def test_verify_log_lists_what_broke(tmp_path: Path) -> None:
    assert dobby(["demo"], tmp_path).returncode == 0
    table = events_table(tmp_path)
    table.change(2, tampering.other_actor)
    table.delete(5)
    verified = dobby(["audit", "verify-log"], tmp_path)
    assert verified.returncode == 1
    broken = [line for line in verified.stdout.splitlines() if line.startswith("BROKEN")]
    assert any("position 2 " in line and "event_hash does not match" in line for line in broken), broken
    assert any("position 5" in line for line in broken), broken
    streams = dobby(["audit", "--verify"], tmp_path)
    assert streams.returncode == 1 and "position 2 " in streams.stdout
