"""Browser fixtures: a real server for the repo's own app, and Debian's Chromium via Playwright.

Playwright drives the system Chromium (`apt-get install -y chromium`); it never downloads a
browser. A missing Chromium or a missing `playwright` package fails the tests with a clear
message rather than skipping them.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import ServerProcess, server_pool

# Loaded before the test modules here, which then import Playwright plainly.
try:
    from playwright.async_api import async_playwright
except ImportError:  # fail, never skip: CI must not silently lose the browser test
    pytest.fail("the browser tests need Playwright for Python: `.venv/bin/pip install "
                "playwright` (never `playwright install`: the tests use /usr/bin/chromium)",
                pytrace=False)

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
async def app_server(database_url: str, tmp_path_factory: pytest.TempPathFactory
                     ) -> AsyncIterator[ServerProcess]:
    """`reactive-store serve --app <repo>` in a fresh schema (dropped after); `.url`,
    `.restart()` (SIGKILL, then the same port and schema)."""
    async with server_pool(database_url, tmp_path_factory.mktemp("server-logs")) as pool:
        yield pool.server(await pool(REPO))


@pytest.fixture
def app_url(app_server: ServerProcess) -> str:
    return app_server.url


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium from /usr/bin/chromium."""
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}: "
                    "run `apt-get update && apt-get install -y chromium` as root",
                    pytrace=False)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
