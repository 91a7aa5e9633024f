"""End-to-end fixtures: real `reactive-store serve` processes, and the npm clients in tests/js.

`serve_app` / `module_serve_app` give a `ServerPool` (e2e_support.py): `await serve_app(app_dir)`
starts a server subprocess for an app folder on a free loopback port, in a fresh Postgres schema,
and returns its base URL (no trailing slash). On teardown the processes are terminated and their
schemas dropped. `js_client_dir` makes sure `tests/js/node_modules` holds the pinned npm `convex`
(running `npm ci` when it does not).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.servers import LOG_TAIL, ServerPool, server_pool

JS_DIR = Path(__file__).resolve().parent.parent / "js"


@pytest.fixture
async def serve_app(database_url: str, tmp_path_factory: pytest.TempPathFactory
                    ) -> AsyncIterator[ServerPool]:
    """`await serve_app(app_dir)` -> base URL of a real server, stopped after the test."""
    async with server_pool(database_url, tmp_path_factory.mktemp("server-logs")) as pool:
        yield pool


@pytest.fixture(scope="module")
async def module_serve_app(database_url: str, tmp_path_factory: pytest.TempPathFactory
                           ) -> AsyncIterator[ServerPool]:
    """Like `serve_app`, but the servers live until the end of the test module."""
    async with server_pool(database_url, tmp_path_factory.mktemp("server-logs")) as pool:
        yield pool


def _pinned_convex_version() -> str:
    version: str = json.loads((JS_DIR / "package.json").read_text())["dependencies"]["convex"]
    return version


def _installed_convex_version() -> str | None:
    manifest = JS_DIR / "node_modules" / "convex" / "package.json"
    try:
        version: str = json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


@pytest.fixture(scope="session")
def js_client_dir() -> Path:
    """tests/js with its node_modules installed (`npm ci` when missing or stale)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the npm client tests need `node` and `npm` on PATH (Node >= 20)",
                    pytrace=False)
    pinned = _pinned_convex_version()
    if _installed_convex_version() != pinned:
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True,
                text=True, timeout=600, check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"`npm ci` in {JS_DIR} took longer than 600 s", pytrace=False)
        if result.returncode != 0:
            pytest.fail(
                f"`npm ci` in {JS_DIR} failed with exit code {result.returncode}:\n"
                f"{result.stdout[-LOG_TAIL:]}\n{result.stderr[-LOG_TAIL:]}",
                pytrace=False,
            )
        installed = _installed_convex_version()
        if installed != pinned:
            pytest.fail(f"`npm ci` in {JS_DIR} left convex {installed} installed, "
                        f"package.json pins {pinned}", pytrace=False)
    return JS_DIR
