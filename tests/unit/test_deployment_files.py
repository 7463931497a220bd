"""The Dockerfile and compose.yml, read as a Docker engine would (none runs on these machines)."""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def copied() -> list[str]:
    return [
        part
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
    ]


def test_every_file_the_image_copies_exists_as_a_plain_file_or_folder() -> None:
    assert copied()
    for source in copied():
        path = ROOT / source
        assert path.exists() and not path.is_symlink(), source


def test_the_build_context_keeps_what_the_image_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for source in copied():
        assert not [pattern for pattern in patterns if fnmatch(source.rstrip("/"), pattern)], source


def test_the_image_installs_without_an_editable_tree() -> None:
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", (ROOT / "Dockerfile").read_text(encoding="utf-8"))


def test_a_service_that_listens_beyond_loopback_has_a_tokens_file() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose.yml").read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if env.get("DOBBY_HOST") == "0.0.0.0":
            assert env.get("DOBBY_API_TOKENS_FILE"), name
            mounted = [volume.split(":")[1] for volume in service.get("volumes", [])]
            assert any(env["DOBBY_API_TOKENS_FILE"].startswith(path + "/") for path in mounted), name


def test_only_the_api_keeps_the_image_health_check_which_asks_the_api() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose.yml").read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        if "build" in service and service["command"][:2] != ["dobby", "serve"]:
            assert service.get("healthcheck") == {"disable": True}, name


def test_the_readme_shows_the_one_tokens_step_of_the_compose_stack() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    compose = (ROOT / "compose.yml").read_text(encoding="utf-8")
    step = "docker compose run --rm --no-deps api dobby tokens add"
    assert step in readme and step in compose
