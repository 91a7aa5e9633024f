"""The engine: running one function in one transaction and recording what it touched.

`engine` runs queries (one REPEATABLE READ snapshot), mutations (SERIALIZABLE, retried on
conflict) and actions; `context` builds the `ctx` each kind receives; `db` and `query` are
`ctx.db`, recording read sets (`readset`, `intervals`) and write sets; `scheduler` is
`ctx.scheduler`; `system_tables` declares `_scheduled_functions` and `_cron_jobs`.
May import the core modules, `observe`, `storage` and `app`; never `live`, `jobs`, `sync` or the
server, which are built on top of it.
"""
