"""The `_system/cli/...` functions the official Convex CLI calls (admin key only).

`snapshots`: `exports:getLatest`, `queryImport` and `queryImport:list`, over the server's
export and import jobs. May import everything up to `snapshot`.
"""
