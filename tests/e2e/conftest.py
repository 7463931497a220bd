"""Fixtures for end-to-end tests: the app in-process, or a real server where the process is the point."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.console_support import Console, chromium_or_skip, console_server
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


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One real server for every browser test, on SQLite, with operator, auditor and admin tokens."""
    chromium_or_skip()
    workdir = tmp_path_factory.mktemp("console")
    with console_server(workdir, f"sqlite:///{workdir / 'dobby.db'}") as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One Chromium for the whole session (Debian's: Playwright's own download cannot work here)."""
    path = chromium_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(path), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the console's server."""
    context = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests put their screenshots: docs/console with `make console-screenshots`."""
    configured = os.environ.get("DOBBY_CONSOLE_SCREENSHOTS")
    return Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
