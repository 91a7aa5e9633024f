"""The user's app: what it declares and how its folder is loaded.

`registry` holds the function decorators and the registry of a loaded app, `crons` and
`http_router` the cron and HTTP-route declarations, `loader` imports an app folder
(`schema/`, `functions/`) into an `App`, `reloader` re-imports what changed for hot reload,
and `catalog` describes the functions for `/api/functions` and `reactive-store docs`.
May import the core modules (types, errors, values, ids, keys, validators, schema, limits,
auth) and `storage`; never `engine`, `live`, `jobs`, `sync` or the server.
"""
