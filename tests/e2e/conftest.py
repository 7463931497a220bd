"""Fixtures for end-to-end tests: the app in-process, or a real server where the process is the point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server, serve
from tests.support import InProcess, serve_in_process


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """A real `dobby serve` process, for tests where the process or the socket is the point."""
    with serve(database_url, tmp_path) as running:
        yield running


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[InProcess]:
    """The app of `dobby serve` in this process, through httpx.ASGITransport."""
    with serve_in_process(database_url, tmp_path) as running:
        yield running
