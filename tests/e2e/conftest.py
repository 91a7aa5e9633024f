"""End-to-end fixtures: real `reactive-store serve` processes, and the npm clients in tests/js.

`serve_app` / `module_serve_app` start a server subprocess for an app folder on a free loopback
port, in a fresh Postgres schema, and give back its base URL (no trailing slash). On teardown the
process is terminated and the schema dropped. `js_client_dir` makes sure `tests/js/node_modules`
holds the pinned npm `convex` (running `npm ci` when it does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import httpx
import pytest

from reactive_store.storage import Store

# Why the `__getattr__` below: without __init__.py files, pytest imports this file as the module
# `conftest`, and it replaces tests/conftest.py under that name in sys.modules. Test modules
# collected after it (anywhere under tests/) still write `from conftest import ACCOUNTS_APP`, so
# any public name this file lacks is looked up in tests/conftest.py: the very module pytest loaded
# (found in `pytest_configure`), so module-level state is not duplicated. Its fixtures are not
# re-registered here: pytest finds fixtures by listing a module's own attributes.
_ROOT_CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"
_root_module: ModuleType | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _root_module
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if isinstance(plugin, ModuleType) and path and Path(path).resolve() == _ROOT_CONFTEST:
            _root_module = plugin


def _root() -> ModuleType:
    global _root_module
    if _root_module is None:  # not loaded by pytest (e.g. --noconftest): load a copy
        spec = importlib.util.spec_from_file_location("_tests_root_conftest", _ROOT_CONFTEST)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _root_module = module
    return _root_module


def __getattr__(name: str) -> Any:
    if not name.startswith(("_", "pytest", "collect_ignore")):
        with contextlib.suppress(AttributeError):
            return getattr(_root(), name)
    raise AttributeError(f"module {__name__!r} ({__file__}) has no attribute {name!r}")


JS_DIR = Path(__file__).resolve().parent.parent / "js"
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 6000

ServeApp = Callable[..., Awaitable[str]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return text if len(text) <= LOG_TAIL else "...\n" + text[-LOG_TAIL:]


@dataclass
class ServerProcess:
    """One `reactive-store serve` subprocess; its stdout and stderr go to `log_path`."""

    app_dir: Path
    database_url: str
    namespace: str
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return _tail(self.log_path)

    def _spawn(self) -> None:
        self.port = free_port()
        self._log = self.log_path.open("ab")
        command = [
            sys.executable, "-m", "reactive_store", "serve",
            "--app", str(self.app_dir),
            "--database-url", self.database_url,
            "--db-schema", self.namespace,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "warning",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)

    async def start(self, timeout: float = STARTUP_TIMEOUT) -> str:
        """Spawn and wait for `GET /version`; retry on a lost port race; fail with the log."""
        for _attempt in range(3):
            self._spawn()
            assert self.proc is not None
            if await self._wait_ready(timeout):
                return self.url
            exited = self.proc.poll() is not None
            code = await self.stop()
            if not (exited and "address already in use" in self.log().lower()):
                break
        how = f"exited with code {code}" if exited else f"no answer within {timeout:g} s"
        pytest.fail(
            f"reactive-store serve --app {self.app_dir} did not come up at {self.url} "
            f"({how}); its output:\n{self.log()}",
            pytrace=False,
        )

    async def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                with contextlib.suppress(httpx.TransportError):
                    response = await http.get(f"{self.url}/version")
                    if response.status_code == 200:
                        return True
                await asyncio.sleep(0.05)
        return False

    async def stop(self) -> int | None:
        """Terminate (then kill) the process; return its exit code."""
        proc, self.proc = self.proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    await asyncio.to_thread(proc.wait, STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    await asyncio.to_thread(proc.wait)
            code = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


async def drop_namespace(database_url: str, namespace: str) -> None:
    store = await Store.open(database_url, namespace, min_size=1, max_size=1)
    try:
        await store.drop()
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _server_pool(database_url: str, log_dir: Path) -> AsyncIterator[ServeApp]:
    servers: list[ServerProcess] = []

    async def serve(app_dir: Path, *, namespace: str | None = None,
                    timeout: float = STARTUP_TIMEOUT) -> str:
        """Start a server for `app_dir`; return its base URL, e.g. http://127.0.0.1:PORT."""
        ns = namespace or _root().new_namespace()
        server = ServerProcess(app_dir=Path(app_dir).resolve(), database_url=database_url,
                               namespace=ns, log_path=log_dir / f"server-{ns}.log")
        servers.append(server)
        return await server.start(timeout)

    try:
        yield serve
    finally:
        crashed = []
        for server in servers:
            running = server.proc is not None and server.proc.poll() is None
            had_proc = server.proc is not None
            await server.stop()
            if had_proc and not running:
                crashed.append(server)
        for server in servers:
            await drop_namespace(database_url, server.namespace)
        if crashed:
            pytest.fail(
                "reactive-store exited before teardown:\n"
                + "\n".join(f"--- {s.url} ({s.app_dir}):\n{s.log()}" for s in crashed),
                pytrace=False,
            )


@pytest.fixture
async def serve_app(database_url: str, tmp_path_factory: pytest.TempPathFactory
                    ) -> AsyncIterator[ServeApp]:
    """`await serve_app(app_dir)` -> base URL of a real server, stopped after the test."""
    async with _server_pool(database_url, tmp_path_factory.mktemp("server-logs")) as serve:
        yield serve


@pytest.fixture(scope="module")
async def module_serve_app(database_url: str, tmp_path_factory: pytest.TempPathFactory
                           ) -> AsyncIterator[ServeApp]:
    """Like `serve_app`, but the servers live until the end of the test module."""
    async with _server_pool(database_url, tmp_path_factory.mktemp("server-logs")) as serve:
        yield serve


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
