"""Run functions: queries in one snapshot, mutations SERIALIZABLE with retries, actions outside.

Every call resolves its function once (a hot reload swaps `app` whole, and a call runs on
the version it started with to the end), validates its arguments, runs the handler under
its time limit, and validates and encodes what it returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from reactive_store import values
from reactive_store.annotations.markers import to_plain
from reactive_store.app.loader import App
from reactive_store.app.registry import FunctionSpec, Kind, Registry, canonical_path
from reactive_store.engine.commit_ts import CommitTimestamps, cancel
from reactive_store.engine.context import ActionCtx, Identity, MutationCtx, QueryCtx
from reactive_store.engine.db import (
    DatabaseReader,
    DatabaseWriter,
    SystemReader,
    SystemTableWriter,
)
from reactive_store.engine.environment import EnvironmentCache, StaleEnvironment
from reactive_store.engine.files import FileService
from reactive_store.engine.history import PastReads, PastVersions, past_at, prove_unchanged
from reactive_store.engine.readset import ReadSet, WriteSet
from reactive_store.engine.scheduler import ActionScheduler, Scheduler
from reactive_store.engine.storage_api import ActionStorage, MutationStorage, QueryStorage
from reactive_store.engine.system_tables import with_system_tables
from reactive_store.engine.vector import vector_search
from reactive_store.errors import (
    BadRequest,
    ConflictError,
    FunctionTimeout,
    InternalError,
    PermissionDenied,
    QueryError,
    ValidationError,
)
from reactive_store.ids import TABLE_NAMES
from reactive_store.limits import FileLimits, Limits, Usage
from reactive_store.observe.capture import route_app_logs
from reactive_store.observe.observer import SYSTEM_PREFIX, Observer, lines_of
from reactive_store.storage import Store, Transaction, TransientConflict, history
from reactive_store.storage.store import DatabaseUnavailable, request_hash
from reactive_store.storage.transaction import RecordedRequest, Snapshot
from reactive_store.validators import DOCUMENTS

T = TypeVar("T")
# A query re-run because the cached variables were stale gets the transaction's values;
# only a function that picks which variable to read from another one needs a third try.
ENV_ATTEMPTS = 8
# A query at a timestamp waits this many times (1 ms, doubling) for commits its snapshot
# read to get their timestamps (storage/sequencer.py) before giving up.
AHEAD_ATTEMPTS = 10
# The Convex CLI prints an error containing these words as a permission error and exits.
PERMISSION_DENIED = "You do not have permission to perform this operation"
WriteBody = Callable[[DatabaseWriter, Transaction], Awaitable["tuple[Any, Any] | Outcome"]]


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


class _BrokenSnapshot(Exception):
    """A query broke its batch's transaction; the rest of the batch needs a new one.

    `failure` is the query's answer, or None when it should simply run again (a lost
    connection: the query itself did nothing wrong)."""

    def __init__(self, cause: Exception, failure: QueryFailure | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.failure = failure


MAX_LOST_SNAPSHOTS = 3  # snapshots a batch may lose to the database before giving up
RETRY_UNAVAILABLE_SECONDS = 2.0  # how long a mutation retries a database that went away


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


class Engine:
    """Runs an app's functions against its store."""

    def __init__(self, store: Store, app: App, config: EngineConfig | None = None,
                 observer: Observer | None = None) -> None:
        self.store = store
        self.observer = observer or Observer()
        # The dashboard's own functions (`_system/...`, all internal: admin only); set by
        # the server, empty otherwise.
        self.system = Registry()
        self.app = app
        self.config = config or EngineConfig()
        self.env = EnvironmentCache()  # loaded and kept fresh by the deployment
        self.files = FileService(store, self.config.files, self.config.public_url,
                                 self.write_system)  # started by the deployment
        # The deployment gives it the commit stream (`timestamps.stream`).
        self.timestamps = CommitTimestamps(store)
        self.writing = 0  # write transactions of this process between BEGIN and COMMIT

    @property
    def app(self) -> App:
        return self._app

    @app.setter
    def app(self, app: App) -> None:
        # Swapped whole by a hot reload; `schema` is the app's plus the system tables.
        self._app = app
        self.schema = with_system_tables(app.schema)
        self.documents = {name: table.validator for name, table in self.schema.tables.items()}
        if self.observer.enabled:
            route_app_logs(app.package)

    # -- one call ---------------------------------------------------------------------------
    def prepare(self, ref: Any, args: Any, kind: Kind | None, internal_ok: bool
                ) -> tuple[FunctionSpec, dict[str, Any]]:
        """Resolve the function (once per call) and validate its arguments."""
        spec = self.resolve(ref, kind, internal_ok)
        token = TABLE_NAMES.set(self.store.table_names)
        documents = DOCUMENTS.set(self.documents)
        try:
            return spec, spec.args.validate(args)
        finally:
            DOCUMENTS.reset(documents)
            TABLE_NAMES.reset(token)

    def resolve(self, ref: Any, kind: Kind | None, internal_ok: bool) -> FunctionSpec:
        """The function `ref` names. `_system/` functions serve the admin only; anyone else
        is told so in the words the Convex CLI recognises as a permission error."""
        registry = self.functions_for(ref)
        if registry is self.system and not internal_ok:
            shown = ref.path if isinstance(ref, FunctionSpec) else ref
            raise PermissionDenied(f"{PERMISSION_DENIED}: {shown!r} needs the admin key "
                                   "(the key was missing or not valid)")
        return registry.resolve(ref, kind=kind, internal_ok=internal_ok)

    def functions_for(self, ref: Any) -> Registry:
        """The registry a reference resolves in: the system one for `_system/` paths."""
        path = ref.path if isinstance(ref, FunctionSpec) else ref
        if isinstance(path, str) and path.startswith(SYSTEM_PREFIX):
            return self.system
        return self.app.functions

    async def call(self, spec: FunctionSpec, ctx: Any, args: dict[str, Any]) -> tuple[Any, Any]:
        """Call the handler under its time limit; validate and encode what it returns."""
        limits = self.config.limits
        seconds = limits.action_seconds if spec.kind is Kind.ACTION else limits.function_seconds
        token = TABLE_NAMES.set(self.store.table_names)
        documents = DOCUMENTS.set(self.documents)
        try:
            try:
                with self.observer.attempt(usage_of(ctx)):
                    async with asyncio.timeout(seconds):
                        result = spec.handler(ctx, **spec.arguments(args))
                        if inspect.isawaitable(result):
                            result = await result
            except TimeoutError:
                raise FunctionTimeout(
                    f"{spec.path} ran past its time limit of {seconds:g} s and was cancelled"
                ) from None
            except (InternalError, TransientConflict):
                raise
            except Exception:
                await self._verify_env(ctx)  # a stale variable may be why it failed
                raise
            await self._verify_env(ctx)
            if spec.returns is not None:
                try:
                    result = spec.returns.validate(spec.result(result), "return value")
                except ValidationError as exc:
                    raise ValidationError(f"{spec.path}: {exc.message}") from None
            return _encode_result(result)
        finally:
            DOCUMENTS.reset(documents)
            TABLE_NAMES.reset(token)

    @staticmethod
    async def _verify_env(ctx: Any) -> None:
        """Check the variables a query or mutation saw against its own transaction."""
        if isinstance(ctx, QueryCtx | MutationCtx) and (ctx.env.seen or ctx.env.seen_all):
            await ctx.env.verify(SystemReader(ctx.db.reads, internal=True))

    def _reader(self, tx: Transaction, journal: str | None = None,
                past: PastVersions | None = None) -> DatabaseReader:
        limits, names = self.config.limits, self.store.table_names
        if past is None:
            return DatabaseReader(tx, self.schema, names, limits, journal)
        reads = PastReads(tx, self.schema, names, limits, past, journal)
        return DatabaseReader(tx, self.schema, names, limits, journal, reads)

    async def _query_call(self, tx: Transaction, spec: FunctionSpec, args: dict[str, Any],
                          identity: Identity | None, journal: str | None = None,
                          past: PastVersions | None = None
                          ) -> tuple[DatabaseReader, tuple[Any, Any] | Exception]:
        """Call a query in `tx`: its reader and (value, encoded), or the exception it raised.
        When the cached variables were stale it runs again with the transaction's values
        (with `past`, the values at that timestamp)."""
        overrides: dict[str, str | None] = {}
        for _ in range(ENV_ATTEMPTS):
            db = self._reader(tx, journal, past)
            try:
                ctx = QueryCtx(db, identity, self.env.view(overrides),
                               QueryStorage(self.files, db))
                return db, await self.call(spec, ctx, args)
            except StaleEnvironment as exc:
                overrides.update(exc.values)
            except Exception as exc:
                return db, exc
        return db, ConflictError(f"{spec.path}: environment variables kept changing while "
                                 f"it ran ({ENV_ATTEMPTS} tries)")

    # -- queries ----------------------------------------------------------------------------
    async def run_query(
        self, ref: Any, args: Any, identity: Identity | None = None, *,
        internal_ok: bool = False, at_ts: int | None = None, journal: str | None = None,
    ) -> Outcome:
        """Run a query in one REPEATABLE READ snapshot.

        With `at_ts`, the result must be the one the query had at that earlier commit.
        Postgres keeps no old versions, so the query runs on the current snapshot and the
        commit log proves that no commit since `at_ts` wrote inside what it read.
        `journal` is one an earlier run returned (`Outcome.journal`), to repeat its page.
        """
        with self.observer.execution(label(ref), "query", identity) as run:
            outcome = await self._query(ref, args, identity, internal_ok, at_ts, journal)
        outcome.log_lines = run.lines
        return outcome

    async def _query(self, ref: Any, args: Any, identity: Identity | None, internal_ok: bool,
                     at_ts: int | None, journal: str | None) -> Outcome:
        spec, checked = self.prepare(ref, args, Kind.QUERY, internal_ok)
        for attempt in range(AHEAD_ATTEMPTS):
            outcome = await self._query_in_snapshot(spec, checked, identity, at_ts, journal)
            if not outcome.ahead:
                return outcome
            # Its snapshot held commits that have no timestamp yet: once they have one,
            # a new snapshot's timestamp covers them.
            self.store.sequencer.nudge()
            await asyncio.sleep(0.001 * 2**attempt)
        raise QueryError(f"{spec.path}: commits it read still have no timestamp; "
                         "query again shortly")

    async def _query_in_snapshot(self, spec: FunctionSpec, checked: dict[str, Any],
                                 identity: Identity | None, at_ts: int | None,
                                 journal: str | None) -> Outcome:
        async with self.store.read() as tx:
            snapshot = await tx.snapshot() if at_ts is not None else None
            ts = None if snapshot is None else snapshot.ts
            past = None if snapshot is None or at_ts is None else await past_at(
                tx, snapshot, at_ts, self.config.history_seconds,
                self.config.limits.documents_scanned)
            db, result = await self._query_call(tx, spec, checked, identity, journal, past)
            if isinstance(result, Exception):
                raise result
            value, encoded = result
            reads = db.read_set()
            if past is not None:  # exact at `at_ts`, whatever came after it
                return Outcome(value, encoded, reads=reads, ts=at_ts,
                               journal=db.reads.pages.journal())
            if snapshot is not None and ahead_of(reads, unsequenced(snapshot)):
                return Outcome(value, encoded, reads=reads, ts=ts, ahead=True)
            if at_ts is not None and ts is not None and at_ts < ts:
                await prove_unchanged(tx, spec.path or "query", reads, (at_ts, ts),
                                      self.config.history_seconds)
                ts = at_ts
        return Outcome(value, encoded, reads=reads, ts=ts, journal=db.reads.pages.journal())

    async def run_query_batch(
        self, calls: list[tuple[Any, Any, Identity | None, bool, str | None]]
    ) -> tuple[int, list[Outcome | QueryFailure]]:
        """Run several queries `(ref, args, identity, internal_ok, journal)` in one snapshot;
        return its timestamp and each result.

        A query that fails leaves the others untouched, unless it broke the transaction
        (time limit, database error): then the rest run again in a fresh snapshot.
        """
        results: list[Outcome | QueryFailure] = []
        ts = 0
        lost = 0
        while len(results) < len(calls):
            try:
                async with self.store.read() as tx:
                    snapshot = await tx.snapshot()
                    ts, pending = snapshot.ts, unsequenced(snapshot)
                    for call in calls[len(results):]:
                        result = await self._batch_query(tx, ts, *call)
                        result.ahead = ahead_of(result.reads, pending)
                        results.append(result)
            except _BrokenSnapshot as broken:
                if broken.failure is not None:
                    results.append(broken.failure)
                    continue
                lost += 1
                if lost >= MAX_LOST_SNAPSHOTS:
                    raise broken.cause from None  # the caller keeps old results, tries later
        if any(result.ahead for result in results):
            self.store.sequencer.nudge()
        return ts, results

    async def _batch_query(self, tx: Transaction, ts: int, ref: Any, args: Any,
                           identity: Identity | None, internal: bool, journal: str | None
                           ) -> Outcome | QueryFailure:
        db: DatabaseReader | None = None
        try:
            with self.observer.execution(label(ref), "query", identity) as run:
                spec, checked = self.prepare(ref, args, Kind.QUERY, internal)
                db, result = await self._query_call(tx, spec, checked, identity, journal)
                if isinstance(result, Exception):
                    raise result  # recorded as this execution's failure
        except (FunctionTimeout, InternalError) as exc:
            if db is None:
                return QueryFailure(exc, ReadSet(), ts, lines_of(exc))
            # The transaction is broken: the rest of the batch needs a fresh snapshot. A lost
            # connection is no answer for this query (it runs again); anything else is.
            failure = None if getattr(exc, "retryable", False) else QueryFailure(
                exc, db.read_set(), ts, lines_of(exc), db.reads.pages.journal())
            raise _BrokenSnapshot(exc, failure) from exc
        except Exception as exc:
            if db is None:
                return QueryFailure(exc, ReadSet(), ts, lines_of(exc))
            return QueryFailure(exc, db.read_set(), ts, lines_of(exc), db.reads.pages.journal())
        assert db is not None and not isinstance(result, Exception)
        value, encoded = result
        return Outcome(value, encoded, reads=db.read_set(), ts=ts, log_lines=run.lines,
                       journal=db.reads.pages.journal())

    # -- mutations --------------------------------------------------------------------------
    async def run_mutation(
        self, ref: Any, args: Any, identity: Identity | None = None, *, internal_ok: bool = False,
        request: tuple[str, int] | None = None, replay_possible: bool = False,
        hooks: MutationHooks | None = None, seed: str | None = None, timestamp: bool = True,
    ) -> Outcome:
        """Run a mutation as one SERIALIZABLE transaction, re-running it on conflict.

        `request` (client session id, request id) records the result with the commit; with
        `replay_possible` a request already committed returns its recorded result and
        timestamp unrun. `ctx.random()` is seeded from `seed`, else from the request, else
        at random: every attempt of one call draws the same numbers. With `timestamp`
        False the outcome's `ts` is None: the caller needs no commit timestamp (an HTTP
        call), so it does not wait for one.
        """
        with self.observer.execution(label(ref), "mutation", identity) as run:
            try:
                outcome = await self._mutation(ref, args, identity, internal_ok, request,
                                               replay_possible, hooks, seed, timestamp)
            except ConflictError:
                run.retries = self.config.max_attempts
                raise
            run.retries = outcome.retries
        outcome.log_lines = run.lines
        return outcome

    async def _mutation(self, ref: Any, args: Any, identity: Identity | None,
                        internal_ok: bool, request: tuple[str, int] | None,
                        replay_possible: bool, hooks: MutationHooks | None, seed: str | None,
                        timestamp: bool) -> Outcome:
        spec, checked = self.prepare(ref, args, Kind.MUTATION, internal_ok)
        hooks = hooks or MutationHooks()
        if seed is None:
            seed = repr(request) if request is not None else os.urandom(16).hex()
        rng_seed = seed_of(str(spec.path), seed)
        env_overrides: dict[str, str | None] = {}  # the last attempt's true variables

        # A recorded result answers only the very same call: same caller, function, arguments.
        call = (request_hash(spec.path or "", values.encode(checked), identity)
                if request else None)

        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any] | Outcome:
            if request is not None and replay_possible:
                done = await tx.find_request(*request)
                if done is not None:
                    if done.request_hash is not None and done.request_hash != call:
                        raise BadRequest(
                            f"RequestIdReused: request {request[1]} of this session was "
                            "already used for a different call; send a new request id",
                            "RequestIdReused")
                    encoded = orjson.loads(done.result)
                    replayed.append(done)
                    return Outcome(values.decode(encoded), encoded, ts=done.ts)
            if hooks.before is not None:
                finished = await hooks.before(db, tx)
                if finished is not None:
                    return finished
            ctx = self.mutation_ctx(db, identity, rng_seed, env_overrides)
            try:
                result = await self.call(spec, ctx, checked)
            except StaleEnvironment as exc:
                env_overrides.update(exc.values)  # rolled back and run again with them
                raise
            if hooks.after is not None:
                await hooks.after(db, result[0])
            return result

        replayed: list[RecordedRequest] = []
        outcome = await self.transact(spec.path or "mutation", body, request, call, timestamp)
        if replayed and outcome.ts is None and timestamp:
            xid = replayed[-1].xid
            assert xid is not None  # a recorded request has a timestamp or a transaction id
            outcome.ts = await self.store.commit_ts(xid)
        return outcome

    def mutation_ctx(self, db: DatabaseWriter, identity: Identity | None,
                     seed: int, env_overrides: dict[str, str | None]) -> MutationCtx:
        """The ctx of one mutation attempt writing through `db` (`seed`: see `seed_of`)."""
        now = MutationCtx.clock()
        scheduler = Scheduler(self.app.functions, SystemTableWriter(db), now)
        return MutationCtx(db, identity, scheduler, env=self.env.view(env_overrides),
                           storage=MutationStorage(self.files, db), now_ms=now, seed=seed)

    async def transact(
        self, label: str, body: WriteBody, request: tuple[str, int] | None = None,
        call: str | None = None, timestamp: bool = False, limits: Limits | None = None,
    ) -> Outcome:
        """Run `body(db, tx)` in one SERIALIZABLE transaction, again on every conflict.

        The commit is logged inside the transaction and given its timestamp after COMMIT
        (storage/sequencer.py), which also announces it to every process; with `timestamp`
        the outcome carries it. `body` returns (value, encoded), or a finished Outcome to
        end without writing. `limits` replaces the configured per-transaction limits (an
        import writes more than a mutation may).
        """
        s = self.store
        give_up = asyncio.get_running_loop().time() + RETRY_UNAVAILABLE_SECONDS
        unavailable: DatabaseUnavailable | None = None  # what ended the last attempt
        for attempt in range(self.config.max_attempts):
            watch: asyncio.Future[int] | None = None
            self.writing += 1
            try:
                # A caller that wants the timestamp of a commit with no request to name it
                # by needs its xid, so its inserts are sent as they come.
                async with s.write(buffered=request is not None or not timestamp) as tx:
                    db = self.writer(tx, limits)
                    result = await body(db, tx)
                    if isinstance(result, Outcome):
                        return result
                    value, encoded = result
                    xid, watch = await self._log_commit(tx, db, encoded, request, call,
                                                        timestamp)
            except TransientConflict:
                cancel(watch)
                unavailable = None
                await asyncio.sleep(self._backoff(attempt))
                continue
            except DatabaseUnavailable as exc:
                cancel(watch)
                # Nothing was committed (COMMIT was never sent): run it again, briefly.
                if asyncio.get_running_loop().time() + self._backoff(attempt) > give_up:
                    raise
                unavailable = exc
                await asyncio.sleep(max(self._backoff(attempt), 0.05))
                continue
            except BaseException:
                cancel(watch)
                raise
            finally:
                self.writing -= 1
            commit = xid if xid is not None or not db.writes else request
            if watch is not None:
                ts: int | None = await self.timestamps.watched(watch, commit)
            else:
                ts = await self.timestamps.of(commit, bool(db.writes), timestamp)
            return Outcome(value, encoded, db.read_set(), db.writes, ts, attempt)
        raise self._gave_up(label, unavailable)

    async def _log_commit(
        self, tx: Transaction, db: DatabaseWriter, encoded: Any,
        request: tuple[str, int] | None, call: str | None, timestamp: bool,
    ) -> tuple[int | None, asyncio.Future[int] | None]:
        """Log the writes (and the request's result) for COMMIT; return the xid when the
        transaction knows it, and the watch its timestamp will come from, if any."""
        if not db.writes:
            return None, None
        recorded = orjson.dumps(encoded).decode() if request else None
        xid = await tx.commit_writes(db.writes.to_text(), request, recorded,
                                     request_hash=call)
        if db.before:
            await history.record(tx, list(db.before.values()))
        if xid is not None or not timestamp or self.writing > 1:
            # Among others, one batched sequencing call serves them all (inline calls
            # would each wait for the one before at the commit lock).
            return xid, None
        watch = self.timestamps.watch(db.writes)  # alone: sequenced in COMMIT's message
        tx.sequence_after = watch is not None
        return xid, watch

    def _gave_up(self, label: str, unavailable: DatabaseUnavailable | None) -> Exception:
        """What a transaction out of attempts raises: DatabaseUnavailable when the database
        was away on the last one (nothing conflicted), else ConflictError."""
        if unavailable is not None:
            return unavailable
        return ConflictError(f"{label}: conflict with concurrent mutations: retried "
                             f"{self.config.max_attempts} times")

    def writer(self, tx: Transaction, limits: Limits | None = None) -> DatabaseWriter:
        """A `ctx.db` writing through `tx` (one per function call: its own usage figures)."""
        s = self.store
        return DatabaseWriter(tx, self.schema, s.table_numbers, s.table_names,
                              limits or self.config.limits, self.config.history_seconds > 0)

    async def write_system(self, label: str, body: Callable[[SystemTableWriter], Awaitable[T]]
                           ) -> T:
        """Run `body` on the system tables in its own transaction (retried on conflict)."""

        async def run(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
            return await body(SystemTableWriter(db)), None

        outcome = await self.transact(label, run)
        result: T = outcome.value
        return result

    async def read(self, body: Callable[[DatabaseReader], Awaitable[T]]) -> T:
        """Run `body(db)` in one read-only snapshot (internal readers: the job runner)."""
        async with self.store.read() as tx:
            return await body(self._reader(tx))

    def _backoff(self, attempt: int) -> float:
        cap = min(self.config.backoff_cap, self.config.backoff_base * (2**attempt))
        return random.uniform(0, cap)

    # -- actions ----------------------------------------------------------------------------
    async def run_action(
        self, ref: Any, args: Any, identity: Identity | None = None, *, internal_ok: bool = False,
    ) -> Outcome:
        """Run an action outside any transaction; it reaches data through ctx.run_*."""
        with self.observer.execution(label(ref), "action", identity) as run:
            spec, checked = self.prepare(ref, args, Kind.ACTION, internal_ok)
            value, encoded = await self.call(spec, self.action_ctx(identity), checked)
        return Outcome(value, encoded, log_lines=run.lines)

    def action_ctx(self, identity: Identity | None) -> ActionCtx:
        """The ctx of an action or an HTTP route, acting as `identity`."""
        return ActionCtx(_ActionCalls(self, identity), identity,
                         ActionScheduler(lambda: self.app.functions, self.write_system),
                         self.env.view(), ActionStorage(self.files, self.read, self.write_system))

    async def run(self, ref: Any, args: Any, identity: Identity | None = None, *,
                  internal_ok: bool = False) -> Outcome:
        """Run a function of whatever kind it is (a mutation's outcome carries no timestamp)."""
        spec = self.resolve(ref, None, internal_ok)
        if spec.kind is Kind.QUERY:
            return await self.run_query(spec, args, identity, internal_ok=True)
        if spec.kind is Kind.MUTATION:
            return await self.run_mutation(spec, args, identity, internal_ok=True,
                                           timestamp=False)
        return await self.run_action(spec, args, identity, internal_ok=True)


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


def _encode_result(result: Any) -> tuple[Any, Any]:
    """A result and its Convex encoding; model instances and enums in an undeclared (or
    `Any`) result are turned into plain values first, rather than refused."""
    try:
        return result, values.encode(result, "return value")
    except ValidationError:
        plain = to_plain(result)
        if plain is result:
            raise
        return plain, values.encode(plain, "return value")


class _ActionCalls:
    """What an action's ctx reaches data through: the engine, as the action's caller."""

    def __init__(self, engine: Engine, identity: Identity | None) -> None:
        self._engine = engine
        self._identity = identity

    async def query(self, fn: Any, args: dict[str, Any]) -> Any:
        return (await self._engine.run_query(fn, args, self._identity, internal_ok=True)).value

    async def mutation(self, fn: Any, args: dict[str, Any]) -> Any:
        return (await self._engine.run_mutation(fn, args, self._identity, internal_ok=True,
                                                timestamp=False)).value

    async def action(self, fn: Any, args: dict[str, Any]) -> Any:
        return (await self._engine.run_action(fn, args, self._identity, internal_ok=True)).value

    async def vector_search(self, table: str, index: str, options: dict[str, Any]
                            ) -> list[dict[str, Any]]:
        async def search(db: DatabaseReader) -> list[dict[str, Any]]:
            return await vector_search(db.reads, table, index, options)

        return await self._engine.read(search)
