"""An asyncio client for the sync protocol: queries, live subscriptions, mutations, actions.

    async with connect("http://127.0.0.1:3210") as client:
        await client.mutation("messages:send", {"body": "hi"})
        async for messages in client.subscribe("messages:list", {}):
            ...

It reconnects with backoff on its own, resubscribes, and replays unanswered mutations under
the same session id (the server runs each request once). A mutation returns only once the
client's subscriptions reflect it (read-your-writes), as the official clients do.

What functions log (`print()`, `logging`) comes back with their results; each line is
handed to `on_log(FunctionLog)`, by default logged on the `reactive_store.client.functions`
logger as the npm client prints it: `[CONVEX Q(notes:list)] [LOG] hello`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic

import orjson
import websockets
from typing_extensions import ParamSpec, TypeVar

from reactive_store import values
from reactive_store.observe.lines import parse_wire
from reactive_store.sync.protocol import decode_ts

log = logging.getLogger(__name__)
function_log = logging.getLogger(__name__ + ".functions")
PYTHON_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "LOG": logging.INFO,
                 "WARN": logging.WARNING, "ERROR": logging.ERROR}


@dataclass(frozen=True)
class FunctionLog:
    """One line a function logged: Q/M/A, its path, the level and the message."""

    kind: str
    path: str
    level: str
    message: str

    def __str__(self) -> str:
        return f"[CONVEX {self.kind}({self.path})] [{self.level}] {self.message}"


def log_to_logger(line: FunctionLog) -> None:
    function_log.log(PYTHON_LEVELS.get(line.level, logging.INFO), "%s", line)


# A reference's parameters are the one positional `args` dict: a ParamSpec, so that mypy
# checks a call's dict against the function's TypedDict with the dict as its context (and
# names the wrong key or value). The defaults make a plain string path mean "anything".
P = ParamSpec("P", default=...)
R = TypeVar("R", default=Any)


@dataclass(frozen=True)
class FunctionReference(Generic[P, R]):
    """A typed reference to one function, as `reactive-store codegen --python` generates
    them (`api.chatMessages.list_by_session`): `QueryReference[[Args], Result]`, where `Args`
    is a TypedDict of its arguments and `Result` what it returns."""

    path: str


class QueryReference(FunctionReference[P, R]):
    """A query: `client.query(ref, args)` / `client.subscribe(ref, args)`."""


class MutationReference(FunctionReference[P, R]):
    """A mutation: `client.mutation(ref, args)`."""


class ActionReference(FunctionReference[P, R]):
    """An action: `client.action(ref, args)`."""


class AnyApi:
    """Untyped references from attribute names, as Convex's `anyApi`: `AnyApi().dir.mod.fn`
    is the function `dir/mod:fn`. The placeholder `api` before codegen has run."""

    def __init__(self, segments: tuple[str, ...] = ()) -> None:
        self._segments = segments

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return AnyApi((*self._segments, name))

    @property
    def path(self) -> str:
        if len(self._segments) < 2:
            raise AttributeError(f"api.{'.'.join(self._segments)} is a module, not a function")
        return "/".join(self._segments[:-1]) + ":" + self._segments[-1]

    def __repr__(self) -> str:
        return f"AnyApi({'.'.join(self._segments)})"


def _call(ref: str | FunctionReference[..., Any], args: tuple[Any, ...],
          kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(path, arguments) of a call `method(ref, args)`."""
    if kwargs or len(args) > 1:
        raise TypeError("pass a function's arguments as one dict: client.query(ref, {...})")
    found = args[0] if args else None
    return (ref if isinstance(ref, str) else ref.path), dict(found or {})


