"""What a caller is told when a function fails, and what only the server log sees."""

from __future__ import annotations

import logging
from typing import Any

from reactive_store import values
from reactive_store.errors import ConvexError, InternalError, ReactiveStoreError

log = logging.getLogger(__name__)


def error_message(exc: BaseException) -> str:
    """The message a caller is told for `exc` (`error_body` without logging anything)."""
    if isinstance(exc, ConvexError | ReactiveStoreError) and not isinstance(exc, InternalError):
        return exc.message
    if isinstance(exc, InternalError):
        return "Server Error"
    return f"Uncaught {type(exc).__name__}: {exc}"


def error_body(exc: BaseException) -> dict[str, Any]:
    """A function failure as the clients expect it: message, and data for ConvexError.

    Our own errors carry messages written for the caller; a user function's exception
    reaches the caller as "Uncaught <Type>: <message>"; anything internal stays in the log.
    """
    if isinstance(exc, ConvexError):
        try:
            data = values.encode(exc.data, "errorData")
        except ReactiveStoreError:
            data = str(exc.data)
        return {"errorMessage": exc.message, "errorData": data}
    if isinstance(exc, InternalError):
        if getattr(exc, "client_safe", False):  # written for clients: names nothing inside
            log.warning("%s: %s", type(exc).__name__, exc)
            return {"errorMessage": exc.message}
        log.error("internal error: %s", exc, exc_info=exc)
    elif not isinstance(exc, ReactiveStoreError):
        log.warning("function raised %s: %s", type(exc).__name__, exc, exc_info=exc)
    return {"errorMessage": error_message(exc)}
