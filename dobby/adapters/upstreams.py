"""Fabric, Warp and Shuttle over HTTP (SPEC §5). Each receives an httpx.Client with timeouts; every transport
failure, timeout, error status or unusable body becomes UpstreamUnavailableError here, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from dobby.adapters.fabric import parse_document
from dobby.adapters.warp import parse_approval
from dobby.engine.kernel.canonical import content_hash
from dobby.engine.kernel.ports import Approval, Evidence, GovernanceDocument, UpstreamUnavailableError


@contextmanager
def _failures_as_unavailable(upstream: str) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError as error:
        raise UpstreamUnavailableError(f"{upstream}: {type(error).__name__}: {error}") from error
    except ValueError as error:
        raise UpstreamUnavailableError(f"{upstream}: unusable answer: {error}") from error


def _json(response: httpx.Response, upstream: str) -> Any:
    if response.status_code != 200:
        raise UpstreamUnavailableError(f"{upstream}: HTTP {response.status_code}")
    return response.json()


class FabricHttpGovernance:
    """Fetches the three Fabric documents and combines them into one GovernanceDocument."""

    def __init__(self, client: httpx.Client, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")

    def fetch(self) -> GovernanceDocument:
        with _failures_as_unavailable("Fabric"):
            matrix = _json(self.client.get(f"{self.base_url}/api/v1/contracts/matrix"), "Fabric")
            families = _json(self.client.get(f"{self.base_url}/api/v1/contracts/families"), "Fabric")
            readiness = _json(self.client.get(f"{self.base_url}/api/v1/contracts/jarvis/readiness"), "Fabric")
            if not all(isinstance(part, dict) for part in (matrix, families, readiness)):
                raise UpstreamUnavailableError("Fabric: a document is not a JSON object")
            return parse_document(
                {
                    "capability_class": matrix.get("capability_class"),
                    "target_types": matrix.get("target_types"),
                    "no_learn_zones": matrix.get("no_learn_zones", []),
                    "families": families.get("families"),
                    "readiness": {"status": readiness.get("status")},
                }
            )


class WarpApprovals:
    """Asks Warp for the approval of one proposal, with the bearer token; never cached."""

    def __init__(self, client: httpx.Client, base_url: str, token: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def approval_for(self, proposal_id: str) -> Approval | None:
        with _failures_as_unavailable("Warp"):
            response = self.client.get(f"{self.base_url}/api/v1/approvals/dobby/{proposal_id}", headers=self.headers)
            if response.status_code == 404:
                return None
            return parse_approval(_json(response, "Warp"))


class ShuttleEvidence:
    """Read-only evidence for a trace, reduced to the hash of what Shuttle answered."""

    def __init__(self, client: httpx.Client, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")

    def evidence_for(self, trace_id: str) -> Evidence | None:
        with _failures_as_unavailable("Shuttle"):
            response = self.client.get(f"{self.base_url}/api/v1/evidence", params={"trace_id": trace_id})
            if response.status_code == 404:
                return None
            return Evidence(trace_id, content_hash(_json(response, "Shuttle")))
