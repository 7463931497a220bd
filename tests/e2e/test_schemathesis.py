"""A bounded schemathesis run over /openapi.json against a real server: no 5xx, every answer matches its schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.backends(["sqlite"])
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def test_schemathesis_finds_nothing(server: Server, tmp_path: Path) -> None:
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    result = subprocess.run(
        [
            command,
            "run",
            f"{server.url}/openapi.json",
            "--max-examples",
            "25",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "20261127",
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
        check=False,
    )
    summary = result.stdout[-4000:]
    assert result.returncode == 0, summary
    assert "generated" in summary
