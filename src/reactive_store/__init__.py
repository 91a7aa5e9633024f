"""reactive-store: a self-hosted, Convex-style real-time backend for Python on PostgreSQL."""

import importlib.metadata

from reactive_store.access import require_owner, require_user
from reactive_store.annotations.markers import Doc, Id
from reactive_store.app.crons import Crons
from reactive_store.app.http_router import HttpRouter
from reactive_store.app.registry import (
    action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from reactive_store.errors import ConvexError
from reactive_store.schema import define_schema, define_table
from reactive_store.validators import v
from reactive_store.values import UNSET

__version__ = importlib.metadata.version("reactive-store")

__all__ = [
    "UNSET",
    "ConvexError",
    "Crons",
    "Doc",
    "HttpRouter",
    "Id",
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
