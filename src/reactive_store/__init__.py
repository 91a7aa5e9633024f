"""reactive-store: a self-hosted, Convex-style real-time backend for Python on PostgreSQL."""

from .db import UNSET
from .errors import ConvexError
from .functions import action, internal_action, internal_mutation, internal_query, mutation, query
from .schema import define_schema, define_table
from .validators import v

__version__ = "0.1.0"

__all__ = [
    "UNSET",
    "ConvexError",
    "__version__",
    "action",
    "define_schema",
    "define_table",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "mutation",
    "query",
    "v",
]
