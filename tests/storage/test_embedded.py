"""EmbeddedPostgres: init, restart with data kept, stale postmaster.pid recovery, errors."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import asyncpg
import pytest

from reactive_store.storage.embedded import EmbeddedPostgres


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


async def test_start_stop_restart_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    pg = EmbeddedPostgres(data_dir)
    url = await asyncio.to_thread(pg.start)
    try:
        assert url.startswith("postgresql://postgres@/postgres?host=/")
        assert pg.url == url
        assert pg.start() == url  # idempotent
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        assert lines[5].strip() == ""  # no TCP listen address
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            await conn.execute("INSERT INTO t VALUES (1, 'kept')")
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(pg.stop)
    pg.stop()  # twice is fine
    assert not (data_dir / "postmaster.pid").exists()
    assert "ready to accept connections" in (data_dir / "postgres.log").read_text()
    with pytest.raises(RuntimeError, match="not started"):
        _ = pg.url

    again = EmbeddedPostgres(data_dir)
    url2 = await asyncio.to_thread(again.start)
    try:
        conn = await asyncpg.connect(url2)
        try:
            assert await conn.fetchval("SELECT name FROM t WHERE id = 1") == "kept"
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(again.stop)


async def test_recovers_from_killed_postmaster_with_long_path(tmp_path: Path) -> None:
    # A data_dir too long for a Unix socket path also puts the socket under /tmp.
    data_dir = tmp_path / ("d" * 60) / ("e" * 60) / "pgdata"
    first = EmbeddedPostgres(data_dir)
    url = await asyncio.to_thread(first.start)
    assert "host=/tmp/reactive-store-pg-" in url
    pid = postmaster_pid(data_dir)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}/stat").exists() and time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        await asyncio.sleep(0.05)
    assert (data_dir / "postmaster.pid").exists()  # stale file left behind

    second = EmbeddedPostgres(data_dir)
    url2 = await asyncio.to_thread(second.start)
    try:
        assert postmaster_pid(data_dir) != pid
        conn = await asyncpg.connect(url2)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(second.stop)


def test_data_dir_that_is_a_file_fails_clearly(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "pgdata"
    not_a_dir.write_text("oops")
    with pytest.raises(RuntimeError, match=r"data_dir .*pgdata.* not a directory"):
        EmbeddedPostgres(not_a_dir).start()


def test_a_second_user_of_a_running_server_does_not_stop_it(tmp_path: Path) -> None:
    """`reactive-store run` beside a running `serve` adopts its Postgres and leaves it up."""
    import subprocess

    data_dir = tmp_path / "pg"
    owner = EmbeddedPostgres(data_dir)
    owner.start()
    other_process = subprocess.Popen(["sleep", "60"])
    try:
        (data_dir / "reactive-store.owner").write_text(str(other_process.pid))
        guest = EmbeddedPostgres(data_dir)
        assert guest.start() == owner.url
        guest.stop()
        assert asyncio.run(_select_one(owner.url)) == 1, "the owner's server must keep running"
        other_process.kill()
        other_process.wait()
        # The launching process is gone now (a crash): the next user takes the server over.
        heir = EmbeddedPostgres(data_dir)
        heir.start()
        heir.stop()
        assert not (data_dir / "postmaster.pid").exists()
    finally:
        other_process.kill()
        owner.stop()


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        value: int = await conn.fetchval("SELECT 1")
        return value
    finally:
        await conn.close()
