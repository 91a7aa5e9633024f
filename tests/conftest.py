"""Shared fixtures: a real Postgres (DATABASE_URL, else embedded), app folders, deployments."""

from __future__ import annotations

import os
import tempfile
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reactive_store.deployment import Deployment, Settings
from reactive_store.engine import Engine, EngineConfig


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


AppFiles = dict[str, str]


def write_app(root: Path, files: AppFiles) -> Path:
    """Write an app folder: keys are paths like 'schema/__init__.py', values are source."""
    for rel, source in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
    return root


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[[AppFiles], Path]:
    counter = iter(range(1000))

    def make(files: AppFiles) -> Path:
        return write_app(tmp_path / f"app{next(counter)}", files)

    return make


def new_namespace() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture
async def deploy(database_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Start deployments of app folders on the test database, each in a fresh namespace."""
    started: list[Deployment] = []

    async def start(app_dir: Path, *, namespace: str | None = None,
                    config: EngineConfig | None = None) -> Engine:
        deployment = Deployment(Settings(app_dir=app_dir, database_url=database_url,
                                         namespace=namespace or new_namespace(),
                                         engine=config or EngineConfig(), pool_size=12))
        engine = await deployment.start()
        started.append(deployment)
        engine.deployment = deployment  # type: ignore[attr-defined]
        return engine

    yield start
    for deployment in started:
        if deployment.store is not None:
            await deployment.store.drop()
        await deployment.stop()


ACCOUNTS_SCHEMA = """
from reactive_store import define_schema, define_table, v

schema = define_schema({
    "accounts": define_table({"owner": v.string(), "balance": v.int64()})
        .index("by_owner", ["owner"]),
})
"""

ACCOUNTS_FUNCTIONS = """
from reactive_store import ConvexError, mutation, query, v

@mutation(args={"owner": v.string(), "balance": v.int64()})
async def open(ctx, owner, balance):
    return await ctx.db.insert("accounts", {"owner": owner, "balance": balance})

@query(args={"owner": v.string()})
async def by_owner(ctx, owner):
    return await ctx.db.query("accounts").with_index(
        "by_owner", lambda q: q.eq("owner", owner)).first()

@query(args={})
async def total(ctx):
    return sum(a["balance"] for a in await ctx.db.query("accounts").collect())

@mutation(args={"src": v.id("accounts"), "dst": v.id("accounts"), "amount": v.int64()})
async def transfer(ctx, src, dst, amount):
    a = await ctx.db.get(src)
    b = await ctx.db.get(dst)
    if a["balance"] < amount:
        raise ConvexError({"code": "insufficient_funds", "balance": a["balance"]})
    await ctx.db.patch(src, {"balance": a["balance"] - amount})
    await ctx.db.patch(dst, {"balance": b["balance"] + amount})
    return a["balance"] - amount
"""

ACCOUNTS_APP: AppFiles = {
    "schema/__init__.py": ACCOUNTS_SCHEMA,
    "functions/accounts.py": ACCOUNTS_FUNCTIONS,
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def serve(database_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Run an app on a real uvicorn server in this event loop; yields (base_url, deployment)."""
    import asyncio

    import uvicorn

    from reactive_store.server import create_app

    running: list[tuple[Any, Any, Deployment]] = []

    async def start(app_dir: Path, *, namespace: str | None = None,
                    config: EngineConfig | None = None, port: int | None = None
                    ) -> tuple[str, Deployment]:
        deployment = Deployment(Settings(app_dir=app_dir, database_url=database_url,
                                         namespace=namespace or new_namespace(),
                                         engine=config or EngineConfig(), pool_size=12))
        port = port or free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(deployment), host="127.0.0.1",
                                               port=port, log_level="warning", lifespan="on"))
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
    for server, task, deployment in running:
        store = deployment.store
        if store is not None:
            await store.drop()
        server.should_exit = True
        await task


async def stop_server(deployment: Deployment) -> None:
    """Stop a server started by the `serve` fixture (its data stays)."""
    deployment.stop_server.should_exit = True  # type: ignore[attr-defined]
    await deployment.server_task  # type: ignore[attr-defined]
