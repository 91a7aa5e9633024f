"""What every lazy query over documents shares: filters, counts, and collect/first/unique."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any, Self

from reactive_store.errors import QueryError
from reactive_store.types import Document


class DocumentStream:
    """What every lazy query over documents shares: `filter()`, and the ways of consuming it
    that follow from `take(n)` and iteration (`collect`, `first`, `unique`)."""

    def __init__(self, table: str) -> None:
        self._table = table
        self._filters: list[Callable[[Document], Any]] = []

    def filter(self, predicate: Callable[[Document], Any]) -> Self:
        if not callable(predicate):
            raise QueryError("filter() takes a function of the document that returns a bool")
        self._filters.append(predicate)
        return self

    async def _matches(self, doc: Document) -> bool:
        for predicate in self._filters:
            result = predicate(doc)
            if inspect.isawaitable(result):
                result = await result
            if not result:
                return False
        return True

    def __aiter__(self) -> AsyncIterator[Document]:
        raise NotImplementedError

    async def take(self, n: int) -> list[Document]:
        raise NotImplementedError

    async def collect(self) -> list[Document]:
        return [doc async for doc in self]

    async def first(self) -> Document | None:
        docs = await self.take(1)
        return docs[0] if docs else None

    async def unique(self) -> Document | None:
        docs = await self.take(2)
        if len(docs) > 1:
            raise QueryError(
                f"unique() found more than one document in {self._table!r}: "
                f"{docs[0]['_id']} and {docs[1]['_id']}"
            )
        return docs[0] if docs else None


def count_argument(n: Any, where: str) -> int:
    """`n` as a count for take() or paginate(), or QueryError naming `where`."""
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise QueryError(f"{where}: expected a non-negative integer, got {n!r}")
    return n
