"""The engine: running one function in one transaction and recording what it touched.

`engine` is the Engine: `core` resolves, validates and calls one function, `queries` runs
queries (one REPEATABLE READ snapshot), `mutations` runs mutations (SERIALIZABLE, retried on
conflict), and `engine` itself actions; `outcome` is what they return. `context` builds the
`ctx` each kind receives; `db` and `query` are `ctx.db`, recording read sets (`reads`,
`readset`, `intervals`) and write sets; `scheduler` is `ctx.scheduler`; `system_tables` declares
`_scheduled_functions` and `_cron_jobs`.
May import the core modules, `observe`, `storage` and `app`; never `live`, `jobs`, `sync` or the
server, which are built on top of it.
"""