class ClientError(Exception):
    """A function failed on the server; `data` holds ConvexError data when there is some."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data


@dataclass
class _Query:
    query_id: int
    path: str
    args: dict[str, Any]
    queues: list[asyncio.Queue[tuple[bool, Any]]] = field(default_factory=list)
    latest: tuple[bool, Any] | None = None
    journal: str | None = None  # the server's, sent back when re-adding after a reconnect


@dataclass
class _Request:
    request_id: int
    message: dict[str, Any]
    future: asyncio.Future[Any]
    ts: int | None = None  # set once a mutation's response arrives; resolved at a Transition


class Client:
    """A connection to a reactive-store (or Convex) deployment. Use `connect(url)`."""

    def __init__(self, url: str, on_log: Callable[[FunctionLog], None] | None = None,
                 admin_key: str | None = None) -> None:
        self._on_log = on_log or log_to_logger
        self._admin_key = admin_key  # sent on every socket: internal functions, any table
        base = url.rstrip("/")
        scheme = "wss" if base.startswith("https") else "ws"
        self._ws_url = scheme + base[base.index(":"):] + "/api/sync"
        self._session_id = str(uuid.uuid4())
        self._queries: dict[int, _Query] = {}
        self._requests: dict[int, _Request] = {}
        self._next_query = 0
        self._next_request = 0
        self._query_set = 0
        self._version: dict[str, Any] | None = None
        self._ws: Any = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connections = 0
        self._closed = False
        self.auth_error: str | None = None  # why the server refused our credentials

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), timeout=30)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for request in self._requests.values():
            if not request.future.done():
                request.future.set_exception(ConnectionError("client closed"))

    # -- the public API -------------------------------------------------------------------
    async def mutation(self, path: MutationReference[P, R] | str, *args: P.args,
                       **kwargs: P.kwargs) -> R:
        """Run a mutation (`client.mutation(ref_or_path, {...})`); returns once this
        client's subscriptions reflect it."""
        name, arguments = _call(path, args, kwargs)
        result: R = await self._request("Mutation", name, arguments)
        return result

    async def action(self, path: ActionReference[P, R] | str, *args: P.args,
                     **kwargs: P.kwargs) -> R:
        """Run an action (`client.action(ref_or_path, {...})`)."""
        name, arguments = _call(path, args, kwargs)
        result: R = await self._request("Action", name, arguments)
        return result

    async def query(self, path: QueryReference[P, R] | str, *args: P.args,
                    **kwargs: P.kwargs) -> R:
        """The query's current value (subscribe, take the first result, unsubscribe)."""
        name, arguments = _call(path, args, kwargs)
        async for value in self.subscribe(name, arguments):
            result: R = value
            return result
        raise ConnectionError("subscription ended")

    async def subscribe(self, path: QueryReference[P, R] | str, *args: P.args,
                        **kwargs: P.kwargs) -> AsyncIterator[R]:
        """Yield the query's value now and after every change; raises ClientError on failure."""
        name, arguments = _call(path, args, kwargs)
        query = self._add_query(name, arguments)
        queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
        query.queues.append(queue)
        if query.latest is not None:
            queue.put_nowait(query.latest)
        try:
            while True:
                ok, value = await queue.get()
                if not ok:
                    raise value
                yield value
        finally:
            query.queues.remove(queue)
            if not query.queues:
                await self._remove_query(query)

    # -- queries --------------------------------------------------------------------------
    def _add_query(self, path: str, args: dict[str, Any]) -> _Query:
        for query in self._queries.values():
            if query.path == path and query.args == args:
                return query
        query = _Query(self._next_query, path, args)
        self._next_query += 1
        self._queries[query.query_id] = query
        asyncio.get_running_loop().create_task(self._modify([self._add_message(query)]))
        return query

    @staticmethod
    def _add_message(query: _Query) -> dict[str, Any]:
        message = {"type": "Add", "queryId": query.query_id, "udfPath": query.path,
                   "args": [values.encode(query.args)]}
        if query.journal is not None:
            message["journal"] = query.journal  # a paginated query keeps its page bounds
        return message

    async def _remove_query(self, query: _Query) -> None:
        self._queries.pop(query.query_id, None)
        await self._modify([{"type": "Remove", "queryId": query.query_id}])

    async def _modify(self, modifications: list[dict[str, Any]]) -> None:
        if self._closed:
            return  # e.g. a subscription finalized after close(): nothing to tell anyone
        await self._connected.wait()
        self._query_set += 1
        await self._send({"type": "ModifyQuerySet", "baseVersion": self._query_set - 1,
                          "newVersion": self._query_set, "modifications": modifications})

    # -- requests -------------------------------------------------------------------------
    async def _request(self, kind: str, path: str, args: dict[str, Any]) -> Any:
        request_id = self._next_request
        self._next_request += 1
        message = {"type": kind, "requestId": request_id, "udfPath": path,
                   "args": [values.encode(args)]}
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests[request_id] = _Request(request_id, message, future)
        if self._connected.is_set():
            await self._send(message)
        return await future

    async def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(websockets.ConnectionClosed, AttributeError):
            await self._ws.send(orjson.dumps(message).decode())

    # -- the connection -------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._closed:
            try:
                async with websockets.connect(self._ws_url, max_size=None) as ws:
                    self._ws = ws
                    await self._on_open()
                    failures = 0
                    async for text in ws:
                        self._on_message(orjson.loads(text))
            except (OSError, websockets.WebSocketException, ProtocolViolation) as exc:
                log.info("connection lost: %s", exc)
            finally:
                self._connected.clear()
                self._ws = None
                self._fail_actions()
            failures += 1
            await asyncio.sleep(random.uniform(0, min(0.1 * 2**failures, 15.0)))

    async def _on_open(self) -> None:
        self._version = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
        self._query_set = 0
        await self._send({"type": "Connect", "sessionId": self._session_id,
                          "connectionCount": self._connections,
                          "lastCloseReason": "InitialConnect" if not self._connections else None,
                          "clientTs": 0})
        self._connections += 1
        if self._admin_key is not None:
            await self._send({"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin",
                              "value": self._admin_key})
        self._query_set = 1
        await self._send({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                          "modifications": [self._add_message(q)
                                            for q in self._queries.values()]})
        for request in self._requests.values():
            if request.message["type"] == "Mutation":
                await self._send(request.message)
        self._connected.set()

    def _fail_actions(self) -> None:
        for request_id, request in list(self._requests.items()):
            if request.message["type"] == "Action" and not request.future.done():
                request.future.set_exception(
                    ConnectionError("connection lost while the action was in flight"))
                del self._requests[request_id]

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "Transition":
            if message["startVersion"] != self._version:
                raise ProtocolViolation(f"Transition starts at {message['startVersion']}, "
                                        f"expected {self._version}")
            self._version = message["endVersion"]
            for mod in message["modifications"]:
                query = self._queries.get(mod["queryId"])
                if query is None:
                    continue
                self._emit("Q", query.path, mod.get("logLines"))
                if mod["type"] != "QueryRemoved":
                    query.journal = mod.get("journal")
                if mod["type"] == "QueryUpdated":
                    query.latest = (True, values.decode(mod["value"]))
                elif mod["type"] == "QueryFailed":
                    query.latest = (False, _error(mod["errorMessage"], mod.get("errorData")))
                else:
                    continue
                for queue in query.queues:
                    queue.put_nowait(query.latest)
            self._complete_mutations(decode_ts(message["endVersion"]["ts"]))
        elif kind in ("MutationResponse", "ActionResponse"):
            request = self._requests.get(message["requestId"])
            if request is None or request.future.done():
                return
            self._emit(kind[0], request.message["udfPath"], message.get("logLines"))
            if not message["success"]:
                del self._requests[request.request_id]
                request.future.set_exception(_error(message["result"], message.get("errorData")))
            elif kind == "ActionResponse":
                del self._requests[request.request_id]
                request.future.set_result(values.decode(message["result"]))
            else:
                request.ts = decode_ts(message["ts"])
                request.message["result"] = values.decode(message["result"])
        elif kind == "AuthError":
            log.warning("authentication failed: %s", message.get("error"))
            self.auth_error = str(message.get("error"))

    def _emit(self, kind: str, path: str, lines: Any) -> None:
        for text in lines or ():
            level, message = parse_wire(str(text))
            try:
                self._on_log(FunctionLog(kind, path, level, message))
            except Exception:
                log.exception("on_log failed")

    def _complete_mutations(self, ts: int) -> None:
        for request_id, request in list(self._requests.items()):
            if request.ts is not None and request.ts <= ts and not request.future.done():
                del self._requests[request_id]
                request.future.set_result(request.message["result"])


class ProtocolViolation(Exception):
    """The server broke the protocol; the client drops the connection and reconnects."""


def _error(message: str, data: Any) -> Exception:
    if data is None:
        return ClientError(message)
    return ClientError(message, values.decode(data))


@contextlib.asynccontextmanager
async def connect(url: str, on_log: Callable[[FunctionLog], None] | None = None,
                  admin_key: str | None = None) -> AsyncIterator[Client]:
    """Connect to a deployment at `url` (http(s)://host:port); closes on exit. `on_log`
    receives every line the functions this client calls log; with `admin_key` the client
    acts as the admin (internal functions, the dashboard's `_system/` ones)."""
    client = Client(url, on_log, admin_key)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


__all__ = ["ActionReference", "AnyApi", "Client", "ClientError", "FunctionLog",
           "FunctionReference", "MutationReference", "QueryReference", "connect"]
