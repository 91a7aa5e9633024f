"""One sync connection: reads client messages, runs mutations and actions, pumps Transitions.

Socket-agnostic: it is given `receive()` and `send(text)` coroutines. Three tasks share one
`SyncSession`: the reader applies client messages, the mutation runner executes mutations
one at a time in arrival order, and the pump is the only sender, so messages leave in the
order the protocol needs (responses before the Transitions that include their writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from reactive_store import values
from reactive_store.app.registry import canonical_path
from reactive_store.auth import AuthError, Caller
from reactive_store.engine.engine import Engine
from reactive_store.failures import error_body
from reactive_store.limits import ServerLimits
from reactive_store.live.subscriptions import LiveQuery, SubscriptionManager
from reactive_store.observe.observer import lines_of, source
from reactive_store.sync.outbox import STALL_CHECK_SECONDS, Outbox
from reactive_store.sync.protocol import (
    PING,
    ActionRequest,
    Authenticate,
    AuthenticationRefused,
    ClientLimitExceeded,
    Connect,
    Event,
    ModifyQuerySet,
    MutationRequest,
    ProtocolError,
    action_response,
    auth_error,
    mutation_response,
    parse_client_message,
)
from reactive_store.sync.session import SessionQuery, SyncSession, Waiting
from reactive_store.sync.shared_encodings import SharedEncodings

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0

# How long a mutation's response may wait for the Transition reaching its timestamp, to
# share its write; the commit stream takes it in well within this.
RESPONSE_HOLD_SECONDS = 0.005
PING_TEXT = orjson.dumps(PING).decode()


class ConnectionClosed(Exception):
    """Raised by `receive` when the client went away."""


class ResultWatcher:
    """What a socket's live queries call when a result changes. `urgent` while the client
    waits for a Transition to acknowledge one of its mutations: the manager calls those
    first (live/subscriptions.py)."""

    __slots__ = ("_connection",)

    def __init__(self, connection: SyncConnection) -> None:
        self._connection = connection

    def __call__(self) -> None:
        self._connection._on_result()

    @property
    def urgent(self) -> bool:
        session = self._connection.session
        return session.min_ts > session.sent.ts


class SyncConnection(Outbox):
    """Serves one client socket until it closes; `close_reason` says why we closed it.

    The output queue and the watched writes come from `Outbox` (sync/outbox.py).
    """

    def __init__(self, engine: Engine, manager: SubscriptionManager,
                 receive: Callable[[], Awaitable[str]], send: Callable[[str], Awaitable[None]],
                 verify: Callable[[Authenticate], Awaitable[Caller]] | None = None,
                 limits: ServerLimits | None = None,
                 buffered: Callable[[], int] | None = None,
                 send_now: Callable[..., bool] | None = None,
                 encodings: SharedEncodings | None = None) -> None:
        super().__init__(send, limits or ServerLimits(), buffered, send_now)
        self.engine = engine
        self.manager = manager
        self._verify = verify
        self.admin = False  # holds the admin key: may call internal mutations and actions
        self._receive = receive
        self.session: SyncSession[LiveQuery] = SyncSession(
            max_queries=self.limits.subscriptions_per_socket,
            encodings=encodings or SharedEncodings())
        self._idle = False  # the pump is parked in its wait, nothing of it in flight
        self._watcher = ResultWatcher(self)
        self.identity: dict[str, Any] | None = None
        self._mutations: asyncio.Queue[MutationRequest] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._actions: set[asyncio.Task[None]] = set()
        self.close_reason: str | None = None
        self.close_code = 1000
        self._hold_until = 0.0  # a mutation response may wait for its Transition until then

    def _poke(self) -> None:
        self._idle = False
        self._wake.set()

    def _on_result(self) -> None:
        """A live query of this socket changed (a commit): push it now if the pump is
        parked. Client messages only poke: the pump then answers several in one go."""
        if self._idle and self._send_now is not None and not self._responses and (
                self._stall is None and self._push_now()):
            return
        self._poke()

    def _push_now(self) -> bool:
        """Do the pump's work for it, without awaiting; False when the pump must run.

        Only while the pump is parked with no response queued: then nothing else can be
        sending, so sending here keeps the pump's order (it is the only other sender).
        """
        step = self.session.next_transition(self.manager.processed_ts)
        if step is None or (isinstance(step, Waiting) and step.for_ts is None):
            return True
        if isinstance(step, Waiting):
            return False  # the pump waits for that timestamp
        if not self._write_now(step):
            self._queue(step)  # built already (the session moved on): the pump sends it
            return False
        return True

    async def run(self) -> None:
        self._last_send = self._now()
        tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._run_mutations()),
                 asyncio.create_task(self._pump())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    if isinstance(exc, ProtocolError):
                        self.close_reason, self.close_code = str(exc), exc.close_code
                    elif not isinstance(exc, ConnectionClosed):
                        log.error("sync connection failed", exc_info=exc)
                        self.close_reason, self.close_code = "InternalServerError", 1011
        finally:
            for task in [*tasks, *self._actions]:
                task.cancel()
            await asyncio.gather(*tasks, *self._actions, return_exceptions=True)
            self.manager.forget_urgent(self._watcher)
            for query in self.session.queries.values():
                if query.live is not None:
                    self.manager.unsubscribe(query.live, self._watcher)

    # -- reading ------------------------------------------------------------------------
    async def _read(self) -> None:
        while True:
            text = await self._receive()
            try:
                raw = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise ProtocolError("message is not valid JSON") from None
            message = parse_client_message(raw)
            if isinstance(message, Connect):
                self.session.connect(message)
                continue
            self.session.require_connected(type(message).__name__)
            if isinstance(message, ModifyQuerySet):
                added, removed = self.session.modify_query_set(message)
                for query in removed:
                    if query.live is not None:
                        self.manager.unsubscribe(query.live, self._watcher)
                for query in added:
                    self._subscribe(query)
                self._poke()
            elif isinstance(message, MutationRequest):
                self._check_pending()
                self.session.mutations_in_flight += 1
                self._mutations.put_nowait(message)
            elif isinstance(message, ActionRequest):
                self._check_pending()
                task = asyncio.create_task(self._run_action(message))
                self._actions.add(task)
                task.add_done_callback(self._actions.discard)
            elif isinstance(message, Authenticate):
                await self._authenticate(message)
            elif isinstance(message, Event):
                pass

    def _check_pending(self) -> None:
        limit = self.limits.pending_requests_per_socket
        if limit and self._mutations.qsize() + len(self._actions) >= limit:
            raise ClientLimitExceeded(f"TooManyConcurrentRequests: at most {limit} per socket")

    def _respond(self, message: dict[str, Any]) -> None:
        """Queue a response, encoded once; the sender closes a socket whose queue overflows."""
        self._queue(orjson.dumps(message).decode())
        self._poke()

    def _subscribe(self, query: SessionQuery[LiveQuery]) -> None:
        self.session.state_key = None  # the query's live result is about to change
        try:
            path = canonical_path(query.path)
            args = values.decode(query.args)
        except Exception as exc:
            query.failure = error_body(exc)
            return
        query.live = self.manager.subscribe(path, args, self.identity, self._watcher,
                                            internal_ok=self.admin, journal=query.journal)

    async def _authenticate(self, message: Authenticate) -> None:
        """Switch identity: verify, then move every query to the new identity's results.

        A refused token gets AuthError and the socket closes, so the client can fetch a
        fresh token and reconnect; it is never treated as anonymous.
        """
        # The identity version moves only once the token is verified: a Transition built
        # meanwhile must not confirm a token that is about to be refused.
        self.session.check_authenticate(message)
        try:
            if message.token_type == "None":
                caller = Caller()
            elif self._verify is None:
                raise AuthError("authentication is not available on this server")
            else:
                caller = await self._verify(message)
        except AuthError as exc:
            self._respond(auth_error(exc.message, self.session.received_identity, True))
            await self._flush_responses()
            raise AuthenticationRefused("AuthError") from None
        self.session.authenticate(message)
        self.identity, self.admin = caller.identity, caller.admin
        for query in self.session.queries.values():
            if query.live is not None:
                query.journal = query.live.journal  # the new identity keeps the pages
                self.manager.unsubscribe(query.live, self._watcher)
                query.live = None
                self._subscribe(query)
        self._poke()

    # -- requests ---------------------------------------------------------------------
    async def _run_mutations(self) -> None:
        while True:
            request = await self._mutations.get()
            try:
                session = self.session.session_id
                with source("SyncWorker", self.admin):
                    outcome = await self.engine.run_mutation(
                        canonical_path(request.udf_path), values.decode(request.args),
                        self.identity, internal_ok=self.admin,
                        request=None if session is None else (session, request.request_id),
                        replay_possible=self.session.reconnected)
            except Exception as exc:
                response = mutation_response(request.request_id, error=error_body(exc),
                                             log_lines=lines_of(exc))
            else:
                assert outcome.ts is not None
                response = mutation_response(request.request_id, value=outcome.encoded,
                                             ts=outcome.ts, log_lines=outcome.log_lines)
                self.session.min_ts = max(self.session.min_ts, outcome.ts)
                self.manager.mark_urgent(self._watcher)
                self._hold_until = self._now() + RESPONSE_HOLD_SECONDS
            self._respond(response)
            self.session.force = True
            self.session.mutations_in_flight -= 1

    async def _run_action(self, request: ActionRequest) -> None:
        try:
            with source("SyncWorker", self.admin):
                outcome = await self.engine.run_action(
                    canonical_path(request.udf_path), values.decode(request.args),
                    self.identity, internal_ok=self.admin)
        except Exception as exc:
            response = action_response(request.request_id, error=error_body(exc),
                                       log_lines=lines_of(exc))
        else:
            response = action_response(request.request_id, value=outcome.encoded,
                                       log_lines=outcome.log_lines)
        self.session.force = True
        self._respond(response)

    # -- sending ----------------------------------------------------------------------
    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            step = self.session.next_transition(self.manager.processed_ts)
            if isinstance(step, str):
                await self._send_all(step)
                continue
            # A mutation's response waits (briefly) for the Transition that reaches its
            # timestamp, its commit taken in and the queries it changed run again: the
            # client needs both, and one write serves them. Not behind another mutation.
            hold = self._hold_until - loop.time()
            if self._responses and not (step is not None and hold > 0
                                        and not self.session.mutations_in_flight):
                await self._send_all(None)
                continue
            waiter: asyncio.Task[None] | None = None
            if isinstance(step, Waiting) and step.for_ts is not None:
                waiter = asyncio.create_task(self.manager.wait_processed(step.for_ts))
                waiter.add_done_callback(lambda _: self._poke())
            wait = max(0.0, HEARTBEAT_SECONDS - (loop.time() - self._last_send))
            if self._stall:
                wait = min(wait, STALL_CHECK_SECONDS)
            if self._responses:
                wait = min(wait, hold)
            try:
                async with asyncio.timeout(wait):
                    self._idle = True
                    try:
                        await self._wake.wait()
                    finally:
                        self._idle = False
            except TimeoutError:
                if self._responses:
                    continue  # held long enough: sent on the next round
                if self._stall is not None:
                    self._check_output()
                elif not self._write_now(PING_TEXT):
                    await self._send_text(PING_TEXT)
            finally:
                if waiter is not None and not waiter.done():
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter

