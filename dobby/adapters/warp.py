"""Warp approvals from a directory of `{proposal_id}.json` files (SPEC §5). Never cached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dobby.engine.clock import parse_rfc3339
from dobby.engine.ports import Approval, UpstreamUnavailableError


def parse_approval(data: Any) -> Approval:
    """A Warp approval document; anything malformed raises UpstreamUnavailableError (fail closed)."""
    try:
        approver = data["approver"]
        binding = data["binding"]
        decision = data["decision"]
        kind = approver["kind"]
        if decision not in ("approved", "rejected", "pending") or kind not in ("human", "service"):
            raise ValueError(f"decision {decision!r} / approver kind {kind!r}")
        return Approval(
            approval_id=_text(data["approval_id"]),
            proposal_id=_text(data["proposal_id"]),
            decision=decision,
            approver_id=_text(approver["id"]),
            approver_kind=kind,
            candidate_hash=_text(binding["candidate_hash"]),
            provenance_hash=_text(binding["provenance_hash"]),
            decided_at=parse_rfc3339(_text(data["decided_at"])),
            expires_at=parse_rfc3339(_text(data["expires_at"])),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UpstreamUnavailableError(f"unusable Warp approval: {error!r}") from error


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


class FileApprovals:
    """One approval per file; a missing file means no decision yet."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def approval_for(self, proposal_id: str) -> Approval | None:
        path = self.directory / f"{proposal_id}.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise UpstreamUnavailableError(f"cannot read {path}: {error}") from error
        try:
            data = json.loads(text)
        except ValueError as error:
            raise UpstreamUnavailableError(f"{path} is not JSON: {error}") from error
        return parse_approval(data)
