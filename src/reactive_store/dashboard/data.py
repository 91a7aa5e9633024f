"""The Data page's system functions: tables, documents by index range, and edits.

Reads are ordinary queries, so the page is live like any client: a commit that writes
inside what a page shows re-runs it. A table's count reads the whole table (its `by_id`
range), so any insert or delete refreshes it; counting stops at COUNT_CAP. Edits are real
mutations through `ctx.db`: validated against the schema, committed, pushed to every
subscriber; a refused one raises the validator's message and writes nothing.
"""

from __future__ import annotations

from typing import Any

from reactive_store.app.catalog import type_text
from reactive_store.app.registry import FunctionSpec, internal_mutation, internal_query
from reactive_store.dashboard.readable import parse, parse_object, preview, to_text
from reactive_store.deployment import Deployment
from reactive_store.engine.query import IndexRange, ScanRecord
from reactive_store.errors import ConvexError
from reactive_store.schema import BY_CREATION_TIME, BY_ID, all_indexes
from reactive_store.validators import ObjectValidator, v

COUNT_CAP = 10_000
MAX_PAGE = 500
OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}

RANGE = v.optional(v.object({"op": v.string(), "value": v.string()}))


def _table_info(name: str, definition: Any, count: int) -> dict[str, Any]:
    validator = definition.validator
    fields = list(validator.fields) if isinstance(validator, ObjectValidator) else []
    return {
        "name": name, "count": min(count, COUNT_CAP), "more": count > COUNT_CAP,
        "fields": fields, "type": type_text(validator.to_json()),
        "validator": to_text(validator.to_json()),
        "indexes": [{"name": index.name, "fields": list(index.key_fields)}
                    for index in all_indexes(definition).values()],
    }


def document_row(doc: dict[str, Any]) -> dict[str, Any]:
    """A document for the grid (a preview per field) and the editor (readable JSON)."""
    fields = {k: preview(val) for k, val in doc.items() if not k.startswith("_")}
    editable = {k: val for k, val in doc.items() if not k.startswith("_")}
    return {"id": doc["_id"], "creationTime": doc["_creationTime"], "fields": fields,
            "json": to_text(doc), "editable": to_text(editable)}


def _range(index: Any, eq: list[str], lower: dict[str, str] | None,
           upper: dict[str, str] | None) -> Any:
    """The `with_index` builder for `index` from the page's filter; ConvexError explains."""
    fields = index.key_fields
    bounded = len(eq) if (lower or upper) else None
    if len(eq) > len(fields) or (bounded is not None and bounded >= len(fields)):
        raise ConvexError(f"index {index.name!r} has only the fields {list(fields)}")
    values = [parse(text, f"the value for {fields[i]!r}") for i, text in enumerate(eq)]
    bounds = []
    for bound, lower_side in ((lower, True), (upper, False)):
        if bound is None:
            continue
        op = OPS.get(bound["op"])
        if op is None or (op in ("gt", "gte")) != lower_side:
            raise ConvexError(f"unknown {'lower' if lower_side else 'upper'} bound operator "
                              f"{bound['op']!r}: use {'> or >=' if lower_side else '< or <='}")
        assert bounded is not None
        bounds.append((op, parse(bound["value"], f"the bound on {fields[bounded]!r}")))

    def build(q: IndexRange) -> IndexRange:
        for name, value in zip(fields, values, strict=False):
            q = q.eq(name, value)
        for op, value in bounds:
            assert bounded is not None
            q = getattr(q, op)(fields[bounded], value)
        return q

    return build


async def page_of(query: Any, items: float, cursor: str | None) -> dict[str, Any]:
    # One page at a time: the first page is always the newest n, so no journal.
    result = await query.paginate({"numItems": max(1, min(int(items), MAX_PAGE)),
                                   "cursor": cursor}, stable=False)
    return {"page": [document_row(doc) for doc in result["page"]],
            "isDone": result["isDone"], "continueCursor": result["continueCursor"]}


def functions(deployment: Deployment) -> dict[str, FunctionSpec]:
    def schema_table(name: str) -> Any:
        tables = deployment.engine.app.schema.tables
        if name not in tables:
            raise ConvexError(f"there is no table {name!r} in the schema")
        return tables[name]

    @internal_query(args={})
    async def tables(ctx: Any) -> list[dict[str, Any]]:
        """Every table of the app: document count, fields, validator and indexes."""
        out = []
        for name, definition in sorted(deployment.engine.app.schema.tables.items()):
            ctx.db.reads.record_scan(ScanRecord(name, BY_ID, b"", None, False, exhausted=True))
            count = await ctx.db.reads.tx.count(name, COUNT_CAP + 1)
            out.append(_table_info(name, definition, count))
        return out

    @internal_query(args={"table": v.string(), "index": v.optional(v.string()),
                          "eq": v.optional(v.array(v.string())), "lower": RANGE,
                          "upper": RANGE, "order": v.optional(v.string()),
                          "cursor": v.optional(v.union(v.string(), v.null())),
                          "numItems": v.float64()})
    async def documents(ctx: Any, table: str, numItems: float, index: str | None = None,
                        eq: list[str] | None = None, lower: dict[str, str] | None = None,
                        upper: dict[str, str] | None = None, order: str | None = None,
                        cursor: str | None = None) -> dict[str, Any]:
        """One page of a table's documents, newest first by default, by an index range."""
        indexes = all_indexes(schema_table(table))
        name = index or BY_CREATION_TIME
        if name not in indexes:
            raise ConvexError(f"table {table!r} has no index {name!r}")
        query = ctx.db.query(table).with_index(name, _range(indexes[name], eq or [], lower,
                                                             upper))
        return await page_of(query.order("asc" if order == "asc" else "desc"), numItems,
                             cursor)

    @internal_mutation(args={"table": v.string(), "json": v.string()})
    async def insert(ctx: Any, table: str, json: str) -> str:
        """Insert a document given as readable JSON."""
        schema_table(table)
        doc_id: str = await ctx.db.insert(table, parse_object(json, "the document"))
        return doc_id

    @internal_mutation(args={"id": v.string(), "json": v.string()})
    async def replace(ctx: Any, id: str, json: str) -> None:
        """Replace a document's fields (its `_id` and `_creationTime` stay)."""
        fields = parse_object(json, "the document")
        await ctx.db.replace(id, {k: val for k, val in fields.items()
                                  if k not in ("_id", "_creationTime")})

    @internal_mutation(args={"ids": v.array(v.string())})
    async def remove(ctx: Any, ids: list[str]) -> float:
        """Delete documents by id, all or none."""
        for doc_id in ids:
            await ctx.db.delete(doc_id)
        return float(len(ids))

    return {"tables": tables, "documents": documents, "insert": insert, "replace": replace,
            "delete": remove}
