"""Shared fixtures: a real Postgres (DATABASE_URL, else embedded), app folders, deployments."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reactive_store.deployment import Deployment, Settings
from reactive_store.engine.engine import Engine, EngineConfig
from tests.db_faults import ScratchDatabase, scratch_database
from tests.e2e.servers import drop_namespace
from tests.support import AppFiles, free_port, new_namespace, write_app


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """`DATABASE_URL` when set, else one embedded Postgres for the whole session."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from reactive_store.storage.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="rs-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata")
        yield server.start()
        server.stop()


@pytest.fixture
async def scratch(database_url: str) -> AsyncIterator[ScratchDatabase]:
    """A database of this test's own, for breaking from outside (tests/db_faults.py)."""
    async with scratch_database(database_url) as db:
        yield db


@pytest.fixture(scope="session")
def pgvector_url(database_url: str) -> Iterator[str]:
    """A Postgres with pgvector: the embedded one (it ships pgvector). When DATABASE_URL
    names another server (which may lack it), one more embedded server for the session."""
    if not os.environ.get("DATABASE_URL"):
        yield database_url
        return
    from reactive_store.storage.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="rs-pgvector-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata")
        yield server.start()
        server.stop()


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[[AppFiles], Path]:
    counter = iter(range(1000))

    def make(files: AppFiles) -> Path:
        return write_app(tmp_path / f"app{next(counter)}", files)

    return make


@pytest.fixture
async def deploy(database_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Start deployments of app folders on the test database, each in a fresh namespace."""
    started: list[Deployment] = []

    async def start(app_dir: Path, *, namespace: str | None = None,
                    config: EngineConfig | None = None, url: str | None = None) -> Engine:
        deployment = Deployment(Settings(app_dir=app_dir, database_url=url or database_url,
                                         namespace=namespace or new_namespace(),
                                         engine=config or EngineConfig(), pool_size=12))
        engine = await deployment.start()
        started.append(deployment)
        engine.deployment = deployment  # type: ignore[attr-defined]
        return engine

    yield start
    # Stop everything first (background work holds locks that DROP SCHEMA would wait on),
    # then drop each namespace once.
    for deployment in started:
        await deployment.stop()
    for namespace in dict.fromkeys(d.settings.namespace for d in started):
        await drop_namespace(database_url, namespace)


@pytest.fixture
async def serve(database_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Run an app on a real uvicorn server in this event loop; yields (base_url, deployment)."""
    import asyncio

    import uvicorn

    from reactive_store.server import create_app

    running: list[tuple[Any, Any, Deployment]] = []

    async def start(app_dir: Path, *, namespace: str | None = None,
                    config: EngineConfig | None = None, port: int | None = None,
                    dev: bool = False, admin_key: str | None = None,
                    cors_origins: tuple[str, ...] = ()) -> tuple[str, Deployment]:
        import dataclasses

        from reactive_store.dev import DevReloader

        port = port or free_port()
        config = config or EngineConfig()
        if config.public_url is None:  # file and upload URLs point at this server
            config = dataclasses.replace(config, public_url=f"http://127.0.0.1:{port}")
        deployment = Deployment(Settings(app_dir=app_dir, database_url=database_url,
                                         namespace=namespace or new_namespace(),
                                         engine=config, pool_size=12,
                                         admin_key=admin_key, cors_origins=cors_origins))
        reloader = DevReloader(deployment, echo=lambda line: None) if dev else None
        deployment.dev = reloader  # type: ignore[attr-defined]
        app = create_app(deployment, dev=reloader)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on",
                                               ws="websockets-sansio"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        running.append((server, task, deployment))
        deployment.stop_server = server  # type: ignore[attr-defined]
        deployment.server_task = task  # type: ignore[attr-defined]
        return f"http://127.0.0.1:{port}", deployment

    yield start
    for server, task, _ in running:
        server.should_exit = True
        await task
    for namespace in dict.fromkeys(d.settings.namespace for _, _, d in running):
        await drop_namespace(database_url, namespace)
