"""A non-editable install works anywhere (SPEC §7): the wheel ships what dobby needs at run time."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx

from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]
# Without PYTHONPATH: a test run that puts the source tree on it would otherwise hand it to the fresh environment.
ENVIRONMENT = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME")}


def run(*command: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_wheel_in_a_fresh_environment_serves_from_another_directory(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a clean copy: no build/ or egg-info of the editable install to borrow from
    shutil.copytree(ROOT / "dobby", source / "dobby", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    offline = ("-q", "--no-index", "--no-deps")
    run(sys.executable, "-m", "pip", "wheel", *offline, "--no-build-isolation", "-w", wheels, source)
    fresh = tmp_path / "fresh"
    run(sys.executable, "-m", "venv", "--without-pip", fresh)
    site = Path(run(fresh / "bin/python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    # The dependencies come from this environment's site-packages, appended after the wheel's own place; the
    # editable dobby there is not picked up (its finder is registered by a .pth file this path line skips).
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    wheel = next(wheels.glob("dobby-*.whl"))
    run(sys.executable, "-m", "pip", "--python", fresh / "bin/python", "install", *offline, wheel)
    where = run(fresh / "bin/python", "-c", "import dobby; print(dobby.__file__)", cwd=tmp_path)
    assert where.startswith(str(fresh)), where

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = tmp_path / "serve.log"
    manifest = served_manifest(fresh / "bin/dobby", elsewhere, log)
    assert manifest == (ROOT / "fabric-manifest.json").read_bytes()


def served_manifest(dobby: Path, workdir: Path, log: Path) -> bytes:
    """`dobby serve` from `workdir`, on a socket opened here: once /health answers, its /fabric-manifest.json (and
    its console answers)."""
    env = {**ENVIRONMENT, "DOBBY_DATABASE_URL": f"sqlite:///{workdir / 'dobby.db'}"}
    with socket.create_server(("127.0.0.1", 0)) as listener, log.open("wb") as output:
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        server = subprocess.Popen(
            [dobby, "serve", "--fd", str(listener.fileno())],
            cwd=workdir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
        )
    try:
        assert eventually(lambda: server.poll() is not None or healthy(base), 60) and server.poll() is None, (
            log.read_text()
        )
        answer = httpx.get(f"{base}/fabric-manifest.json", timeout=5)
        assert answer.status_code == 200
        console = httpx.get(f"{base}/console", timeout=5)  # the templates and assets ship in the wheel too
        assert console.status_code == 200 and 'data-testid="mode-effective"' in console.text
        assert httpx.get(f"{base}/console/static/console.js", timeout=5).status_code == 200
        return answer.content
    finally:
        server.terminate()
        server.wait(10)


def healthy(base: str) -> bool:
    try:
        return bool(httpx.get(f"{base}/health", timeout=1).json() == {"status": "ok", "service": "jhf-dobby"})
    except httpx.HTTPError:
        return False
