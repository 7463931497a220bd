"""README's first walk, pasted twice into a shell against a real server: it reaches a governed change read through
the targets read and OFREP, rolls it back, and leaves no file behind (issue 25)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.server import serve
from tests.support import REPOSITORY

pytestmark = pytest.mark.backends(["sqlite"])


def walk() -> str:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## From a trace to a governed change") :]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert found
    return found.group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README walk uses curl")
def test_the_readme_walk_can_be_pasted_twice_and_leaves_nothing_behind(database_url: str, tmp_path: Path) -> None:
    workdir = tmp_path / "shell"
    approvals = workdir / "var" / "warp-approvals"
    approvals.mkdir(parents=True)
    with serve(database_url, tmp_path, DOBBY_WARP_APPROVALS_DIR=str(approvals)) as server:
        script = walk().replace("http://127.0.0.1:18096", server.url)
        for _ in range(2):
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            lines = result.stdout.strip().splitlines()
            assert json.loads(lines[0])["accepted"] is True
            assert json.loads(lines[1])["state"] == "approved"
            target, flag = json.loads(lines[2]), json.loads(lines[3])
            assert target["source"] == "proposal" and target["live"] == {"template": "Hello, {name}!"}
            assert flag["value"] == target["live"] and flag["variant"] == target["live_hash"]
            assert lines[4] == "true"
    assert sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*")) == ["var", "var/warp-approvals"]
