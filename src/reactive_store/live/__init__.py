"""Live queries: the ordered commit stream and the subscriptions it invalidates.

`commits` turns Postgres notifications and the commit log into one `(ts, WriteSet)` call
per commit in timestamp order; `writelog` keeps recent commits to refresh a result computed
at an older snapshot; `interval_index` finds the live queries a written key hits; and
`subscriptions` owns every live query, its result, and the batched re-runs.
May import the core modules, `observe`, `storage`, `app` and `engine`; never `jobs`, `sync` or the
server.
"""
