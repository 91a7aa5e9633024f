"""Storage: the only package that talks to Postgres (asyncpg), behind `Store` and `Transaction`."""

from .ddl import PushReport
from .store import Row, StorageError, Store, Transaction, TransientConflict

__all__ = ["PushReport", "Row", "StorageError", "Store", "Transaction", "TransientConflict"]
