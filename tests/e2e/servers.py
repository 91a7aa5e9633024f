"""Real `reactive-store serve` subprocesses for the end-to-end tests (a plain module).

`ServerPool` starts servers for app folders on loopback ports, each in a fresh Postgres schema
unless told which one (two servers on one schema share one deployment's data), and can kill a
server with SIGKILL and start it again on the same port and schema. The `serve_app` /
`module_serve_app` fixtures in conftest.py hand out a pool and clean it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from reactive_store.storage import Store
from tests.support import free_port, new_namespace

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 6000


def tail(path: Path, limit: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return text if len(text) <= limit else "...\n" + text[-limit:]


@dataclass
class ServerProcess:
    """One `reactive-store serve` subprocess; its stdout and stderr go to `log_path`.

    `port` is picked on the first start and kept: `restart` comes back on the same port.
    """

    app_dir: Path
    database_url: str
    namespace: str
    log_path: Path
    port: int = 0
    command: str = "serve"  # or "dev": the hot-reloading server
    options: tuple[str, ...] = ()  # more command-line options
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return tail(self.log_path)

    def _spawn(self) -> None:
        self._log = self.log_path.open("ab")
        command = [
            sys.executable, "-m", "reactive_store", self.command,
            "--app", str(self.app_dir),
            "--database-url", self.database_url,
            "--db-schema", self.namespace,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "warning", *self.options,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)

    async def start(self, timeout: float = STARTUP_TIMEOUT, *, port: int | None = None) -> str:
        """Spawn and wait for `GET /version`; fail the test with the log when it does not come.

        With `port` (or after a first start) the server must come up on that very port: a
        lost bind race is retried on it for a while. Without, a fresh free port is tried.
        """
        fixed = port or self.port or None
        deadline = time.monotonic() + timeout
        code: int | None = None
        exited = False
        while True:
            self.port = fixed or free_port()
            self._spawn()
            if await self._wait_ready(deadline):
                return self.url
            exited = self.proc is not None and self.proc.poll() is not None
            code = await self.stop()
            lost_bind = exited and "address already in use" in self.log().lower()
            if not lost_bind or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.2)
        how = f"exited with code {code}" if exited else f"no answer within {timeout:g} s"
        pytest.fail(
            f"reactive-store serve --app {self.app_dir} did not come up at {self.url} "
            f"({how}); its output:\n{self.log()}",
            pytrace=False,
        )

    async def _wait_ready(self, deadline: float) -> bool:
        assert self.proc is not None
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
        self._close_log()
        return code

    async def kill(self) -> None:
        """SIGKILL the process (no shutdown of any kind) and wait until it is gone."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        self._close_log()

    async def restart(self, timeout: float = STARTUP_TIMEOUT) -> str:
        """SIGKILL the server, then start it again on the same port and namespace."""
        await self.kill()
        return await self.start(timeout, port=self.port)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


async def drop_namespace(database_url: str, namespace: str) -> None:
    store = await Store.open(database_url, namespace, min_size=1, max_size=1)
    try:
        await store.drop()
    finally:
        await store.close()


class ServerPool:
    """`await pool(app_dir)` starts a server and returns its base URL (no trailing slash).

    `namespace=` puts it on an existing deployment's schema (e.g. a second process for the
    same data); `pool.server(url)` gives the `ServerProcess` behind a URL, for `restart`.
    """

    def __init__(self, database_url: str, log_dir: Path) -> None:
        self.database_url = database_url
        self.log_dir = log_dir
        self.servers: list[ServerProcess] = []

    async def __call__(self, app_dir: Path, *, namespace: str | None = None,
                       port: int | None = None, timeout: float = STARTUP_TIMEOUT,
                       command: str = "serve", options: tuple[str, ...] = ()) -> str:
        ns = namespace or new_namespace()
        server = ServerProcess(
            app_dir=Path(app_dir).resolve(), database_url=self.database_url, namespace=ns,
            log_path=self.log_dir / f"server-{ns}-{len(self.servers)}.log", command=command,
            options=options)
        self.servers.append(server)
        return await server.start(timeout, port=port)

    def server(self, url: str) -> ServerProcess:
        for server in self.servers:
            if server.url == url.rstrip("/"):
                return server
        raise KeyError(f"no server of this pool at {url}")

    def logs(self) -> str:
        return "\n".join(f"--- {s.url} ({s.namespace}):\n{s.log()}" for s in self.servers)

    async def close(self) -> None:
        """Stop every server, drop their namespaces; fail if one had exited on its own."""
        crashed = [s for s in self.servers if s.proc is not None and not s.running]
        for server in self.servers:
            await server.stop()
        for namespace in dict.fromkeys(s.namespace for s in self.servers):
            await drop_namespace(self.database_url, namespace)
        if crashed:
            pytest.fail(
                "reactive-store exited before teardown:\n"
                + "\n".join(f"--- {s.url} ({s.app_dir}):\n{s.log()}" for s in crashed),
                pytrace=False,
            )


# What the `serve_app` / `module_serve_app` fixtures give a test.
ServeApp = ServerPool


@contextlib.asynccontextmanager
async def server_pool(database_url: str, log_dir: Path) -> AsyncIterator[ServerPool]:
    pool = ServerPool(database_url, log_dir)
    try:
        yield pool
    finally:
        await pool.close()
