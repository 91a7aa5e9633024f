"""What running a function yields (Outcome, QueryFailure), the engine's config, and helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from reactive_store.app.registry import FunctionSpec, canonical_path
from reactive_store.engine.context import MutationCtx, QueryCtx
from reactive_store.engine.db import DatabaseWriter
from reactive_store.engine.readset import ReadSet, WriteSet
from reactive_store.errors import BadRequest
from reactive_store.limits import FileLimits, Limits, Usage
from reactive_store.storage import Transaction
from reactive_store.storage.transaction import Snapshot


@dataclass
class Outcome:
    """A function's result: the value, its Convex encoding, and what it read or wrote."""

    value: Any
    encoded: Any
    reads: ReadSet = field(default_factory=ReadSet)
    writes: WriteSet = field(default_factory=WriteSet)
    ts: int | None = None
    retries: int = 0
    log_lines: list[str] = field(default_factory=list)  # as sent to the caller
    journal: str | None = None  # a query's journal: what its next run must repeat
    # A query whose snapshot held a commit without a timestamp yet that wrote inside what it
    # read: the result is not the state at `ts`, and must be computed again.
    ahead: bool = False


@dataclass
class QueryFailure:
    """A query that raised: the error, and what it had read before (it re-runs on change)."""

    error: BaseException
    reads: ReadSet
    ts: int
    log_lines: list[str] = field(default_factory=list)
    journal: str | None = None
    ahead: bool = False  # as Outcome.ahead


@dataclass
class MutationHooks:
    """Work done in a mutation's own transaction, around the function.

    `before` runs first and may end the transaction with a finished Outcome (the function
    is then not called); `after` gets the function's value and runs before COMMIT.
    """

    before: Callable[[DatabaseWriter, Transaction], Awaitable[Outcome | None]] | None = None
    after: Callable[[DatabaseWriter, Any], Awaitable[None]] | None = None


def label(ref: Any) -> str | None:
    """The canonical path a function reference names (None when it cannot name one)."""
    if isinstance(ref, FunctionSpec):
        return ref.path
    try:
        return canonical_path(ref)
    except BadRequest:
        return None


def usage_of(ctx: Any) -> Usage | None:
    return ctx.db.reads.usage if isinstance(ctx, QueryCtx | MutationCtx) else None



@dataclass(frozen=True)
class EngineConfig:
    limits: Limits = field(default_factory=Limits)
    files: FileLimits = field(default_factory=FileLimits)
    # The base URL clients reach this deployment at, for file and upload URLs (None: URLs
    # are relative, "/api/storage/...", which browsers on the same origin resolve).
    public_url: str | None = None
    # How far back /api/query_at_ts reads (seconds): mutations log before-images while it
    # is above 0 (the deployment sets it from ServerLimits.query_history_retention_s).
    history_seconds: float = 0.0
    max_attempts: int = 16
    backoff_base: float = 0.002
    backoff_cap: float = 0.1


def seed_of(path: str, seed: str) -> int:
    """The `ctx.random()` seed of a call of `path` seeded by `seed` (same on every attempt)."""
    return int.from_bytes(hashlib.sha256(f"{path}\0{seed}".encode()).digest()[:8])


def unsequenced(snapshot: Snapshot) -> list[WriteSet]:
    """The write sets of the commits a snapshot holds that have no timestamp yet."""
    return [WriteSet.from_text(text) for text in snapshot.unsequenced]


def ahead_of(reads: ReadSet, pending: list[WriteSet]) -> bool:
    """True when a commit without a timestamp wrote inside `reads`: a result computed from
    them is not the state at its snapshot's timestamp (docs/architecture.md)."""
    return any(reads.overlaps(writes) for writes in pending)
