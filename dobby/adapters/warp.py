"""Warp approvals from a directory of `{proposal_id}.json` files (SPEC §5). Never cached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dobby.engine.kernel.clock import parse_timestamp
from dobby.engine.kernel.ports import Approval, ApproverRef, UpstreamUnavailableError


def parse_approval(data: Any) -> Approval:
    """A Warp approval document; anything malformed raises UpstreamUnavailableError (fail closed)."""
    try:
        binding = data["binding"]
        decision = data["decision"]
        listed = data["approvers"] if "approvers" in data else [data["approver"]]
        if not isinstance(listed, list) or not listed:
            raise ValueError("approvers must be a non-empty list")
        approvers = tuple(_approver(one) for one in listed)
        change_hash = binding.get("change_hash")
        if decision not in ("approved", "rejected", "pending"):
            raise ValueError(f"decision {decision!r}")
        return Approval(
            approval_id=_text(data["approval_id"]),
            proposal_id=_text(data["proposal_id"]),
            decision=decision,
            approver_id=approvers[0].id,
            approver_kind=approvers[0].kind,
            candidate_hash=_text(binding["candidate_hash"]),
            provenance_hash=_text(binding["provenance_hash"]),
            decided_at=parse_timestamp(_text(data["decided_at"])),
            expires_at=parse_timestamp(_text(data["expires_at"])),
            approvers=approvers,
            change_hash=None if change_hash is None else _text(change_hash),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UpstreamUnavailableError(f"unusable Warp approval: {error!r}") from error


def _approver(data: Any) -> ApproverRef:
    kind = data["kind"]
    if kind not in ("human", "service"):
        raise ValueError(f"approver kind {kind!r}")
    return ApproverRef(_text(data["id"]), kind)


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
