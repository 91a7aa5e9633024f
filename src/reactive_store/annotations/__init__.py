"""Validators from Python type hints: the annotation form of function arguments, results and
table declarations, an equal alternative to `v.*`.

`markers` holds `Id["table"]` and `Doc["table"]` and turns model instances back into plain
values (`to_plain`), `mapping` maps one type hint to a validator (`shape_of`), `objects` does
so for TypedDicts, dataclasses and pydantic models, and `signature` for a whole function.
Every hint becomes an ordinary `v.*` validator, so what clients see (the catalog, the wire
format, error messages) is identical in both forms. May import the core modules up to
`validators`; `schema` and everything above may import it.
"""
