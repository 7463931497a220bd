"""A client generated from /openapi.json by openapi-python-client, no hand edits, drives a promotion typed."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import FAMILIES, InProcess, intake_body, propose_body, replay_body, serve_in_process

pytestmark = pytest.mark.backends(["sqlite"])
TOKEN = "token-of-the-generated-client"
PACKAGE = "dobby_generated"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcess, Any]]:
    """The app with one token of every role, and the client generated from the document it serves."""
    workdir = tmp_path_factory.mktemp("generated")
    tokens = workdir / "tokens.json"
    roles = ["submitter", "proposer", "operator", "auditor"]
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    tokens.write_text(json.dumps([{"name": "generated", "sha256": digest, "tenants": "*", "roles": roles}]))
    with serve_in_process(f"sqlite:///{workdir / 'dobby.db'}", workdir, api_tokens_file=tokens) as served:
        document = workdir / "openapi.json"
        document.write_text(served.client.get("/openapi.json").text)
        tool = Path(sys.executable).parent / "openapi-python-client"
        bin_path = str(Path(sys.executable).parent)
        result = subprocess.run(
            [str(tool), "generate", "--path", str(document), "--output-path", str(workdir / PACKAGE), "--meta", "none"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=workdir,
            env={"PATH": f"{bin_path}:/usr/bin:/bin"},
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
        sys.path.insert(0, str(workdir))
        try:
            yield served, importlib.import_module(PACKAGE)
        finally:
            sys.path.remove(str(workdir))
            for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
                del sys.modules[name]
            shutil.rmtree(workdir / PACKAGE, ignore_errors=True)


def test_a_generated_client_drives_intake_replay_propose_approve_and_activate(
    generated: tuple[InProcess, Any],
) -> None:
    served, package = generated
    models = importlib.import_module(f"{PACKAGE}.models")
    client = package.AuthenticatedClient(base_url="http://dobby.test", token=TOKEN)
    # the generated client's own httpx client cannot reach an app in this process; this one carries its token
    http = served.client.async_client(headers={"Authorization": f"Bearer {TOKEN}"})
    client.set_async_httpx_client(http)
    try:
        promote(served, client, models)
    finally:
        served.client.wait(http.aclose)


def promote(served: InProcess, client: Any, models: Any) -> None:

    def send(operation: Any, body: Any) -> Any:
        answer = served.client.wait(lambda: operation.asyncio_detailed(client=client, body=body))
        assert not isinstance(answer.parsed, models.Error), answer.content
        return answer

    intake = importlib.import_module(f"{PACKAGE}.api.learning.intake")
    recorded = send(intake, models.IntakeSignal.from_dict(intake_body(FAMILIES)))
    assert recorded.status_code == 201
    assert isinstance(recorded.parsed, models.IntakeAccepted)
    assert recorded.parsed.accepted is True and recorded.parsed.run_id

    evaluate = importlib.import_module(f"{PACKAGE}.api.learning.evaluate_replay")
    replay = send(evaluate, models.EvaluateReplay.from_dict(replay_body(FAMILIES))).parsed
    assert isinstance(replay, models.ReplayAnswer)
    assert replay.verdict.value == "passed"

    propose = importlib.import_module(f"{PACKAGE}.api.promotions.propose")
    proposal = send(propose, models.Propose.from_dict(propose_body(replay.replay_id))).parsed
    assert isinstance(proposal, models.ProposalAnswer)
    assert proposal.state == "generated"
    served.write_approval(proposal.to_dict())

    approve_check = importlib.import_module(f"{PACKAGE}.api.promotions.approve_check")
    checked = send(approve_check, models.ProposalRef(proposal_id=proposal.proposal_id)).parsed
    assert isinstance(checked, models.CheckAnswer)
    assert checked.state == "approved"

    activate = importlib.import_module(f"{PACKAGE}.api.promotions.activate")
    activated = send(activate, models.Activate(proposal_id=proposal.proposal_id))
    assert activated.status_code == 200
    assert isinstance(activated.parsed, models.ProposalAnswer)
    assert activated.parsed.state == "active"
