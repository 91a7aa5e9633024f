"""Storage: the only package that talks to Postgres (asyncpg), behind `Store` and `Transaction`."""

from reactive_store.storage.ddl import PushReport
from reactive_store.storage.store import Row, StorageError, Store, Transaction, TransientConflict

__all__ = ["PushReport", "Row", "StorageError", "Store", "Transaction", "TransientConflict"]
