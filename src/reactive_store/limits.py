"""Per-transaction, per-document and per-client limits (Convex's numbers as defaults)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from reactive_store.errors import LimitExceeded

MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Configurable ceilings; exceeding one aborts the function with LimitExceeded."""

    documents_scanned: int = 32_000
    index_ranges_read: int = 4_096
    documents_written: int = 16_000
    bytes_read: int = 16 * MIB
    bytes_written: int = 16 * MIB
    document_bytes: int = 1 * MIB
    document_fields: int = 1_024
    nesting_depth: int = 16
    array_elements: int = 8_192
    function_seconds: float = 1.0  # a query or mutation attempt
    action_seconds: float = 600.0  # an action (Convex: 10 minutes)


class Usage:
    """What one transaction has consumed so far, checked against its Limits on every step."""

    __slots__ = ("bytes_read", "bytes_written", "documents_scanned", "documents_written",
                 "index_ranges_read", "limits")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.documents_scanned = 0
        self.index_ranges_read = 0
        self.documents_written = 0
        self.bytes_read = 0
        self.bytes_written = 0

    def range_read(self) -> None:
        self.index_ranges_read += 1
        if self.index_ranges_read > self.limits.index_ranges_read:
            raise LimitExceeded(
                f"too many index ranges read in one transaction "
                f"(limit {self.limits.index_ranges_read})"
            )

    def documents_read(self, count: int, nbytes: int) -> None:
        self.documents_scanned += count
        self.bytes_read += nbytes
        if self.documents_scanned > self.limits.documents_scanned:
            raise LimitExceeded(
                f"too many documents read in one transaction "
                f"(limit {self.limits.documents_scanned}); use an index or paginate"
            )
        if self.bytes_read > self.limits.bytes_read:
            raise LimitExceeded(
                f"too many bytes read in one transaction (limit {self.limits.bytes_read})"
            )

    def document_written(self, nbytes: int) -> None:
        self.documents_written += 1
        self.bytes_written += nbytes
        if self.documents_written > self.limits.documents_written:
            raise LimitExceeded(
                f"too many documents written in one transaction "
                f"(limit {self.limits.documents_written})"
            )
        if self.bytes_written > self.limits.bytes_written:
            raise LimitExceeded(
                f"too many bytes written in one transaction (limit {self.limits.bytes_written})"
            )


DAY = 86_400.0


@dataclass(frozen=True)
class ServerLimits:
    """What one client may make the server hold, and how long internal rows are kept.

    Every field can be set with an environment variable `REACTIVE_STORE_LIMIT_<FIELD>` (e.g.
    `REACTIVE_STORE_LIMIT_SOCKETS_PER_ADDRESS=512`), read by `from_env`. docs/security.md
    lists them with their defaults. A count of 0 means no limit.
    """

    request_body_bytes: int = 16 * MIB  # an HTTP body past this is refused (413) unread
    message_bytes: int = 16 * MIB  # one WebSocket message from a client
    subscriptions_per_socket: int = 1_000  # live queries one socket may hold
    pending_requests_per_socket: int = 1_000  # mutations and actions queued or running
    sockets_per_address: int = 128  # open sockets from one client address
    queued_bytes_per_socket: int = 16 * MIB  # output written to a socket but not yet sent
    stalled_socket_seconds: float = 30.0  # a socket whose output does not move is closed
    # Retention of internal rows (seconds): finished scheduled functions (Convex keeps them
    # 7 days), the commit log (catch-up), recorded requests (replays) and the before-images
    # that let /api/query_at_ts read any timestamp this recent (0: none are kept).
    finished_jobs_retention_s: float = 7 * DAY
    commit_log_retention_s: float = 900.0
    request_retention_s: float = 3_600.0
    query_history_retention_s: float = 3_600.0
    prune_every_s: float = 60.0  # how often the retentions above are enforced

    ENV_PREFIX = "REACTIVE_STORE_LIMIT_"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerLimits:
        """The defaults, overridden by `REACTIVE_STORE_LIMIT_*` variables."""
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for f in fields(cls):
            name = cls.ENV_PREFIX + f.name.upper()
            text = env.get(name)
            if text is None or not text.strip():
                continue
            kind = int if f.type in (int, "int") else float
            try:
                value = kind(text.strip().replace("_", ""))
            except ValueError:
                raise ValueError(f"{name} must be a number, got {text!r}") from None
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {text!r}")
            changes[f.name] = value
        return replace(cls(), **changes)

    @staticmethod
    def exceeded(count: float, limit: float) -> bool:
        """True when `count` is past `limit` (a limit of 0 is no limit)."""
        return limit > 0 and count > limit


GIB = 1 << 30


@dataclass(frozen=True)
class FileLimits:
    """What file storage accepts; an upload past one is refused and leaves nothing behind.

    `content_types` empty means any (well-formed) type; otherwise patterns such as
    `image/*` or `application/pdf`, matched against the media type without parameters.
    """

    max_upload_bytes: int = 1 * GIB
    upload_url_seconds: float = 3600.0  # how long a generate_upload_url() URL may be used
    content_types: tuple[str, ...] = ()
    upload_idle_seconds: float = 60.0  # an upload whose body stalls this long is dropped
    orphan_grace_seconds: float = 900.0  # bytes with no _storage document older than this go
    sweep_every_seconds: float = 300.0
