"""Helpers shared by the tests: app folders, namespaces, ports, the accounts app."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reactive_store.client import Client, connect

ISSUER = "https://auth.example.test"
AUDIENCE = "reactive-store-tests"

AppFiles = dict[str, str]


def write_app(root: Path, files: AppFiles) -> Path:
    """Write an app folder: keys are paths like 'schema/__init__.py', values are source."""
    for rel, source in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
    return root


async def renumber_tables(url: str, tables: str, numbers: dict[str, int]) -> None:
    """Number tables as a deployment made before Convex's numbering did (from 1); `tables`
    is the namespace's quoted `_tables`."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute(f"UPDATE {tables} SET number = -number")
            for name, number in numbers.items():
                await conn.execute(f"UPDATE {tables} SET number = $2 WHERE name = $1",
                                   name, number)
    finally:
        await conn.close()


def new_namespace() -> str:
    return "t_" + uuid.uuid4().hex[:12]


# Servers started by tests listen below the kernel's ephemeral range (32768 and up by
# default), where outgoing connections never take a port between the check and the bind,
# and each pytest-xdist worker hands out ports from a slice of its own, in turn.
PORTS = range(20000, 32768)


def _port_slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0
    size = len(PORTS) // count
    start = PORTS.start + (index % count) * size
    return range(start, start + size)


_turns = itertools.count()  # this process's next port, within its slice


def free_port() -> int:
    """A port no one listens on now, never one this process handed out recently."""
    ports = _port_slice()
    for _ in range(len(ports)):
        port = ports[next(_turns) % len(ports)]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken (or closing): the next one
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


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


async def stop_server(deployment: Any) -> None:
    """Stop a server started by the `serve` fixture (its data stays)."""
    deployment.stop_server.should_exit = True  # type: ignore[attr-defined]
    await deployment.server_task  # type: ignore[attr-defined]


class Keys:
    """An identity provider for tests: RSA and EC keys, a JWKS file, signed tokens."""

    def __init__(self, folder: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.path = folder / "jwks.json"
        self.publish("rsa-1", "ec-1")

    def publish(self, rsa_kid: str, ec_kid: str) -> None:
        keys = []
        for kid, key, alg in ((rsa_kid, self.rsa, "RS256"), (ec_kid, self.ec, "ES256")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(
                key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        self.path.write_text(json.dumps({"keys": keys}))

    def token(self, *, alg: str = "RS256", kid: str = "rsa-1", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "iat": now, "exp": now + 600,
                "name": "Ada", "email": "ada@example.test", **claims}
        body = {k: v for k, v in body.items() if v is not None}
        key = self.ec if alg.startswith("ES") else self.rsa
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})

    def public_pem(self) -> bytes:
        return self.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def admin_clients(url: str, admin_key: str
                        ) -> AsyncIterator[tuple[Client, Callable[..., Awaitable[Client]]]]:
    """An admin client on `url`, and `open_client(**options)` for more; all closed after."""
    opened: list[Any] = []

    async def open_client(**options: Any) -> Client:
        manager = connect(url, **options)
        opened.append(manager)
        return await manager.__aenter__()

    client = await open_client(admin_key=admin_key)
    try:
        yield client, open_client
    finally:
        for manager in reversed(opened):
            await manager.__aexit__(None, None, None)
