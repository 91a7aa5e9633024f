"""COMMIT and its outcomes: committed, conflicted, nothing committed, or unknown.

A lost connection during COMMIT usually leaves the outcome unknown. A transaction sent whole
in COMMIT's own message (buffered inserts, storage/transaction.py) can be resolved: once
its backend is gone, whether it committed can be read back (`resolve_lost_commit`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from reactive_store.storage.connections import FAILURES, Throttle, closed, discard, lost, rollback
from reactive_store.storage.names import Names
from reactive_store.storage.transaction import (
    RETRYABLE,
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    StorageError,
    Transaction,
    TransientConflict,
)

log = logging.getLogger(__name__)

RESOLVE_SECONDS = 2.0  # how long a lost one-message commit is resolved for
RESOLVE_LOG_SECONDS = 60  # how far back the commit log is searched for it

# `Store._pooled`: one statement outside a transaction, on a live connection.
Pooled = Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]
Resolver = Callable[[int, tuple[str, str], str | None], Awaitable[bool | None]]


async def commit(conn: Any, tx: Any, transaction: Transaction, throttle: Throttle,
                 resolve: Resolver) -> None:
    """COMMIT, classifying failures: conflict, nothing committed, or outcome unknown."""
    if transaction.broken or closed(conn):
        discard(conn)  # COMMIT was never sent; the server rolled back
        raise DatabaseUnavailable()
    # A transaction sent whole in COMMIT's message (buffered inserts) can be resolved
    # when that message is lost: by its first document, once its backend is gone.
    probe = None if tx.begun else transaction.first_insert
    pid = conn.get_server_pid() if probe is not None else 0
    try:
        after = (f"SELECT {transaction.names.system('sequence_now')}()"
                 if transaction.sequence_after else "")
        await tx.commit(transaction.final_statements(), after)
    except RETRYABLE as exc:
        await rollback(conn, tx, False)  # the commit step failed before COMMIT ran
        raise TransientConflict(str(exc)) from exc
    except FAILURES as exc:
        if not lost(exc, conn):
            log.error("commit refused: %r", exc)  # the server said no: nothing committed
            await rollback(conn, tx, False)
            raise StorageError() from exc
        discard(conn)
        if probe is not None:
            committed = await resolve(pid, probe, transaction.logged_writes)
            if committed is not None:
                throttle.warn("database connection lost during a one-message transaction "
                              "(%s): %r", "committed" if committed else "not committed", exc)
                if committed:
                    return
                raise DatabaseUnavailable() from exc
        if transaction.wrote:
            log.error("database connection lost during COMMIT; outcome unknown: %r", exc)
            raise CommitOutcomeUnknown() from exc
        throttle.warn("database connection lost during a read-only COMMIT: %r", exc)
        raise DatabaseUnavailable() from exc
    except BaseException:
        discard(conn)  # cancelled mid-COMMIT: the connection's state is unknown
        raise


async def resolve_lost_commit(pooled: Pooled, names: Names, pid: int, probe: tuple[str, str],
                              writes: str | None) -> bool | None:
    """Whether the transaction of backend `pid` that inserted `probe` (table, id) and
    logged `writes` committed; None when that cannot be known within RESOLVE_SECONDS.

    Once a backend is gone its transaction can no longer commit, and one that did is
    visible by then (a commit completes before a backend acts on a termination). The
    document tells first; if it is gone (another commit deleted it meanwhile), the
    commit log does: the logged write set names the new document, so it is unique.
    """
    # A backend still there (a connection lost on the network) is ended first.
    gone_sql = ("SELECT count(pg_terminate_backend(pid)) = 0 FROM pg_stat_activity "
                "WHERE pid = $1")
    found_sql = f"SELECT EXISTS (SELECT 1 FROM {names.table(probe[0])} WHERE _id = $1)"
    logged_sql = (f"SELECT EXISTS (SELECT 1 FROM {names.system('commits')} "
                  "WHERE (ts IS NULL OR ts >= ((extract(epoch FROM clock_timestamp()) "
                  f"- {RESOLVE_LOG_SECONDS}) * 1e9)::bigint) AND writes = $1)")
    deadline = asyncio.get_running_loop().time() + RESOLVE_SECONDS
    while True:
        try:
            if await pooled(lambda conn: conn.fetchval(gone_sql, pid)):
                found: bool = await pooled(
                    lambda conn: conn.fetchval(found_sql, probe[1]))
                if not found and writes is not None:
                    found = await pooled(
                        lambda conn: conn.fetchval(logged_sql, writes))
                return found
        except StorageError as exc:
            log.warning("resolving a lost commit failed: %r", exc)
        if asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(0.02)
