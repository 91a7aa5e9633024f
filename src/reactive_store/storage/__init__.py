"""Storage: the only package that talks to Postgres (asyncpg), behind `Store` and `Transaction`."""

from reactive_store.storage.ddl import PushReport
from reactive_store.storage.store import (
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    PruneReport,
    RecordedRequest,
    Row,
    StorageError,
    Store,
    Transaction,
    TransientConflict,
    request_hash,
)

__all__ = ["CommitOutcomeUnknown", "DatabaseUnavailable", "PruneReport", "PushReport",
           "RecordedRequest", "Row", "StorageError", "Store", "Transaction", "TransientConflict",
           "request_hash"]
