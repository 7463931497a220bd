"""The tokens file of SPEC §7/§8 on disk: add, list, revoke. It holds SHA-256 hashes only, never a token."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = frozenset({"submitter", "proposer", "operator", "auditor"})


class TokensFileError(ValueError):
    """DOBBY_API_TOKENS_FILE cannot be used; the message says why."""


class TokenRefusedError(ValueError):
    """The file is fine but the change is not: a duplicate or unknown name, roles or tenants no token can hold."""


@dataclass(frozen=True)
class TokenEntry:
    name: str
    sha256: str
    tenants: list[str] | str
    roles: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "tenants": self.tenants, "roles": self.roles}


def read_entries(path: Path) -> list[dict[str, Any]]:
    """The file's entries as stored (a missing file has none)."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TokensFileError(f"DOBBY_API_TOKENS_FILE {path}: {error}") from error
    entries = data.get("tokens") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise TokensFileError(f"DOBBY_API_TOKENS_FILE {path}: expected a list of tokens")
    return entries


def add_token(path: Path, name: str, roles: list[str], tenants: list[str] | str) -> str:
    """A new random token for `name`, stored as its hash; the token itself is returned once and kept nowhere."""
    if not name or len(name) > 200 or not name.isprintable():
        raise TokenRefusedError("a token's name is 1 to 200 printable characters")
    unknown = sorted(set(roles) - ROLES)
    if not roles or unknown:
        raise TokenRefusedError(f"roles must be a non-empty subset of {sorted(ROLES)}; unknown: {unknown}")
    if tenants != "*" and (not tenants or not all(tenants)):
        raise TokenRefusedError('tenants must be tenant ids or "*"')
    entries = read_entries(path)
    if any(entry.get("name") == name for entry in entries):
        raise TokenRefusedError(f"a token named {name!r} exists already; revoke it first")
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    _write(path, [*entries, TokenEntry(name, digest, tenants, sorted(set(roles))).as_json()])
    return token


def revoke_token(path: Path, name: str) -> None:
    entries = read_entries(path)
    kept = [entry for entry in entries if entry.get("name") != name]
    if len(kept) == len(entries):
        raise TokenRefusedError(f"no token named {name!r} in {path}")
    _write(path, kept)


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    """Atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".tokens-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:
            json.dump(entries, output, indent=2)
            output.write("\n")
            output.flush()
            os.fsync(output.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
