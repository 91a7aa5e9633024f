"""reactive-store: a self-hosted, Convex-style real-time backend for Python on PostgreSQL."""

from .access import require_owner, require_user
from .crons import Crons
from .db import UNSET
from .errors import ConvexError
from .functions import action, internal_action, internal_mutation, internal_query, mutation, query
from .http_router import HttpRouter
from .schema import define_schema, define_table
from .validators import v

__version__ = "0.1.0"

__all__ = [
    "UNSET",
    "ConvexError",
    "Crons",
    "HttpRouter",
    "__version__",
    "action",
    "define_schema",
    "define_table",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "mutation",
    "query",
    "require_owner",
    "require_user",
    "v",
]
