"""Background work: running due scheduled functions and crons in every server process.

`runner` finds due work and starts it with bounded concurrency, `batch` runs due mutations
several to a transaction (each exactly once), `execution` runs one job (a mutation exactly
once, an action at most once) and records its outcome, and
`cron_table` keeps `_cron_jobs` in step with the declared crons and fires due ones.
May import the core modules, `observe`, `storage`, `app` and `engine`; never `live`, `sync` or the
server (the deployment feeds it commits).
"""
