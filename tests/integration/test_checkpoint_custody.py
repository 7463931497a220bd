"""check-checkpoint trusts nothing stored (SPEC §11), on SQLite and PostgreSQL: content edited in place, an edit
re-hashed, an event removed — each caught against a checkpoint kept before; stripped and foreign-key checkpoints
refused; export-checkpoint always hands out one signed by the configured key; keygen refuses in one line."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dobby.adapters.settings import Settings
from dobby.bootstrap import open_event_log
from dobby.cli.command import main
from dobby.engine.model.chain import ChainedEvent
from dobby.projections.database import connect
from tests import tampering

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


@dataclasses.dataclass
class Auditor:
    url: str
    tmp_path: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        status = main(list(args))
        captured = self.capsys.readouterr()
        return status, captured.out, captured.err

    def keep(self, name: str = "kept.json") -> Path:
        status, out, err = self.run("audit", "export-checkpoint")
        assert status == 0, err
        path = self.tmp_path / name
        path.write_text(out)
        return path

    def table(self) -> tampering.Table:
        return tampering.Table(open_event_log(Settings(database_url=self.url)), connect(self.url, 2.0))

    def check(self, checkpoint: Path, *extra: str) -> tuple[int, list[str]]:
        status, out, _ = self.run("audit", "check-checkpoint", str(checkpoint), *extra)
        return status, out.splitlines()


@pytest.fixture
def auditor(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Auditor:
    """A log with one whole lifecycle in it, and a signing key configured."""
    monkeypatch.setenv("DOBBY_DATABASE_URL", database_url)
    monkeypatch.setenv("DOBBY_WARP_APPROVALS_DIR", str(tmp_path / "approvals"))
    monkeypatch.setenv("DOBBY_BOBBIN_PATH", "")
    monkeypatch.delenv("DOBBY_AUDIT_SIGNING_KEY", raising=False)
    (tmp_path / "approvals").mkdir()
    found = Auditor(database_url, tmp_path, capsys)
    assert found.run("audit", "keygen", str(tmp_path / "signing.key"))[0] == 0
    monkeypatch.setenv("DOBBY_AUDIT_SIGNING_KEY", str(tmp_path / "signing.key"))
    monkeypatch.setenv("DOBBY_SERVICE_MODE", "promotion_enabled")
    assert found.run("demo", "--database", database_url)[0] == 0  # the demo writes only where it is told to
    return found


def rehashed(event: ChainedEvent) -> ChainedEvent:
    changed = tampering.other_payload(event, 1)
    return cast(ChainedEvent, dataclasses.replace(cast(Any, changed), event_hash=changed.expected_hash()))


def test_an_untouched_log_extends_the_kept_checkpoint(auditor: Auditor) -> None:
    kept = auditor.keep()
    status, lines = auditor.check(kept)
    assert status == 0 and any(line.startswith("ok: ") for line in lines), lines
    assert any("signature valid" in line for line in lines)


def test_content_edited_in_place_is_broken_at_its_position(auditor: Auditor) -> None:
    kept = auditor.keep()
    auditor.table().change(3, lambda event: tampering.other_payload(event, 2))
    status, lines = auditor.check(kept)
    assert status == 1 and not any(line.startswith("ok") for line in lines)
    assert any(line.startswith("BROKEN position 3 ") and "does not match its content" in line for line in lines)


def test_an_edit_with_its_hash_recomputed_is_caught(auditor: Auditor) -> None:
    kept = auditor.keep()
    auditor.table().change(3, rehashed)
    status, lines = auditor.check(kept)
    assert status == 1 and not any(line.startswith("ok") for line in lines)
    assert any(line.startswith("BROKEN") for line in lines), lines


def test_a_removed_event_is_caught(auditor: Auditor) -> None:
    kept = auditor.keep()
    table = auditor.table()
    table.delete(4)
    status, lines = auditor.check(kept)
    assert status == 1 and not any(line.startswith("ok") for line in lines)
    assert any(line.startswith("BROKEN") for line in lines), lines


def test_a_stripped_checkpoint_is_refused_when_a_key_is_known(auditor: Auditor) -> None:
    kept = auditor.keep()
    stripped = auditor.tmp_path / "stripped.json"
    stripped.write_text(json.dumps({**json.loads(kept.read_text()), "key_id": None, "signature": None}))
    status, lines = auditor.check(stripped)
    assert status == 1 and not any(line.startswith("ok") for line in lines)
    assert any(line.startswith("BROKEN") and "unsigned" in line for line in lines), lines


def test_a_checkpoint_of_another_key_is_refused(auditor: Auditor) -> None:
    kept = auditor.keep()
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    status, lines = auditor.check(kept, "--public-key", base64.b64encode(other).decode())
    assert status == 1 and not any(line.startswith("ok") for line in lines)
    assert any(line.startswith("BROKEN") for line in lines), lines


def test_export_signs_afresh_with_a_new_key_and_never_warns_of_a_key_that_is_set(
    auditor: Auditor, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = json.loads(auditor.keep().read_text())
    assert auditor.run("audit", "keygen", str(auditor.tmp_path / "new.key"))[0] == 0
    monkeypatch.setenv("DOBBY_AUDIT_SIGNING_KEY", str(auditor.tmp_path / "new.key"))
    status, out, err = auditor.run("audit", "export-checkpoint")
    again = json.loads(out)
    assert status == 0 and "WARNING" not in err
    assert again["tree_size"] == first["tree_size"] and again["root"] == first["root"]
    assert again["key_id"] != first["key_id"] and again["signature"]
    status, lines = auditor.check(auditor.keep("again.json"))
    assert status == 0 and any("signature valid" in line for line in lines), lines


def test_keygen_refuses_a_missing_directory_and_an_existing_file_in_one_line(auditor: Auditor) -> None:
    missing = auditor.tmp_path / "no" / "such" / "dir" / "k"
    status, _, err = auditor.run("audit", "keygen", str(missing))
    assert status != 0 and len(err.strip().splitlines()) == 1 and "does not exist" in err
    assert not missing.parent.exists()
    status, _, err = auditor.run("audit", "keygen", str(auditor.tmp_path / "signing.key"))
    assert status != 0 and len(err.strip().splitlines()) == 1 and "exists" in err
