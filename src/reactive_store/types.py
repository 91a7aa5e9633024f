"""Vocabulary shared across the engine: a few type aliases and nothing else."""

from __future__ import annotations

from typing import Any, NewType

# A Convex value as Python holds it: None, bool, int (int64), float (float64), str,
# bytes, list of values, or dict of str -> value.
Value = Any
Document = dict[str, Any]

# Commit timestamps: nanoseconds since the Unix epoch, strictly increasing in commit order.
Timestamp = NewType("Timestamp", int)

# An order-preserving index key (see keys.py); Postgres compares bytea with memcmp.
IndexKey = bytes

# "table.index", the unit a read set records intervals for.
IndexName = NewType("IndexName", str)

FunctionPath = NewType("FunctionPath", str)
