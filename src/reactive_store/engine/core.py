"""What every engine call shares: resolving a function, validating, running the handler."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from reactive_store import values
from reactive_store.annotations.markers import to_plain
from reactive_store.app.loader import App
from reactive_store.app.registry import FunctionSpec, Kind, Registry
from reactive_store.engine.commit_ts import CommitTimestamps
from reactive_store.engine.context import MutationCtx, QueryCtx
from reactive_store.engine.db import DatabaseReader, SystemReader
from reactive_store.engine.environment import EnvironmentCache
from reactive_store.engine.files import FileService
from reactive_store.engine.history import PastReads, PastVersions
from reactive_store.engine.outcome import EngineConfig, usage_of
from reactive_store.engine.system_tables import with_system_tables
from reactive_store.engine.time_limit import run_limited
from reactive_store.errors import (
    FunctionTimeout,
    InternalError,
    PermissionDenied,
    ValidationError,
)
from reactive_store.ids import TABLE_NAMES
from reactive_store.observe.capture import route_app_logs
from reactive_store.observe.observer import SYSTEM_PREFIX, Observer
from reactive_store.storage import Store, Transaction, TransientConflict
from reactive_store.validators import DOCUMENTS

T = TypeVar("T")
# The Convex CLI prints an error containing these words as a permission error and exits.
PERMISSION_DENIED = "You do not have permission to perform this operation"


class EngineCore:
    """The part of the Engine every kind of call uses (engine/engine.py sets the attributes).

    Every call resolves its function once (a hot reload swaps `app` whole, and a call runs on
    the version it started with to the end), validates its arguments, runs the handler under
    its time limit, and validates and encodes what it returns.
    """

    store: Store
    observer: Observer
    system: Registry
    config: EngineConfig
    env: EnvironmentCache
    files: FileService
    timestamps: CommitTimestamps

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
                    result = spec.handler(ctx, **spec.arguments(args))
                    if inspect.isawaitable(result):
                        result = await run_limited(result, seconds)
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

    async def read(self, body: Callable[[DatabaseReader], Awaitable[T]]) -> T:
        """Run `body(db)` in one read-only snapshot (internal readers: the job runner)."""
        async with self.store.read() as tx:
            return await body(self._reader(tx))


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
