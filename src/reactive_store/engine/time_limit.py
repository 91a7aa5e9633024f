"""A handler run under its time limit, the timer armed only once the handler first waits.

A mutation whose writes are all inserts never waits (they are buffered until COMMIT), and
arming and disarming `asyncio.timeout` cost about a tenth of such a mutation's server time.
The handler's coroutine is stepped once by hand; if it finishes there, no timer is needed
(nothing could have interrupted it anyway: a timeout only acts at a wait). Otherwise the
rest of it runs under the timer, resumed where it stopped.
"""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any


async def run_limited(awaitable: Awaitable[Any], seconds: float) -> Any:
    """Await `awaitable`, cancelled (TimeoutError) if it still runs `seconds` after its
    first wait."""
    if not inspect.iscoroutine(awaitable):
        async with asyncio.timeout(seconds):
            return await awaitable
    try:
        first = awaitable.send(None)
    except StopIteration as done:
        return done.value
    async with asyncio.timeout(seconds):
        return await _resume(awaitable, first)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """The rest of a coroutine that was stepped by hand and stopped at `yielded`: what the
    task sends or throws goes on into it, as `await` would have done."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as done:
                return done.value
