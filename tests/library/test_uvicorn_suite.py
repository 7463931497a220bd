"""uvicorn's own HTTP protocol tests pass against the protocol `dobby serve` uses (BoundedHttpToolsProtocol): a
library part we subclass passes the library's own tests. They run in a pytest of their own: they call
`asyncio.run`, which cannot run where another test (the browser tests) keeps an event loop running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SUITE = Path(__file__).resolve().parent / "uvicorn"
ROOT = Path(__file__).resolve().parents[2]


def test_uvicorns_http_protocol_tests_pass_against_dobbys_protocol() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            str(SUITE / "suite_http.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout[-2000:]
