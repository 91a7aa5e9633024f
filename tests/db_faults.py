"""Database faults for tests: a scratch database of their own, backends killed, outages.

Never touches the machine's Postgres server itself (other sessions share it): every fault is
confined to a database created for the test, `rs_fault_<hex>`, dropped (FORCE) afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def url_for_database(url: str, database: str) -> str:
    """`url` with its database name replaced."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@dataclass
class ScratchDatabase:
    """A database created for one test; `admin_url` is where the faults are driven from."""

    name: str
    url: str
    admin_url: str

    async def _admin(self, sql: str, *args: object) -> object:
        conn = await asyncpg.connect(self.admin_url)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def terminate(self) -> int:
        """pg_terminate_backend every connection to this database; return how many."""
        count = await self._admin(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()", self.name)
        assert isinstance(count, int)
        return count

    async def backends(self) -> int:
        count = await self._admin(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", self.name)
        assert isinstance(count, int)
        return count

    async def refuse_connections(self) -> None:
        """Start an outage: new connections are refused and the existing ones killed."""
        await self._admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        await self.terminate()

    async def allow_connections(self) -> None:
        await self._admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[ScratchDatabase]:
    """Create a database (from template0, which nobody is connected to) and drop it after."""
    name = "rs_fault_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await conn.close()
    scratch = ScratchDatabase(name, url_for_database(admin_url, name), admin_url)
    try:
        yield scratch
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
