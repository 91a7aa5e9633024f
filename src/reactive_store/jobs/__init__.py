"""Background work: running due scheduled functions and crons in every server process.

`runner` claims due jobs (FOR UPDATE SKIP LOCKED) and runs them with bounded concurrency.
May import the core modules, `storage`, `app` and `engine`; never `live`, `sync` or the
server (the deployment feeds it commits).
"""
